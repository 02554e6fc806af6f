"""The model directory: safetensors weights, JSON settings, a manifest of digests.

A model directory holds

- ``model.safetensors``: the network's weights;
- ``scaler.safetensors``: per-series locations and scales, per-covariate ones;
- ``series.json``: the ids of the training series, in the scaler's order;
- ``config.json``: every setting of the model and its training, the data
  schema it expects, the sizes the network was built with, the versions;
- ``history.json``: the loss of every epoch and why training stopped;
- ``warm.safetensors``, optional: the encoder's state at the end of each training
  series (warm.py);
- ``manifest.json``: the sha256 of every file above and the format version.

Nothing is pickled and nothing is executed: loading reads tensors and JSON,
checks every digest first, and refuses a directory that does not match (exit 4).
A digest proves that a file did not change by accident, not who wrote it, so the
files are then checked as untrusted data (model_records and model_schema for the
JSON; here the tensors' names, dtypes, shapes and values) before a network is built
from them. Which files a directory may hold, and reading them (digests, regular files
only, size limits), is model_files.py's. The whole directory is written beside its
destination and renamed into place, so a reader sees the old model or the new one,
never a mix.
During training the directory also holds ``checkpoint.safetensors``, replaced
atomically each epoch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnncast import __version__
from rnncast.bases import Combination
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import ArtifactError
from rnncast.json_checks import parse_json
from rnncast.model_files import (
    CHECKPOINT,
    MANIFEST,
    REPORT_FILES,
    SETTINGS_FILE,
    WARM_FILE,
    check_writable_target,
    file_kind,
    read_with_version,
)
from rnncast.model_records import FORMAT_VERSION, check_history, check_series
from rnncast.model_schema import NetworkShape, check_config
from rnncast.nn.ensemble import Ensemble
from rnncast.nn.forecaster import Forecaster
from rnncast.scaling import Scaler
from rnncast.warm import WarmStates
from rnncast.writing import replace_directory, replacing

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
            "warm_states": None if self.warm is None else self.warm.describe(),
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
    holds anything rnncast would not have written (model_records, model_schema; the
    tensors)."""
    path = Path(directory)
    contents, version = read_with_version(path)

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
                f"{path} is {file_kind(path)}, not a checkpoint file; remove it and train afresh"
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
