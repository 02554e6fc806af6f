"""The files of a model directory: which a directory holds, and reading them safely.

A model directory holds MODEL_FILES, listed with their sha256 in MANIFEST, and may
hold SETTINGS_FILE and WARM_FILE (listed when present); beside them, REPORT_FILES
and, while training runs, CHECKPOINT. ``read_verified`` reads only what the manifest
lists, after checking each digest, and only regular files under a size limit (never
a FIFO or a device); ``check_writable_target`` refuses to replace a directory that
holds anything else. What the files mean is artifact.py's.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from rnncast.errors import ArtifactError, ConfigError
from rnncast.json_checks import parse_json
from rnncast.model_records import check_manifest
from rnncast.writing import clear_leftovers

MODEL_FILES = (
    "model.safetensors",
    "scaler.safetensors",
    "series.json",
    "config.json",
    "history.json",
)
MANIFEST = "manifest.json"
# The encoder's states at the end of the training series (warm.py): listed in the
# manifest when present, optional, as models saved before them have none.
WARM_FILE = "warm.safetensors"
CHECKPOINT = "checkpoint.safetensors"
# The holdout report `rnncast train` writes beside the model (report.py); not part of
# the model, so not in the manifest, but a directory holding them is still rnncast's.
REPORT_FILES = ("metrics.json", "report.md", "report.html")
# The settings `rnncast train` ran with, as TOML `--config` reads back. Listed in the
# manifest when present (an edit is refused like any other), but optional: models
# trained through the Python API have none.
SETTINGS_FILE = "train.toml"
# rnncast's JSON files are a few KB (config.json, manifest.json) or grow with the
# epochs (history.json); far larger ones are not its own and are not read into memory.
# series.json and the tensors grow with the data and the network, and are not capped.
_SIZE_LIMITS = {MANIFEST: 1 << 20, "config.json": 16 << 20, "history.json": 64 << 20}


def read_verified(path: Path) -> dict[str, bytes]:
    """The bytes of every file the manifest lists, after checking format and digests."""
    return read_with_version(path)[0]


def read_with_version(path: Path) -> tuple[dict[str, bytes], int]:
    """The bytes of every file the manifest lists, and the manifest's format version."""
    if not path.is_dir():
        if path.exists():
            raise ArtifactError(
                f"{path} is {file_kind(path)}, not a model directory; pass the directory "
                "rnncast train wrote (its --out)"
            )
        raise ArtifactError(f"{path} is not a model directory (it does not exist)")
    manifest_path = path / MANIFEST
    if not manifest_path.exists() and not manifest_path.is_symlink():
        hint = " (a checkpoint is there: training did not finish; try train --resume)"
        raise ArtifactError(
            f"{path} is not a complete model directory: {MANIFEST} is missing"
            + (hint if (path / CHECKPOINT).exists() else "")
        )
    manifest = parse_json(_read_file(manifest_path), manifest_path)
    listed = check_manifest(manifest, path, manifest_path)
    version = manifest["format_version"]
    missing = [name for name in MODEL_FILES if name not in listed]
    if missing:
        raise ArtifactError(f"{manifest_path} does not list {', '.join(missing)}")
    unknown = sorted(set(listed) - {*MODEL_FILES, SETTINGS_FILE, WARM_FILE})
    if unknown:
        raise ArtifactError(f"{manifest_path} lists files rnncast does not write: {unknown}")
    contents = {}
    for name in listed:
        file_path = path / name
        data = _read_file(file_path)
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise ArtifactError(
                f"{file_path} does not match its sha256 in {MANIFEST}: the file was changed "
                "or damaged after training; retrain or restore the directory"
            )
        contents[name] = data
    return contents, version


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file of a model directory. Anything else (a FIFO, a
    device such as /dev/zero, a directory) is refused before it is read: reading a
    FIFO blocks until a writer comes, reading /dev/zero never ends."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise _not_regular(path)
        # Opened without blocking, and checked again on the descriptor: the path may
        # have been swapped for a FIFO since the stat.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise _not_regular(path)
            limit = _SIZE_LIMITS.get(path.name)
            if limit is not None and status.st_size > limit:
                raise ArtifactError(
                    f"{path} holds {status.st_size:,} bytes, and rnncast writes it under "
                    f"{limit:,}; retrain the model or restore the directory"
                )
            return handle.read()
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing") from None
    except OSError as exc:
        raise ArtifactError(
            f"{path} cannot be read ({exc.strerror or exc}); check its permissions"
        ) from None


def _not_regular(path: Path) -> ArtifactError:
    return ArtifactError(
        f"{path} is {file_kind(path)}, not a regular file; a model directory holds only the "
        "files rnncast train wrote: restore the directory or retrain the model"
    )


def file_kind(path: Path) -> str:
    """What a path that is not a regular file is, for a message."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "unreadable"
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_writable_target(target: Path) -> None:
    """Refuse to replace a directory that is not a model directory (or empty)."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {target} exists and is a file, not a model directory")
    if target.is_dir():
        # A run killed while writing its checkpoint leaves the temporary file.
        clear_leftovers(target / CHECKPOINT)
        known = {*MODEL_FILES, MANIFEST, CHECKPOINT, SETTINGS_FILE, WARM_FILE, *REPORT_FILES}
        strangers = sorted(p.name for p in target.iterdir() if p.name not in known)
        if strangers:
            raise ConfigError(
                f"--out {target} already holds files that are not rnncast's "
                f"({', '.join(strangers[:3])}); choose a new or empty directory"
            )
