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
The whole directory is written beside its destination and renamed into place,
so a reader sees the old model or the new one, never a mix. During training the
directory also holds ``checkpoint.safetensors``, replaced atomically each epoch.
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
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import ArtifactError, ConfigError
from rnncast.nn.forecaster import Forecaster
from rnncast.scaling import Scaler
from rnncast.writing import clear_leftovers, replace_directory, replacing

FORMAT_VERSION = 1
MODEL_FILES = (
    "model.safetensors",
    "scaler.safetensors",
    "series.json",
    "config.json",
    "history.json",
)
MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.safetensors"
# The holdout report `rnncast train` writes beside the model (report.py); not part of
# the model, so not in the manifest, but a directory holding them is still rnncast's.
REPORT_FILES = ("metrics.json", "report.md", "report.html")
# The settings `rnncast train` ran with, as TOML `--config` reads back. Listed in the
# manifest when present (an edit is refused like any other), but optional: models
# trained through the Python API have none.
SETTINGS_FILE = "train.toml"


@dataclass(frozen=True)
class NetworkShape:
    """The sizes a Forecaster was built with, besides its ModelConfig."""

    n_inputs: int
    n_future: int
    n_series: int
    recurrent_steps: int


@dataclass
class Model:
    """A trained forecaster and everything needed to use it on new data."""

    network: Forecaster
    config: ModelConfig
    training: TrainConfig
    shape: NetworkShape
    scaler: Scaler
    schema: dict[str, Any]  # data settings and the columns, frequency and features seen
    history: dict[str, Any] = field(default_factory=dict)

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
        }


def build_network(config: ModelConfig, shape: NetworkShape) -> Forecaster:
    return Forecaster(config, shape.n_inputs, shape.n_future, shape.n_series, shape.recurrent_steps)


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
    missing, of another format version, incomplete, or does not match its manifest."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_arrays
    from safetensors.torch import load as load_tensors

    path = Path(directory)
    contents = read_verified(path)
    try:
        config = json.loads(contents["config.json"])
        history = json.loads(contents["history.json"])
        ids = np.array(json.loads(contents["series.json"])["ids"], dtype=object).astype(str)
        model_config = ModelConfig(**settings_with_tuples(config["model"]))
        training = TrainConfig(**config["training"])
        shape = NetworkShape(**config["network"])
        arrays = load_arrays(contents["scaler.safetensors"])
        weights = load_tensors(contents["model.safetensors"])
    except (KeyError, TypeError, ValueError, ConfigError, SafetensorError) as exc:
        raise ArtifactError(f"{path}: the model files do not fit together: {exc}") from None
    scaler = Scaler(
        config["scaler"]["method"],
        ids,
        arrays["loc"],
        arrays["scale"],
        arrays["covariate_loc"],
        arrays["covariate_scale"],
    )
    network = build_network(model_config, shape)
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactError(f"{path}/model.safetensors does not fit config.json: {first}") from None
    network.eval()
    if device is not None:
        network.to(device)
    return Model(network, model_config, training, shape, scaler, config["data"], history)


def read_verified(path: Path) -> dict[str, bytes]:
    """The bytes of every file the manifest lists, after checking format and digests."""
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a model directory (it does not exist)")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        hint = " (a checkpoint is there: training did not finish; try train --resume)"
        raise ArtifactError(
            f"{path} is not a complete model directory: {MANIFEST} is missing"
            + (hint if (path / CHECKPOINT).exists() else "")
        )
    try:
        manifest = json.loads(manifest_path.read_bytes())
        version = manifest["format_version"]
        listed = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise ArtifactError(f"{manifest_path} is not a valid manifest") from None
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ArtifactError(
            f"{path} has model format version {version}; this rnncast ({__version__}) reads "
            f"version {FORMAT_VERSION}"
            + ("; upgrade rnncast to use it" if newer else "; retrain the model")
        )
    missing = [name for name in MODEL_FILES if name not in listed]
    if missing:
        raise ArtifactError(f"{manifest_path} does not list {', '.join(missing)}")
    unknown = sorted(set(listed) - {*MODEL_FILES, SETTINGS_FILE})
    if unknown:
        raise ArtifactError(f"{manifest_path} lists files rnncast does not write: {unknown}")
    contents = {}
    for name in listed:
        file_path = path / name
        if not file_path.is_file():
            raise ArtifactError(f"{file_path} is missing")
        data = file_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise ArtifactError(
                f"{file_path} does not match its sha256 in {MANIFEST}: the file was changed "
                "or damaged after training; retrain or restore the directory"
            )
        contents[name] = data
    return contents


def check_writable_target(target: Path) -> None:
    """Refuse to replace a directory that is not a model directory (or empty)."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {target} exists and is a file, not a model directory")
    if target.is_dir():
        # A run killed while writing its checkpoint leaves the temporary file.
        clear_leftovers(target / CHECKPOINT)
        known = {*MODEL_FILES, MANIFEST, CHECKPOINT, SETTINGS_FILE, *REPORT_FILES}
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
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise ArtifactError(f"{path} is damaged and cannot be resumed from: {exc}") from None
    return tensors, state


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, allow_nan=False) + "\n").encode()


def settings_with_tuples(settings: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the frozen configs hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
