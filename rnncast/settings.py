"""Where a command's settings come from: a flag, else the ``--config`` file, else
the default (config.py). The command line, not the file, is the reference: every
option of a command is a key, spelt as the flag without its dashes (``chunk_len``
or ``chunk-len`` for ``--chunk-len``). Arguments (the data) stay on the command
line.

A config file holds keys at the top, shared by every command that has such an
option, and a table per command whose keys apply to that command alone and win
over the top ones::

    covariates = ["temperature"]
    log_format = "json"

    [train]
    horizon = 24
    out = "models/load"

    [forecast]
    model = "models/load"
    out = "forecasts/load.parquet"

A key no command knows, a table that is not a command, a key in a table that its
command does not have, or a value of the wrong type is a usage error (exit 2)
naming the file and the key. The values become the options' defaults (Click's
``default_map``), so flags win and every value passes the same checks as a flag.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer

from rnncast.errors import ConfigError

# Options that are about this run of the command line, not settings of the work.
_NOT_KEYS = ("config", "print_config", "help")
_SOURCES = {"COMMANDLINE": "flag", "DEFAULT_MAP": "config file", "ENVIRONMENT": "environment"}


def load_config_file(ctx: typer.Context, param: Any, path: str | None) -> str | None:
    """Callback of the eager ``--config`` option: the file's settings for this
    command become its options' defaults before any other option is read."""
    if path is None or ctx.resilient_parsing:
        return path
    try:
        settings = read_config_file(path)
        defaults = _defaults_for(ctx, settings, path)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _defaults_for(ctx: typer.Context, settings: dict[str, Any], path: str) -> dict[str, Any]:
    command = ctx.info_name or ""
    commands = _commands(ctx)
    own = _keys(commands[command]) if command in commands else _keys(ctx.command)
    every_key = {key for cmd in commands.values() for key in _keys(cmd)}
    chosen: dict[str, tuple[str, Any]] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            if key not in commands:
                raise ConfigError(
                    f"{path}: [{key}] is not a command; tables are named after commands "
                    f"({', '.join(sorted(commands))})"
                )
            continue
        name = _normal(key)
        if name not in every_key:
            raise ConfigError(f"{path}: unknown key {key!r}{_suggest(name, every_key)}")
        if name in own:
            chosen[own[name].name] = (key, value)
    for key, value in (settings.get(command) or {}).items():
        name = _normal(key)
        if name not in own:
            raise ConfigError(
                f"{path}: [{command}] has unknown key {key!r}; rnncast {command} has no "
                f"--{name.replace('_', '-')} option{_suggest(name, own)}"
            )
        chosen[own[name].name] = (f"{command}.{key}", value)
    params = {param.name: param for param in ctx.command.params}
    return {name: _checked(params[name], key, value, ctx, path)
            for name, (key, value) in chosen.items()}  # fmt: skip


def _commands(ctx: typer.Context) -> dict[str, Any]:
    parent = ctx.parent.command if ctx.parent is not None else None
    return dict(getattr(parent, "commands", {}) or {ctx.info_name or "": ctx.command})


def _keys(command: Any) -> dict[str, Any]:
    """Every key naming an option of ``command``: its name and its long flags."""
    keys = {}
    for param in command.params:
        if param.param_type_name != "option" or param.name in _NOT_KEYS:
            continue
        keys[param.name] = param
        for flag in param.opts:
            if flag.startswith("--"):
                keys[_normal(flag[2:])] = param
    return keys


def _normal(key: str) -> str:
    return key.strip().replace("-", "_")


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _checked(param: Any, key: str, value: Any, ctx: typer.Context, path: str) -> Any:
    """The value as the option's default, after the checks its flag would get."""
    kind = param.type_descriptor.annotation
    if isinstance(value, list) and kind is str:
        # A list of column names or quantiles: the flag's comma-separated form.
        if not all(isinstance(item, str | int | float) for item in value):
            raise ConfigError(f"{path}: {key} must be a list of names or numbers")
        value = ",".join(str(item) for item in value)
    allowed = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(kind, ())
    if allowed and (
        not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool))
    ):
        raise ConfigError(
            f"{path}: {key} = {value!r} must be {_KIND_TEXT[kind]}, like its flag {param.opts[0]}"
        )
    try:
        param.get_runtime_param().coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        raise ConfigError(f"{path}: {key} = {value!r}: {exc.message}") from None
    return value


_KIND_TEXT = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def effective_settings(ctx: typer.Context) -> tuple[dict[str, Any], dict[str, str]]:
    """The value of every key of the running command, and where each came from
    (flag, config file) when not from the defaults."""
    values, sources = {}, {}
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name in _NOT_KEYS:
            continue
        values[param.name] = ctx.params.get(param.name)
        source = ctx.get_parameter_source(param.name)
        sources[param.name] = _SOURCES.get(getattr(source, "name", ""), "")
    return values, sources


def effective_toml(ctx: typer.Context, header: str, leave_out: tuple[str, ...] = ()) -> str:
    """The running command's settings as a TOML table ``--config`` reads back."""
    values, sources = effective_settings(ctx)
    kept = {name: value for name, value in values.items() if name not in leave_out}
    return settings_toml(ctx.info_name or "", kept, sources, header)


def read_config_file(path: str) -> dict[str, Any]:
    """The settings of a TOML file: top-level keys, and one table per command.

    Raises ConfigError naming the file (and the line, for a syntax error). Which
    keys are known is the command line's business: they are its option names.
    """
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path} is a directory; name a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"--config {path} cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path} is not valid TOML: {exc}") from None


def settings_toml(table: str, settings: dict[str, Any], notes: dict[str, str], header: str) -> str:
    """``settings`` as a TOML table a config file can hold, read back by
    ``read_config_file``. None (unset: chosen from the data or detected) has no
    TOML form, so such settings are written as comments; ``notes`` end lines."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"[{table}]")
    for name, value in settings.items():
        note = f"  # {notes[name]}" if notes.get(name) else ""
        if value is None:
            lines.append(f"# {name} = (unset){note}")
        else:
            lines.append(f"{name} = {_toml_value(value)}{note}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        # repr is valid TOML for finite floats (1e-05, 0.003) and ints alike.
        return repr(value)
    if isinstance(value, str):
        # A JSON string (ASCII, escaped) is a valid TOML basic string.
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")
