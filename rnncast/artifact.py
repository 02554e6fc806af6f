"""The model directory: safetensors weights, JSON settings, a manifest of digests.

A model directory holds

- ``model.safetensors``: the network's weights;
- ``scaler.safetensors``: per-series locations and scales, per-covariate ones;
- ``series.json``: the ids of the training series, in the scaler's order;
- ``config.json``: every setting of the model and its training, the data
  schema it expects, the sizes the network was built with, the versions;
- ``history.json``: the loss of every epoch and why training stopped;
- ``manifest.json``: the sha256 of every file above and the format version.

Nothing is pickled and nothing is executed: loading reads tensors and JSON,
checks every digest first, and refuses a directory that does not match (exit 4).
A digest proves that a file did not change by accident, not who wrote it, so the
files are then checked as untrusted data (model_schema for the JSON; here the
tensors' names, dtypes, shapes and values) before a network is built from them.
The whole directory is written beside its destination and renamed into place,
so a reader sees the old model or the new one, never a mix. During training the
directory also holds ``checkpoint.safetensors``, replaced atomically each epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnncast import __version__
from rnncast.bases import Combination
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import ArtifactError, ConfigError
from rnncast.model_schema import (
    FORMAT_VERSION,
    NetworkShape,
    check_config,
    check_history,
    check_manifest,
    check_series,
    parse_json,
)
from rnncast.nn.ensemble import Ensemble
from rnncast.nn.forecaster import Forecaster
from rnncast.scaling import Scaler
from rnncast.warm import WarmStates
from rnncast.writing import clear_leftovers, replace_directory, replacing

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
_SCALER_ARRAYS = ("loc", "scale", "covariate_loc", "covariate_scale")


@dataclass
class Model:
    """A trained forecaster and everything needed to use it on new data."""

    network: Forecaster | Ensemble
    config: ModelConfig
    training: TrainConfig
    shape: NetworkShape
    scaler: Scaler
    schema: dict[str, Any]  # data settings and the columns, frequency and features seen
    history: dict[str, Any] = field(default_factory=dict)
    # The base forecast and blend weights chosen on validation (fitting.py); None for
    # a network used alone (format 1 models, or no validation part).
    combination: Combination | None = None
    # The encoder's state at the end of each training series (warm.py); None for a
    # model that keeps none, or one saved before models kept them.
    warm: WarmStates | None = None

    def describe(self) -> dict[str, Any]:
        """Plain facts for ``rnncast inspect`` and logs."""
        parameters = sum(p.numel() for p in self.network.parameters())
        return {
            "model": asdict(self.config),
            "training": asdict(self.training),
            "network": {**asdict(self.shape), "parameters": parameters},
            "data": self.schema,
            "series": int(self.scaler.ids.shape[0]),
            "history": self.history,
            "combination": asdict(self.combination) if self.combination is not None else None,
        }


def build_network(config: ModelConfig, shape: NetworkShape) -> Forecaster | Ensemble:
    """The network ``config`` and ``shape`` describe: one Forecaster, or an Ensemble of
    ``config.members`` of them."""

    def member() -> Forecaster:
        return Forecaster(
            config, shape.n_inputs, shape.n_future, shape.n_series, shape.recurrent_steps,
            shape.static_levels,
        )  # fmt: skip

    if config.members == 1:
        return member()
    return Ensemble([member() for _ in range(config.members)])


def save_model(
    model: Model, directory: str | Path, extra_files: dict[str, bytes] | None = None
) -> Path:
    """Write ``model`` to ``directory`` in one step: the old content, checkpoint
    included, is replaced only once the new directory is complete on disk.

    ``extra_files`` go in the same step: the report (REPORT_FILES) and the
    settings (SETTINGS_FILE); a model and its report are never out of step.
    """
    from safetensors.numpy import save as save_arrays
    from safetensors.torch import save as save_tensors

    target = Path(directory)
    check_writable_target(target)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in _state(model).items()}
    config = {
        "format_version": FORMAT_VERSION,
        "rnncast_version": __version__,
        "torch_version": torch.__version__,
        "model": asdict(model.config),
        "training": asdict(model.training),
        "network": asdict(model.shape),
        "data": model.schema,
        "scaler": {"method": model.scaler.method},
        "combination": asdict(model.combination) if model.combination is not None else None,
    }
    scaler = {
        "loc": model.scaler.loc,
        "scale": model.scaler.scale,
        "covariate_loc": model.scaler.covariate_loc,
        "covariate_scale": model.scaler.covariate_scale,
    }
    files = {
        "model.safetensors": save_tensors(weights),
        "scaler.safetensors": save_arrays({k: np.ascontiguousarray(v) for k, v in scaler.items()}),
        "series.json": _json_bytes({"ids": [str(i) for i in model.scaler.ids]}),
        "config.json": _json_bytes(config),
        "history.json": _json_bytes(model.history),
    }
    if model.warm is not None:
        files[WARM_FILE] = save_arrays(model.warm.arrays())
    extra_files = dict(extra_files or {})
    unknown = sorted(set(extra_files) - {*REPORT_FILES, SETTINGS_FILE})
    if unknown:
        raise ValueError(f"extra files a model directory does not hold: {unknown}")
    if SETTINGS_FILE in extra_files:
        files[SETTINGS_FILE] = extra_files.pop(SETTINGS_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    files[MANIFEST] = _json_bytes(manifest)
    replace_directory(target, {**files, **extra_files})
    return target


def _state(model: Model) -> dict[str, torch.Tensor]:
    # The module is never compiled or wrapped when saved, so names carry no
    # `_orig_mod.` or `module.` prefix.
    return model.network.state_dict()


def load_model(directory: str | Path, device: torch.device | None = None) -> Model:
    """Read and verify a model directory. Raises ArtifactError (exit 4) when it is
    missing, of another format version, incomplete, does not match its manifest, or
    holds anything rnncast would not have written (model_schema; the tensors)."""
    path = Path(directory)
    contents, version = _read_verified(path)

    def document(name: str) -> Any:
        return parse_json(contents[name], path / name)

    settings = check_config(document("config.json"), path / "config.json", version)
    shape = settings.shape
    history = check_history(document("history.json"), path / "history.json")
    ids = check_series(document("series.json"), path / "series.json", shape.n_series)
    n_covariates = len(settings.data["covariates"]) + len(
        settings.data.get("future_covariates") or []
    )
    scaler = _scaler(
        contents["scaler.safetensors"], path, settings.scaler_method, ids, n_covariates
    )
    weights = _weights(contents["model.safetensors"], path, settings.model, shape)
    # Every tensor matched the meta network above, so this allocates what the file holds.
    network = build_network(settings.model, shape)
    network.load_state_dict(weights, strict=True)
    network.eval()
    if device is not None:
        network.to(device)
    warm = None
    if WARM_FILE in contents:
        warm = _warm(contents[WARM_FILE], path, settings.model, shape.n_series)
    return Model(network, settings.model, settings.training, shape, scaler, settings.data,
                 history, settings.combination, warm)  # fmt: skip


def _warm(data: bytes, path: Path, config: ModelConfig, n_series: int) -> WarmStates:
    """The states of warm.safetensors, once their names, dtypes and shapes are those
    the network's sizes call for and every value is finite."""
    from safetensors.numpy import load as load_arrays

    file = path / WARM_FILE
    try:
        return WarmStates.from_arrays(_load_tensors(load_arrays, data, file), config, n_series)
    except ValueError as exc:
        raise _unfit(file, str(exc)) from None


