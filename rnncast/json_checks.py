"""Reading untrusted JSON as data: parsed within limits, then checked key by key.

A model directory comes from outside, and so may the JSON beside it, so a file is
read only as rnncast writes JSON (UTF-8, no NaN or infinity, no repeated key, no
number beyond a float or a 64-bit integer, shallow) and refused otherwise with
ArtifactError (exit 4): json.loads alone would accept all of these, or recurse until
it crashes. The checks of a value against a type (an object's keys, lists of
integers, unions with null) name the key, the value cut to one line and what was
expected, so that a refusal says what to fix. The refusals are worded for the files
of a model directory, the JSON rnncast reads this way; what each of those files may
hold is model_records.py's and model_schema.py's, as this module knows JSON and
types, not models.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from rnncast.errors import ArtifactError

# rnncast's own files nest at most 4 levels (config.json: data.columns.target);
# json.loads recurses once per level and raises RecursionError near 1000.
MAX_DEPTH = 32
_INT64 = 2**63
# Longest value quoted in a message: one line, even for a megabyte of junk.
_SHOWN_CHARACTERS = 40


class Broken(Exception):
    """A value breaks the schema; the message says where and how (no file name)."""


def parse_json(data: bytes, file: str | Path) -> Any:
    """The JSON value of a model file, refused (ArtifactError) unless it is UTF-8 JSON
    as rnncast writes it: no NaN or infinity, no repeated key, at most MAX_DEPTH levels."""
    try:
        value = json.loads(
            data.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys
        )
    except RecursionError:
        raise refuse(file, f"it nests arrays or objects deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise refuse(file, "it is not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, and the two hooks below
        raise refuse(file, f"it is not valid JSON ({exc})") from None
    try:
        _check_tree(value)
    except Broken as exc:
        raise refuse(file, str(exc)) from None
    return value


def check_keys(
    value: Any, fields: dict[str, Any], where: str, required: frozenset[str] | None
) -> None:
    """``value`` is an object whose keys are among ``fields`` and include ``required``
    (None: all of them), each of the type ``fields`` gives."""
    if not isinstance(value, dict):
        found = f"{where} is" if where else "it holds"
        raise Broken(f"{found} {show(value)}, expected an object")
    prefix = f"{where}." if where else ""
    unknown = [name for name in value if name not in fields]
    if unknown:
        raise Broken(
            f"{where or 'it'} has the unknown key {show(unknown[0])}; "
            f"rnncast writes {', '.join(fields)}"
        )
    needed = fields.keys() if required is None else required
    missing = [name for name in fields if name in needed and name not in value]
    if missing:
        raise Broken(f"{prefix}{missing[0]} is missing")
    for name, item in value.items():
        _check_type(item, fields[name], f"{prefix}{name}")


def _check_type(value: Any, hint: Any, where: str) -> None:
    """``value`` has the type ``hint``; else Broken naming the key, or the first item
    of a list of the wrong type, its value and what is expected."""
    if fits(value, hint):
        return
    arms = typing.get_args(hint) if _is_union(hint) else (hint,)
    lists = [arm for arm in arms if typing.get_origin(arm) in (tuple, list)]
    if isinstance(value, list) and len(lists) == 1:
        item = typing.get_args(lists[0])[0]
        for index, element in enumerate(value):
            if not fits(element, item):
                raise Broken(f"{where}[{index}] is {show(element)}, expected {_describe(item)}")
    raise Broken(f"{where} is {show(value)}, expected {_describe(hint)}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (types.UnionType, typing.Union)


def fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type ``hint`` names (lists stand for tuples)."""
    origin = typing.get_origin(hint)
    if _is_union(hint):
        return any(fits(value, arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in typing.get_args(hint))
    if origin in (tuple, list):
        item = typing.get_args(hint)[0]
        return isinstance(value, list) and all(fits(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    # JSON's true and false are Python bools, which are ints too.
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint in (str, dict, list):
        return isinstance(value, hint)
    return False


_NAMES = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
    bool: ("true or false", "true or false values"),
    dict: ("an object", "objects"),
    list: ("a list", "lists"),
    type(None): ("null", "nulls"),
}


def _describe(hint: Any, plural: bool = False) -> str:
    origin = typing.get_origin(hint)
    if _is_union(hint):
        return " or ".join(_describe(arm, plural) for arm in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        return "a list of " + _describe(typing.get_args(hint)[0], plural=True)
    return _NAMES.get(hint, (str(hint), str(hint)))[plural]


def at_least(value: int, minimum: int, where: str) -> None:
    if value < minimum:
        raise Broken(f"{where} is {show(value)}, expected at least {minimum}")


def _check_tree(value: Any) -> None:
    """No deeper than MAX_DEPTH, no infinite number (JSON's 1e999 reads as one) and no
    integer beyond 64 bits (rnncast writes none; numpy and torch overflow on them).
    Walked with a stack, not recursion, so any depth json.loads returns is safe."""
    # Each entry: a value, its depth, and its parent's entry and key, to name it.
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        entry = stack.pop()
        item, depth, _ = entry
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Broken(
                    f"{_where(entry)} nests arrays or objects deeper than {MAX_DEPTH} levels"
                )
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, depth + 1, (entry, key)) for key, child in pairs)
        elif isinstance(item, float) and not math.isfinite(item):
            raise Broken(f"{_where(entry)} is a number too large for a float")
        elif isinstance(item, int) and not -_INT64 <= item < _INT64:
            raise Broken(f"{_where(entry)} is {show(item)}, beyond a 64-bit integer")


def _where(entry: tuple[Any, int, Any]) -> str:
    """The keys leading to a _check_tree entry, ``data.columns``, without list positions
    (a deep value is mostly positions); "it" for the whole file."""
    keys: list[str] = []
    while entry[2] is not None:
        entry, key = entry[2]
        if isinstance(key, str):
            keys.append(key)
    return ".".join(reversed(keys)) or "it"


def _no_constant(name: str) -> None:
    # rnncast writes JSON with allow_nan=False: NaN and Infinity are never its own.
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of repeated keys, other readers the first: refuse both.
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = [key for key, count in Counter(key for key, _ in pairs).items() if count > 1]
        raise ValueError(f"the key {show(repeated[0])} appears twice in one object")
    return result


def show(value: Any) -> str:
    """A value as JSON, cut to one short line."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else text[: _SHOWN_CHARACTERS - 3] + "..."


def refuse(file: str | Path, detail: str) -> ArtifactError:
    """The error for a file that breaks its schema, with the way out of it."""
    noun = "manifest" if Path(file).name == "manifest.json" else "model file"
    return ArtifactError(
        f"{file} is not a valid {noun}: {detail}; retrain the model or restore the directory"
    )
