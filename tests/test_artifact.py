"""The model directory: round trips, tampering, format versions, the no-pickle rule,
refusing to overwrite strangers' files, checkpoints, and the golden v1 fixture."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import pickle
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, __version__, forecast, train
from rnncast.artifact import (
    FORMAT_VERSION,
    load_model,
    read_checkpoint,
    save_model,
    write_checkpoint,
)
from rnncast.cli import app
from rnncast.errors import ArtifactError, ConfigError
from rnncast.model_data import data_config
from rnncast.model_files import CHECKPOINT, MANIFEST, MODEL_FILES, WARM_FILE, read_verified
from tests.conftest import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "golden"
runner = CliRunner()


def small_panel(seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    frames = []
    for index, length in enumerate([90, 72]):
        steps = np.arange(length)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"m{index}",
                    "ds": pd.date_range("2024-01-01", periods=length, freq="D"),
                    "y": 5 + index + np.sin(2 * np.pi * steps / 7) + rng.normal(0, 0.1, length),
                    "load": np.cos(steps / 5.0) + index,
                }
            )
        )
    return Panel.from_frame(pd.concat(frames, ignore_index=True), DataConfig(covariates=("load",)))


@pytest.fixture(scope="module")
def panel() -> Panel:
    return small_panel()


@pytest.fixture(scope="module")
def trained(panel: Panel):
    return train(
        panel,
        ModelConfig(horizon=7, cell="lstm", hidden=8, layers=1),
        TrainConfig(max_epochs=2, device="cpu"),
        data=DataConfig(covariates=("load",)),
    )


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory) -> Path:
    return save_model(trained, tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_dir(saved: Path, tmp_path: Path) -> Path:
    """A fresh copy of a saved model, free to damage."""
    return Path(shutil.copytree(saved, tmp_path / "model"))


def inspect(directory: Path):
    return runner.invoke(app, ["inspect", str(directory)])


def test_save_then_load_gives_identical_forecasts(trained, saved: Path, panel: Panel) -> None:
    loaded = load_model(saved)
    assert sorted(p.name for p in saved.iterdir()) == sorted([*MODEL_FILES, WARM_FILE, MANIFEST])
    before, after = forecast(trained, panel), forecast(loaded, panel)
    np.testing.assert_array_equal(after.values, before.values)
    np.testing.assert_array_equal(after.times, before.times)
    assert loaded.config == trained.config
    assert loaded.training == trained.training
    assert loaded.shape == trained.shape
    assert loaded.history == trained.history
    assert loaded.schema == json.loads(json.dumps(trained.schema))  # tuples come back as lists
    assert loaded.scaler.ids.tolist() == trained.scaler.ids.tolist()
    np.testing.assert_array_equal(loaded.scaler.scale, trained.scaler.scale)
    np.testing.assert_array_equal(loaded.scaler.covariate_loc, trained.scaler.covariate_loc)
    assert not loaded.network.training  # ready for inference


def test_the_manifest_lists_the_sha256_of_every_file(saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 4
    assert sorted(manifest["files"]) == sorted([*MODEL_FILES, WARM_FILE])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((saved / name).read_bytes()).hexdigest() == digest
    config = json.loads((saved / "config.json").read_text())
    assert config["rnncast_version"] == __version__
    assert config["torch_version"] == torch.__version__


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_config(path: Path) -> None:
    path.write_text(path.read_text().replace('"hidden": 8', '"hidden": 9'))


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("model.safetensors", flip_a_byte),
        ("model.safetensors", truncate),
        ("scaler.safetensors", flip_a_byte),
        ("config.json", edit_config),
        ("series.json", truncate),
    ],
    ids=["flipped-weights", "truncated-weights", "flipped-scaler", "edited-config", "cut-ids"],
)
def test_a_changed_file_is_refused(model_dir: Path, name: str, damage) -> None:
    damage(model_dir / name)
    expected = (
        f"{model_dir / name} does not match its sha256 in manifest.json: the file was "
        "changed or damaged after training; retrain or restore the directory"
    )
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    assert str(raised.value) == expected
    result = inspect(model_dir)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == f"error: {expected}\n"


def test_a_missing_manifest_is_refused(model_dir: Path) -> None:
    (model_dir / MANIFEST).unlink()
    expected = f"{model_dir} is not a complete model directory: manifest.json is missing"
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing") as raised:
        load_model(model_dir)
    assert str(raised.value) == expected
    result = inspect(model_dir)
    assert (result.exit_code, result.stderr) == (4, f"error: {expected}\n")


def test_a_missing_manifest_beside_a_checkpoint_points_to_resume(model_dir: Path) -> None:
    (model_dir / MANIFEST).unlink()
    (model_dir / CHECKPOINT).write_bytes(b"")
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    assert str(raised.value).endswith(
        "(a checkpoint is there: training did not finish; try train --resume)"
    )


def rewrite_manifest(directory: Path, **changes) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_a_newer_format_version_asks_for_an_upgrade(model_dir: Path) -> None:
    rewrite_manifest(model_dir, format_version=FORMAT_VERSION + 1)
    expected = (
        f"{model_dir} has model format version {FORMAT_VERSION + 1}; this rnncast "
        f"({__version__}) reads versions 1 to {FORMAT_VERSION}; upgrade rnncast to use it"
    )
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    assert str(raised.value) == expected
    result = inspect(model_dir)
    assert (result.exit_code, result.stderr) == (4, f"error: {expected}\n")


def test_an_older_format_version_asks_for_retraining(model_dir: Path) -> None:
    rewrite_manifest(model_dir, format_version=0)
    with pytest.raises(
        ArtifactError, match=rf"format version 0; .* reads versions 1 to {FORMAT_VERSION}; retrain"
    ):
        load_model(model_dir)


def test_a_manifest_that_omits_a_file_is_refused(model_dir: Path) -> None:
    manifest = json.loads((model_dir / MANIFEST).read_text())
    del manifest["files"]["history.json"]
    rewrite_manifest(model_dir, files=manifest["files"])
    with pytest.raises(ArtifactError, match=r"manifest.json does not list history.json$"):
        load_model(model_dir)


def test_a_missing_model_file_is_refused(model_dir: Path) -> None:
    (model_dir / "history.json").unlink()
    with pytest.raises(ArtifactError, match=r"history.json is missing$"):
        load_model(model_dir)


def test_garbage_in_the_manifest_is_refused(model_dir: Path) -> None:
    (model_dir / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    assert str(raised.value) == (
        f"{model_dir / MANIFEST} is not a valid manifest: it is not valid JSON (Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1)); retrain the "
        "model or restore the directory"
    )


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as raised:
        load_model(tmp_path / "nowhere")
    assert (
        str(raised.value) == f"{tmp_path / 'nowhere'} is not a model directory (it does not exist)"
    )
    assert inspect(tmp_path / "nowhere").exit_code == 4


def test_consistent_digests_over_weights_that_do_not_fit_are_refused(model_dir: Path) -> None:
    # Someone edits config.json and updates the manifest to match: the digests pass,
    # but the weights no longer fit the network the config describes.
    edit_config(model_dir / "config.json")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    config_bytes = (model_dir / "config.json").read_bytes()
    manifest["files"]["config.json"] = hashlib.sha256(config_bytes).hexdigest()
    rewrite_manifest(model_dir, files=manifest["files"])
    with pytest.raises(ArtifactError, match=r"model.safetensors does not fit config.json"):
        load_model(model_dir)


def rehash(directory: Path) -> None:
    """Make the manifest's digests match the files again, as anyone can."""
    manifest = json.loads((directory / MANIFEST).read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_weights_read_as_another_dtype_are_refused_not_forecast(trained, model_dir: Path) -> None:
    # Case 3 of the untrusted-model review: the header of model.safetensors said I32
    # where the bytes were float32 (same sizes, manifest rehashed); the network was
    # loaded with the integers cast to float, and forecasts of 1e19 written, exit 0.
    path = model_dir / "model.safetensors"
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    for name, entry in header.items():
        if name != "__metadata__":
            entry["dtype"] = "I32"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])
    rehash(model_dir)
    first, tensor = next(iter(trained.network.state_dict().items()))  # checked first
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    shape = list(tensor.shape)
    assert str(raised.value) == (
        f"{path} does not fit config.json: tensor {first!r} is int32 of shape {shape}; the "
        f"network needs float32 of shape {shape}; retrain the model or restore the directory"
    )
    result = inspect(model_dir)
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr == f"error: {raised.value}\n"