def _scaler(data: bytes, path: Path, method: str, ids: list[str], n_covariates: int) -> Scaler:
    """The scaler of scaler.safetensors: four float64 vectors, one location and one
    positive scale per series and per covariate, all finite."""
    from safetensors.numpy import load as load_arrays

    file = path / "scaler.safetensors"
    arrays = _load_tensors(load_arrays, data, file)
    names = sorted(arrays)
    if names != sorted(_SCALER_ARRAYS):
        raise _unfit(file, f"it holds arrays {names}, rnncast writes {sorted(_SCALER_ARRAYS)}")
    sizes = {"loc": len(ids), "scale": len(ids)}
    for name, array in arrays.items():
        size = sizes.get(name, n_covariates)
        if array.dtype != np.float64 or array.shape != (size,):
            raise _unfit(
                file,
                f"array {name!r} is {array.dtype} of shape {list(array.shape)}; this model "
                f"needs float64 of shape [{size}] (series.json and config.json's covariates)",
            )
        if not np.isfinite(array).all():
            raise _unfit(file, f"array {name!r} holds NaN or infinite values")
        if name.endswith("scale") and not (array > 0).all():
            raise _unfit(file, f"array {name!r} holds a scale that is not positive")
    return Scaler(
        method,
        np.array(ids, dtype=object).astype(str),
        arrays["loc"],
        arrays["scale"],
        arrays["covariate_loc"],
        arrays["covariate_scale"],
    )


