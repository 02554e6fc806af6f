"""The model format's version, and the JSON files that record a run: manifest, series, history.

A model directory is data from outside. Its manifest of sha256 digests proves that
no file changed by accident since training; it proves nothing about who wrote the
files, since anyone can rewrite a file and its digest together. So every value read
from them is untrusted input, checked before the loader uses it, and a file that
breaks its schema is refused with ArtifactError (exit 4), naming the file, the key,
the value and what is expected. This module holds the format version, which the
manifest and config.json both state and every reader checks first, and what the
files that record a run may hold: manifest.json (the digests), series.json (the ids
of the training series) and history.json (the epochs and how training ended). What
config.json may hold (the settings a network and the reading of new data are rebuilt
from) is model_schema.py's, which checks config.json's version through this module;
reading the JSON within limits and checking a value against a type are json_checks.py's.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from rnncast import __version__
from rnncast.errors import ArtifactError
from rnncast.json_checks import Broken, at_least, check_keys, fits, refuse, show

# The newest model format this code writes and reads. A directory of a newer format
# is refused with "upgrade rnncast"; one older than OLDEST_FORMAT_VERSION with
# "retrain". Raising FORMAT_VERSION while still reading the old format keeps
# OLDEST_FORMAT_VERSION where it is (and tests/golden/ keeps a model of each).
# 2: the base forecast and blend weights (combination); 3: ensembles (model.members,
# training.ensemble, history.members); 4: covariate roles (data.future_covariates,
# data.inputs with the static covariates' scales and levels and the holidays,
# network.static_levels), which an older rnncast would misread as past covariates.
FORMAT_VERSION = 4
OLDEST_FORMAT_VERSION = 1

_DIGEST = re.compile(r"[0-9a-f]{64}")

_HISTORY_FIELDS: dict[str, Any] = {
    "epochs": list,
    "stopped": str | None,
    "best_epoch": int | None,
    "best_loss": float | None,
    "seconds": float,
    "device": str,
    "chosen": list[str],
    "refit": dict,  # format 2: the training again on every step (fitting.refit_on_everything)
    "members": list,  # format 3: how each member of an ensemble was trained
    "averaged": dict | None,  # format 3: the average of the weights up to the best epoch
    # Members trained and then left out, as their median validated better without them.
    "left_out": list,
    # The shares each training batch went in, one a thread (batch_shares.py).
    "shares": int,
}
_AVERAGED_FIELDS: dict[str, Any] = {
    "tried": list[dict],
    "kept": bool,
}
_AVERAGE_FIELDS: dict[str, Any] = {
    "epochs": list[int],
    "val_loss": float | None,
}
_MEMBER_FIELDS: dict[str, Any] = {
    "seed": int,
    "chunk_len": int | None,
    "lookback": int | None,
    "epochs": int,
    "best_epoch": int | None,
    "seconds": float,
    "stopped": str | None,
}
_LEFT_OUT_FIELDS: dict[str, Any] = {**_MEMBER_FIELDS, "validation_mase": float}
_REFIT_FIELDS: dict[str, Any] = {
    "epochs": int,
    "seconds": float,
    "stopped": str | None,
    "series": int,
    "steps": int,
}
_EPOCH_FIELDS: dict[str, Any] = {
    "epoch": int,
    "train_loss": float,
    "val_loss": float | None,
    "lr": float,
    "seconds": float,
}


def check_format_version(version: Any, where: str | Path, file: str | Path) -> int:
    """The format version ``file`` gives ``where`` (the directory, for the manifest);
    ArtifactError naming both versions when this code cannot read it (newer: upgrade
    rnncast; older: retrain)."""
    if not fits(version, int):
        raise refuse(file, f"format_version is {show(version)}, expected an integer")
    if OLDEST_FORMAT_VERSION <= version <= FORMAT_VERSION:
        return version
    readable = (
        f"version {FORMAT_VERSION}"
        if OLDEST_FORMAT_VERSION == FORMAT_VERSION
        else f"versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
    )
    fix = "upgrade rnncast to use it" if version > FORMAT_VERSION else "retrain the model"
    raise ArtifactError(
        f"{where} has model format version {version}; this rnncast ({__version__}) "
        f"reads {readable}; {fix}"
    )


def check_manifest(document: Any, directory: str | Path, file: str | Path) -> dict[str, str]:
    """The files a manifest lists with their sha256 digests, after its format version."""
    if not isinstance(document, dict):
        raise refuse(file, f"it holds {show(document)}, expected an object")
    if "format_version" not in document:
        raise refuse(file, "format_version is missing")
    check_format_version(document["format_version"], directory, file)
    try:
        check_keys(document, {"format_version": int, "files": dict}, "", required=None)
        for name, digest in document["files"].items():
            if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
                raise Broken(f"files.{name} is {show(digest)}, expected a sha256 in hex")
    except Broken as exc:
        raise refuse(file, str(exc)) from None
    return document["files"]


def check_series(document: Any, file: str | Path, n_series: int) -> list[str]:
    """The ids of series.json: unique strings, one per series the network was built for."""
    try:
        check_keys(document, {"ids": list[str]}, "", required=None)
        ids = document["ids"]
        if len(ids) != n_series:
            raise Broken(
                f"ids lists {len(ids)} series, but config.json's network.n_series is {n_series}"
            )
        repeated = [name for name, count in Counter(ids).items() if count > 1]
        if repeated:
            raise Broken(f"ids lists {show(repeated[0])} more than once")
    except Broken as exc:
        raise refuse(file, str(exc)) from None
    return ids


def check_history(document: Any, file: str | Path) -> dict[str, Any]:
    """history.json: the epochs and how training ended. Keys may be missing (a model
    saved through the Python API may have no history), but none may be unknown."""
    try:
        check_keys(document, _HISTORY_FIELDS, "", required=frozenset())
        epochs = document.get("epochs", [])
        for index, row in enumerate(epochs):
            check_keys(row, _EPOCH_FIELDS, f"epochs[{index}]", required=None)
            at_least(row["epoch"], 1, f"epochs[{index}].epoch")
        if "refit" in document:
            check_keys(document["refit"], _REFIT_FIELDS, "refit", required=None)
        if document.get("averaged") is not None:
            check_keys(document["averaged"], _AVERAGED_FIELDS, "averaged", required=None)
            for index, tried in enumerate(document["averaged"]["tried"]):
                check_keys(tried, _AVERAGE_FIELDS, f"averaged.tried[{index}]", required=None)
        for index, member in enumerate(document.get("members", [])):
            check_keys(member, _MEMBER_FIELDS, f"members[{index}]", required=None)
        for index, member in enumerate(document.get("left_out", [])):
            check_keys(member, _LEFT_OUT_FIELDS, f"left_out[{index}]", required=None)
        best = document.get("best_epoch")
        if best is not None and not 0 <= best <= len(epochs):
            raise Broken(f"best_epoch is {best}, expected 0 to {len(epochs)} (the epochs it lists)")
    except Broken as exc:
        raise refuse(file, str(exc)) from None
    return document