def test_a_safetensors_file_that_is_not_one_is_refused(model_dir: Path) -> None:
    (model_dir / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    rehash(model_dir)
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    message = str(raised.value)
    assert message.startswith(
        f"{model_dir / 'model.safetensors'} is not a valid safetensors file ("
    )
    assert message.endswith("); retrain the model or restore the directory")


def test_a_model_path_that_is_a_file_says_so(tmp_path: Path) -> None:
    # Case 5: a regular file was reported as "(it does not exist)".
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights")
    expected = (
        f"{path} is a file, not a model directory; pass the directory rnncast train wrote "
        "(its --out)"
    )
    with pytest.raises(ArtifactError) as raised:
        load_model(path)
    assert str(raised.value) == expected
    result = inspect(path)
    assert (result.exit_code, result.stderr) == (4, f"error: {expected}\n")


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, a block that blocks (reading a FIFO with no writer)."""

    def expire(signum: int, frame: Any) -> None:
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def make_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def link_to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def make_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    ("name", "replace", "kind"),
    [
        ("model.safetensors", make_fifo, "a FIFO (named pipe)"),
        ("model.safetensors", link_to_dev_zero, "a character device"),
        (MANIFEST, make_fifo, "a FIFO (named pipe)"),
        ("config.json", link_to_dev_zero, "a character device"),
        ("history.json", make_directory, "a directory"),
    ],
    ids=["fifo-weights", "dev-zero-weights", "fifo-manifest", "dev-zero-config", "dir-history"],
)
def test_a_model_file_that_is_not_a_regular_file_is_refused_unread(
    model_dir: Path, name: str, replace, kind: str
) -> None:
    # Case 5: a FIFO or /dev/zero was reported as "is missing"; reading either would
    # block (a FIFO with no writer) or never end (/dev/zero).
    replace(model_dir / name)
    expected = (
        f"{model_dir / name} is {kind}, not a regular file; a model directory holds only the "
        "files rnncast train wrote: restore the directory or retrain the model"
    )
    with deadline(10):
        with pytest.raises(ArtifactError) as raised:
            load_model(model_dir)
        result = inspect(model_dir)
    assert str(raised.value) == expected
    assert (result.exit_code, result.stderr) == (4, f"error: {expected}\n")


def test_a_json_file_far_larger_than_rnncast_writes_is_not_read(model_dir: Path) -> None:
    with open(model_dir / "config.json", "r+b") as handle:
        handle.truncate(17 << 20)  # sparse: costs no disk and, unread, no memory
    with pytest.raises(ArtifactError) as raised:
        load_model(model_dir)
    assert str(raised.value) == (
        f"{model_dir / 'config.json'} holds 17,825,792 bytes, and rnncast writes it under "
        "16,777,216; retrain the model or restore the directory"
    )


def _tripwire() -> None:
    raise AssertionError("evil.pkl was unpickled")


class _Evil:
    def __reduce__(self):
        return (_tripwire, ())


_opened: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | Path):
        _opened.append(str(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode())))


sys.addaudithook(_record_opens)  # audit hooks cannot be removed; it records only on demand


def test_a_stray_pickle_is_never_read(model_dir: Path, panel: Panel, monkeypatch) -> None:
    global _opened
    evil = pickle.dumps(_Evil())
    with pytest.raises(AssertionError, match=r"evil\.pkl was unpickled"):
        pickle.loads(evil)  # the trap is live: unpickling it fails loudly
    (model_dir / "evil.pkl").write_bytes(evil)

    def refuse(*args, **kwargs):
        raise AssertionError("a model load must not unpickle anything")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    _opened = []
    try:
        loaded = load_model(model_dir)
    finally:
        opened, _opened = _opened, None
    assert forecast(loaded, panel).values.shape == (2, 7, 3)
    read_here = {Path(p).name for p in opened if Path(p).parent == model_dir}
    assert read_here, "the audit hook saw no file opened; the check would prove nothing"
    assert read_here <= {*MODEL_FILES, WARM_FILE, MANIFEST}
    assert "evil.pkl" not in read_here


def test_a_manifest_listing_a_pickle_is_refused_without_reading_it(model_dir: Path) -> None:
    # Even with a matching digest, a file rnncast never writes is not part of a model.
    evil = pickle.dumps(_Evil())
    (model_dir / "evil.pkl").write_bytes(evil)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["files"]["evil.pkl"] = hashlib.sha256(evil).hexdigest()
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"lists files rnncast does not write: \['evil.pkl'\]"):
        load_model(model_dir)


def test_save_refuses_a_directory_holding_other_files(trained, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as raised:
        save_model(trained, target)
    assert str(raised.value) == (
        f"--out {target} already holds files that are not rnncast's (notes.txt); "
        "choose a new or empty directory"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]  # nothing staged


def test_save_refuses_a_file_in_the_way(trained, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("not a directory")
    with pytest.raises(ConfigError, match="exists and is a file, not a model directory"):
        save_model(trained, target)
    assert target.read_text() == "not a directory"


def test_save_replaces_a_model_and_its_checkpoint_whole(
    trained, saved: Path, tmp_path: Path, panel: Panel
) -> None:
    target = Path(shutil.copytree(saved, tmp_path / "model"))
    (target / CHECKPOINT).write_bytes(b"old checkpoint")
    other = train(
        panel,
        ModelConfig(horizon=7, cell="gru", hidden=8, layers=1),
        TrainConfig(max_epochs=1, device="cpu"),
    )
    save_model(other, target)
    assert sorted(p.name for p in target.iterdir()) == sorted([*MODEL_FILES, WARM_FILE, MANIFEST])
    assert load_model(target).config.cell == "gru"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left


def test_read_verified_returns_exactly_the_listed_files(saved: Path) -> None:
    contents = read_verified(saved)
    assert sorted(contents) == sorted([*MODEL_FILES, WARM_FILE])
    assert contents["config.json"] == (saved / "config.json").read_bytes()


def test_a_checkpoint_round_trips_tensors_and_state(tmp_path: Path) -> None:
    tensors = {"model.w": torch.arange(6.0).reshape(2, 3), "rng.torch": torch.get_rng_state()}
    state = {"epoch": 3, "history": [{"epoch": 1, "val_loss": None}], "best_loss": 0.5}
    path = write_checkpoint(tmp_path / "run", tensors, state)
    assert path == tmp_path / "run" / CHECKPOINT
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CHECKPOINT]
    read_tensors, read_state = read_checkpoint(tmp_path / "run")
    assert read_state == state
    assert read_tensors.keys() == tensors.keys()
    assert all(torch.equal(read_tensors[k], tensors[k]) for k in tensors)


def test_a_damaged_checkpoint_cannot_be_resumed_from(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "run", {"w": torch.ones(3)}, {"epoch": 1})
    truncate(tmp_path / "run" / CHECKPOINT)
    with pytest.raises(ArtifactError, match="is damaged and cannot be resumed from"):
        read_checkpoint(tmp_path / "run")


def test_a_checkpoint_whose_state_nests_deep_cannot_be_resumed_from(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    (tmp_path / "run").mkdir()
    metadata = {"format_version": str(FORMAT_VERSION), "state": "[" * 100_000 + "]" * 100_000}
    save_file({"w": torch.ones(1)}, str(tmp_path / "run" / CHECKPOINT), metadata=metadata)
    with pytest.raises(ArtifactError, match=r"is damaged and cannot be resumed from: maximum"):
        read_checkpoint(tmp_path / "run")


def test_a_checkpoint_that_is_a_fifo_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / CHECKPOINT)
    with deadline(10), pytest.raises(ArtifactError) as raised:
        read_checkpoint(tmp_path / "run")
    assert str(raised.value) == (
        f"{tmp_path / 'run' / CHECKPOINT} is a FIFO (named pipe), not a checkpoint file; "
        "remove it and train afresh"
    )


def test_write_checkpoint_refuses_a_directory_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match=r"already holds files that are not rnncast's"):
        write_checkpoint(tmp_path, {"w": torch.ones(1)}, {"epoch": 1})
    assert not (tmp_path / CHECKPOINT).exists()


def golden_module():
    """scripts/make_golden_model.py, which holds the data the fixture was trained on."""
    spec = importlib.util.spec_from_file_location(
        "make_golden_model", REPO_ROOT / "scripts" / "make_golden_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_the_golden_models_still_load_and_forecast_the_same(version: int) -> None:
    # Format 1: the network alone. Format 2: blended with its base forecast. Format 3:
    # an ensemble of two networks. Format 4: every covariate role (issue 14).
    script = golden_module()
    directory = GOLDEN / script.model_dir(version)
    assert sum(p.stat().st_size for p in directory.iterdir()) < 100_000
    assert json.loads((directory / MANIFEST).read_text())["format_version"] == version
    model = load_model(directory)
    assert (model.combination is None) == (version == 1)
    assert model.config.members == (2 if version >= 3 else 1)
    assert model.config.transform == "none"  # written before models forecast logarithms
    assert model.training.streams == 1  # and before series were read in streams
    roles = {"future_covariates": ["temperature_forecast"]} if version >= 4 else {}
    assert model.schema.get("future_covariates", []) == roles.get("future_covariates", [])
    panel = Panel.from_frame(script.golden_future_frame(), data_config(model))
    frame = forecast(model, panel).to_frame()
    expected = pd.read_csv(GOLDEN / script.forecast_csv(version), parse_dates=["ds"])
    assert list(frame.columns) == list(expected.columns)
    assert frame["unique_id"].tolist() == expected["unique_id"].tolist()
    assert frame["ds"].tolist() == expected["ds"].tolist()
    for column in ("y_hat", "y_q10", "y_q50", "y_q90"):
        np.testing.assert_allclose(frame[column], expected[column], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_the_golden_models_forecast_through_the_cli(tmp_path: Path, version: int) -> None:
    script = golden_module()
    data = tmp_path / "golden.csv"
    # Future rows after each series' end: read by a model with a future covariate, left
    # out by the older ones.
    script.golden_future_frame().to_csv(data, index=False)
    result = runner.invoke(
        app,
        [
            "forecast",
            str(data),
            "--model",
            str(GOLDEN / script.model_dir(version)),
            "--out",
            "-",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.stderr
    got = pd.read_csv(io.StringIO(result.stdout), parse_dates=["ds"])
    expected = pd.read_csv(GOLDEN / script.forecast_csv(version), parse_dates=["ds"])
    pd.testing.assert_frame_equal(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "state",
    [
        {"model": {"horizon": None}, "training": {}, "epoch": 1},
        {"model": [], "training": {}, "epoch": 1},
        {"model": {"horizon": 3}, "training": {"seed": -5}, "epoch": 1},
        {"model": {"horizon": 3}, "training": {}, "epoch": "one"},
        {"training": {}},
    ],
)
def test_resuming_from_a_checkpoint_rnncast_did_not_write_exits_4(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    # Issue 11: a checkpoint's settings went unchecked into the configs (exit 1).
    write_checkpoint(tmp_path / "m", {"x": torch.zeros(1)}, state)
    data = tmp_path / "golden.csv"
    golden_module().golden_frame().to_csv(data, index=False)
    result = runner.invoke(app, ["train", str(data), "--horizon", "3", "--out",
                                 str(tmp_path / "m"), "--resume"])  # fmt: skip
    assert result.exit_code == 4, result.output
    assert "holds settings rnncast did not write" in result.stderr
    assert "remove it and train without --resume" in result.stderr


def test_inspect_never_opens_a_fifo_in_place_of_the_report(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(GOLDEN / "model_v2", model)
    os.mkfifo(model / "metrics.json")
    result = runner.invoke(app, ["inspect", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test"] is None


def _with_combination(tmp_path: Path, combination: Any) -> Path:
    """The golden format-2 model with another ``combination`` in config.json, its
    manifest rehashed to match (a digest is no signature)."""
    model = tmp_path / "model"
    shutil.copytree(GOLDEN / "model_v2", model)
    config = json.loads((model / "config.json").read_text())
    config["combination"] = combination
    (model / "config.json").write_text(json.dumps(config))
    manifest = json.loads((model / MANIFEST).read_text())
    manifest["files"]["config.json"] = hashlib.sha256(
        (model / "config.json").read_bytes()
    ).hexdigest()
    (model / MANIFEST).write_text(json.dumps(manifest))
    return model


def test_calibration_offsets_round_trip_and_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    weights = [0.5] * 7
    offsets = [[-0.2, 0.0, 0.3]] * 7  # (H, Q)
    good = _with_combination(tmp_path / "good", {"base": "theta", "weights": weights,
                                                 "offsets": offsets})  # fmt: skip
    loaded = load_model(good)
    assert loaded.combination.offsets == tuple(tuple(row) for row in offsets)
    bad = _with_combination(tmp_path / "bad", {"base": "theta", "weights": weights,
                                               "offsets": [[0.1, 0.0]] * 7})  # fmt: skip
    with pytest.raises(ArtifactError, match=r"combination\.offsets must hold one row per step"):
        load_model(bad)