def _weights(
    data: bytes, path: Path, config: ModelConfig, shape: NetworkShape
) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors, once their names, dtypes and shapes are
    those of the network config.json describes and every value is finite.

    The network is first built on the meta device, which allocates nothing: a
    config asking for a network of terabytes is refused here, not by the allocator.
    """
    from safetensors.torch import load as load_tensors

    file = path / "model.safetensors"
    try:
        with torch.device("meta"):
            expected = build_network(config, shape).state_dict()
    except (ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(
            f"{path / 'config.json'} describes a network torch cannot build ({first}); "
            "retrain the model or restore the directory"
        ) from None
    weights = _load_tensors(load_tensors, data, file)
    missing = [name for name in expected if name not in weights]
    if missing:
        raise _unfit(file, f"it lacks the tensor {missing[0]!r}" + _more(missing))
    unexpected = [name for name in weights if name not in expected]
    if unexpected:
        detail = f"it holds the tensor {unexpected[0]!r} the network has no place for"
        raise _unfit(file, detail + _more(unexpected))
    for name, needed in expected.items():
        tensor = weights[name]
        if tensor.dtype != needed.dtype or tensor.shape != needed.shape:
            raise _unfit(
                file,
                f"tensor {name!r} is {_dtype(tensor)} of shape {list(tensor.shape)}; the "
                f"network needs {_dtype(needed)} of shape {list(needed.shape)}",
            )
        if not torch.isfinite(tensor).all():
            raise _unfit(file, f"tensor {name!r} holds NaN or infinite values")
    return weights


def _load_tensors(load: Any, data: bytes, file: Path) -> dict[str, Any]:
    from safetensors import SafetensorError

    try:
        return load(data)
    # safetensors refuses a bad header with SafetensorError; a dtype torch or numpy
    # lacks comes out as TypeError or ValueError.
    except (SafetensorError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtifactError(
            f"{file} is not a valid safetensors file ({first}); retrain the model or "
            "restore the directory"
        ) from None


def _unfit(file: Path, detail: str) -> ArtifactError:
    return ArtifactError(
        f"{file} does not fit config.json: {detail}; retrain the model or restore the directory"
    )


def _more(names: list[str]) -> str:
    return f" (and {len(names) - 1} more)" if len(names) > 1 else ""


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def read_verified(path: Path) -> dict[str, bytes]:
    """The bytes of every file the manifest lists, after checking format and digests."""
    return _read_verified(path)[0]


def _read_verified(path: Path) -> tuple[dict[str, bytes], int]:
    """The bytes of every file the manifest lists, and the manifest's format version."""
    if not path.is_dir():
        if path.exists():
            raise ArtifactError(
                f"{path} is {_kind(path)}, not a model directory; pass the directory "
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
        f"{path} is {_kind(path)}, not a regular file; a model directory holds only the "
        "files rnncast train wrote: restore the directory or retrain the model"
    )


def _kind(path: Path) -> str:
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


def write_checkpoint(
    directory: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> Path:
    """Replace the directory's checkpoint atomically: tensors plus a JSON-able state."""
    from safetensors.torch import save as save_tensors

    target = Path(directory)
    check_writable_target(target)
    target.mkdir(parents=True, exist_ok=True)
    data = save_tensors(
        {name: t.detach().cpu().contiguous() for name, t in tensors.items()},
        metadata={"format_version": str(FORMAT_VERSION), "state": json.dumps(state)},
    )
    path = target / CHECKPOINT
    with replacing(path) as stream:
        stream.write(data)
    return path


def read_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and state of the directory's checkpoint; ArtifactError if absent or bad."""
    from safetensors import SafetensorError, safe_open

    path = Path(directory) / CHECKPOINT
    if not path.is_file():
        if path.exists():  # a FIFO would block the read, /dev/zero never end it
            raise ArtifactError(
                f"{path} is {_kind(path)}, not a checkpoint file; remove it and train afresh"
            )
        raise ArtifactError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        if metadata.get("format_version") != str(FORMAT_VERSION):
            raise ArtifactError(
                f"{path} has format version {metadata.get('format_version')}; this rnncast "
                f"reads {FORMAT_VERSION}"
            )
        state = json.loads(metadata["state"])
        if not isinstance(state, dict):
            raise ValueError(f"its state is {type(state).__name__}, not an object")
    # RecursionError: json.loads of state nested thousands deep.
    except (SafetensorError, KeyError, ValueError, OSError, RecursionError) as exc:
        raise ArtifactError(f"{path} is damaged and cannot be resumed from: {exc}") from None
    return tensors, state


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode()


def settings_with_tuples(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
