"""A model directory is untrusted data: its digests prove no accident, not its author.

Whatever its JSON files hold, once the manifest is rehashed to match, loading gives
the model rnncast wrote or refuses the directory with ArtifactError (exit 4) naming
the file, the key, the value and what is expected: never exit 1 (a bug), never a
model that forecasts nonsense, and never an output file. Each example starts from
the golden format-1 model (tests/golden/model_v1) and breaks one thing: a key set to
null, to a value of another type, out of range or huge, nested deep, removed, or an
unknown key added; tensors of another dtype, shape or name, or holding NaN.

Hypothesis runs derandomized and without an example database (as test_fuzz.py):
every run tries the same examples, in a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from typer.testing import CliRunner

from rnncast import DataConfig, ModelConfig, TrainConfig, __version__, train
from rnncast.artifact import load_model, save_model
from rnncast.cli import app
from rnncast.errors import ArtifactError
from rnncast.json_checks import MAX_DEPTH, parse_json
from rnncast.model_files import MANIFEST, MODEL_FILES
from rnncast.model_records import FORMAT_VERSION
from rnncast.model_schema import MAX_SIZE
from tests.test_artifact import GOLDEN, golden_module, small_panel

RUNNER = CliRunner()
GOLDEN_DIR = GOLDEN / "model_v1"
GOLDEN_FILES = {name: (GOLDEN_DIR / name).read_bytes() for name in MODEL_FILES}
GOLDEN_CONFIG = json.loads(GOLDEN_FILES["config.json"])
GOLDEN_WEIGHTS = load_tensors(GOLDEN_FILES["model.safetensors"])
GOLDEN_SCALER = load_arrays(GOLDEN_FILES["scaler.safetensors"])
FIX = "; retrain the model or restore the directory"


def schema_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ---------------------------------------------------------------------------------------
# A copy of the golden model with one file changed and the manifest rehashed to match
# ---------------------------------------------------------------------------------------


@contextmanager
def folder() -> Iterator[Path]:
    # Function-scoped fixtures (tmp_path) do not mix with @given: one folder per example.
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def write_model(directory: Path, changes: dict[str, bytes]) -> Path:
    """The golden model in ``directory``/model, with ``changes`` (file name: bytes)
    replacing its files, and a manifest whose digests match them all."""
    model = directory / "model"
    model.mkdir()
    files = {**GOLDEN_FILES, **changes}
    for name, data in files.items():
        (model / name).write_bytes(data)
    manifest = {
        "format_version": 1,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (model / MANIFEST).write_text(json.dumps(manifest))
    return model


def config_bytes(document: Any) -> bytes:
    # 1e400 has no float; json.dumps cannot write it, so it goes in as text.
    return json.dumps(document).replace('"<1e400>"', "1e400").encode()


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data the golden model was trained on, for ``rnncast forecast``."""
    path = tmp_path_factory.mktemp("schema") / "golden.csv"
    golden_module().golden_frame().to_csv(path, index=False)
    return path


def assert_refused(model: Path, data: Path, file: str) -> str:
    """load_model refuses ``model``, naming ``file``; forecast and inspect exit 4 with
    that message alone and write nothing. Returns the message."""
    with pytest.raises(ArtifactError) as raised:
        load_model(model)
    message = str(raised.value)
    assert message.startswith(f"{model / file} "), message
    assert "\n" not in message
    out = model.parent / "forecasts.csv"
    for arguments in (["forecast", data, "--model", model, "--out", out], ["inspect", model]):
        result = RUNNER.invoke(app, [str(a) for a in arguments])
        assert result.exit_code == 4, (arguments[0], result.exit_code, result.stderr)
        assert result.stdout == ""
        assert result.stderr == f"error: {message}\n"
    assert sorted(p.name for p in model.parent.iterdir()) == ["model"], "an output was left"
    return message


# ---------------------------------------------------------------------------------------
# Broken config.json documents
# ---------------------------------------------------------------------------------------

# Keys whose null is a valid value besides those already null in the golden config.
NULLABLE = {
    ("training", "batch_size"),
    ("training", "val_size"),
    ("data", "settings"),
    ("data", "columns"),
    ("data", "columns", "id"),
    ("data", "target"),
}
# Numbers any size of which is valid: counts of epochs and steps, rates, the seed
# (whose range config.py owns).
ANY_SIZE = {
    ("training", "max_epochs"),
    ("training", "patience"),
    ("training", "val_size"),
    ("training", "lr"),
    ("training", "weight_decay"),
    ("training", "clip"),
    ("training", "seed"),
    ("data", "series"),
    ("data", "steps"),
}
OTHER_TYPES = {
    "bool": [True, False],
    "number": [3, 0.5, -2],
    "string": ["x", ""],
    "list": [[], [1]],
    "object": [{}, {"k": 1}],
}


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


def walk(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) under ``value``, objects and lists included."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*path, key), item
        if isinstance(item, dict | list):
            yield from walk(item, (*path, key))


def nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def breakages() -> list[tuple[str, tuple, Any]]:
    """(what, path, value) for every change that must make the golden config invalid."""
    found: list[tuple[str, tuple, Any]] = []
    objects = [()] + [path for path, value in walk(GOLDEN_CONFIG) if isinstance(value, dict)]
    found += [("unknown key", (*path, "surprise"), 1) for path in objects]
    for path, value in walk(GOLDEN_CONFIG):
        kind = kind_of(value)
        if isinstance(path[-1], str):
            found.append(("removed", path, None))
        found.append(("deep", path, nest(value, MAX_DEPTH + 1)))
        if kind == "null":
            continue
        if path not in NULLABLE:
            found.append(("null", path, None))
        for other, samples in OTHER_TYPES.items():
            if other != kind:
                found += [("wrong type", path, sample) for sample in samples]
        if kind == "number":
            found.append(("infinite", path, "<1e400>"))
            if path != ("training", "seed"):
                found.append(("negative", path, -1 if isinstance(value, int) else -0.5))
            if path not in ANY_SIZE:
                huge = 10**12 if isinstance(value, int) else 1e12
                found += [("huge", path, huge), ("huge", path, 10**400)]
    return found


BREAKAGES = breakages()


def broken(what: str, path: tuple, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOLDEN_CONFIG)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if what == "removed":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def test_the_breakages_cover_every_key_of_the_golden_config() -> None:
    paths = {path for path, _ in walk(GOLDEN_CONFIG)}
    assert {path for _, path, _ in BREAKAGES} >= paths
    assert len(BREAKAGES) > 500


@schema_settings(80)
@given(breakage=st.sampled_from(BREAKAGES))
def test_a_config_that_breaks_the_schema_is_refused(data_csv: Path, breakage) -> None:
    what, path, value = breakage
    # More series than series.json lists (but a 64-bit number) is caught when the two
    # are compared.
    compared = (path, what) == (("network", "n_series"), "huge") and value < 2**63
    file = "series.json" if compared else "config.json"
    with folder() as directory:
        model = write_model(directory, {"config.json": config_bytes(broken(what, path, value))})
        message = assert_refused(model, data_csv, file)
    assert message.endswith(FIX) or message.endswith("upgrade rnncast to use it"), message


def refusal(document: Any, name: str = "config.json") -> str:
    with folder() as directory:
        model = write_model(directory, {name: config_bytes(document)})
        with pytest.raises(ArtifactError) as raised:
            load_model(model)
        return str(raised.value).replace(str(model / name), name)


def test_a_null_horizon_names_the_key_the_value_and_what_is_expected(data_csv: Path) -> None:
    # Case 1 of the untrusted-model review: a TypeError deep in the network, exit 1.
    with folder() as directory:
        document = broken("null", ("model", "horizon"), None)
        model = write_model(directory, {"config.json": config_bytes(document)})
        message = assert_refused(model, data_csv, "config.json")
    assert message == (
        f"{model / 'config.json'} is not a valid model file: model.horizon is null, expected "
        f"an integer{FIX}"
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused_before_it_recurses(data_csv: Path, depth: int) -> None:
    # Case 2: 100,000 nested arrays raised RecursionError in json.loads, exit 1.
    with folder() as directory:
        text = "[" * depth + "]" * depth
        model = write_model(directory, {"config.json": text.encode()})
        message = assert_refused(model, data_csv, "config.json")
    assert message == (
        f"{model / 'config.json'} is not a valid model file: it nests arrays or objects "
        f"deeper than {MAX_DEPTH} levels{FIX}"
    )


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 10**6])
def test_a_config_of_a_newer_format_asks_for_an_upgrade(data_csv: Path, version: int) -> None:
    # Case 4: a format_version newer than this code reads was loaded and used.
    with folder() as directory:
        document = {**GOLDEN_CONFIG, "format_version": version}
        model = write_model(directory, {"config.json": config_bytes(document)})
        message = assert_refused(model, data_csv, "config.json")
    assert message == (
        f"{model / 'config.json'} has model format version {version}; this rnncast "
        f"({__version__}) reads versions 1 to {FORMAT_VERSION}; upgrade rnncast to use it"
    )


def test_a_config_of_an_older_format_asks_for_retraining() -> None:
    assert refusal({**GOLDEN_CONFIG, "format_version": 0}) == (
        f"config.json has model format version 0; this rnncast ({__version__}) reads "
        f"versions 1 to {FORMAT_VERSION}; retrain the model"
    )


@pytest.mark.parametrize(
    ("version", "detail"),
    [
        (True, "format_version is true, expected an integer"),
        ("1", 'format_version is "1", expected an integer'),
        (1.0, "format_version is 1.0, expected an integer"),
    ],
)
def test_a_format_version_that_is_not_an_integer_is_refused(version: Any, detail: str) -> None:
    # JSON's true is Python's True, which equals 1: it must not pass for version 1.
    assert refusal({**GOLDEN_CONFIG, "format_version": version}) == (
        f"config.json is not a valid model file: {detail}{FIX}"
    )


def changed(path: tuple, value: Any) -> dict[str, Any]:
    return broken("set", path, value)


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        (changed(("model", "hidden"), 10**9), "model.hidden is 1000000000, more than any "
         f"model rnncast trains (at most {MAX_SIZE:,})"),
        (changed(("model", "horizon"), 0), "model: horizon must be at least 1, got 0"),
        # A long season sets how far back forecasting gathers: 10**12 steps would be
        # terabytes of indices.
        (changed(("model", "long_season"), 10**12), "model.long_season is 1000000000000, "
         f"more than any model rnncast trains (at most {MAX_SIZE:,})"),
        (changed(("model", "long_season"), 1),
         "model: long_season must be 0 (none) or at least 2 steps, got 1"),
        (changed(("model", "members"), 0), "model: members must be between 1 and 64, got 0"),
        (changed(("model", "cell"), "transformer"),
         "model: cell must be one of lstm, gru, indrnn, rnn; got 'transformer'"),
        (changed(("model", "residual"), 0), "model.residual is 0, expected true or false"),
        (changed(("model", "quantiles"), [0.5, "0.9"]),
         'model.quantiles[1] is "0.9", expected a number'),
        (changed(("model", "colour"), "red"), 'model has the unknown key "colour"; rnncast '
         f"writes {', '.join(f.name for f in dataclasses.fields(ModelConfig))}"),
        (broken("removed", ("training", "lr"), None), "training.lr is missing"),
        (changed(("training", "lookback"), 5),
         "training: --lookback applies to --strategy window only"),
        (changed(("network", "n_inputs"), 9), "network.n_inputs is 9, but a model of D data "
         "with these settings has 8"),
        (changed(("network", "recurrent_steps"), 17), "network.recurrent_steps is 17, but a "
         "model of D data with these settings has 16"),
        (changed(("data", "frequency"), "fortnightly"), 'data.frequency is "fortnightly", '
         "expected a frequency as rnncast writes it (h, 15min, D, W, MS, ...)"),
        (changed(("data", "frequency"), "1D"), 'data.frequency is "1D", expected a frequency '
         "as rnncast writes it (h, 15min, D, W, MS, ...)"),
        (changed(("data", "settings", "fill"), "guess"),
         "data.settings: fill must be one of interpolate, ffill, zero, error; got 'guess'"),
        (changed(("scaler", "method"), "robust"),
         'scaler.method is "robust", but model.scaler is \'standard\''),
        (changed(("data", "covariates"), "x" * 1000), 'data.covariates is "xxxxxxxxxxxxxxxxxx'
         'xxxxxxxxxxxxxxxxxx..., expected a list of strings'),
        (changed(("data", "columns", "target"), nest(["y"], MAX_DEPTH)), "data.columns.target "
         f"nests arrays or objects deeper than {MAX_DEPTH} levels"),
        (changed(("data", "steps"), 10**30),
         "data.steps is 1000000000000000000000000000000, beyond a 64-bit integer"),
        ([GOLDEN_CONFIG], "it holds [{\"format_version\": 1, \"rnncast_versi..., expected "
         "an object"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)  # fmt: skip
def test_config_messages_name_the_key_the_value_and_what_is_expected(
    document: Any, detail: str
) -> None:
    assert refusal(document) == f"config.json is not a valid model file: {detail}{FIX}"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (b'{"format_version": NaN}', "it is not valid JSON (NaN is not a number JSON allows)"),
        (b'{"a": 1, "a": 2}', 'it is not valid JSON (the key "a" appears twice in one object)'),
        (b'{"a": 1e400}', "a is a number too large for a float"),
        (b"\xff\xfe{}", "it is not UTF-8 text"),
        (b"{", "it is not valid JSON (Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1))"),
    ],
)  # fmt: skip
def test_json_rnncast_never_writes_is_refused(text: bytes, detail: str) -> None:
    with pytest.raises(ArtifactError) as raised:
        parse_json(text, "config.json")
    assert str(raised.value) == f"config.json is not a valid model file: {detail}{FIX}"


def test_a_config_without_keys_added_after_format_1_still_loads(tmp_path: Path) -> None:
    # The golden model predates training.test_size and data.trained_until(_ns).
    assert "test_size" not in GOLDEN_CONFIG["training"]
    assert "trained_until" not in GOLDEN_CONFIG["data"]
    model = load_model(write_model(tmp_path, {"config.json": config_bytes(GOLDEN_CONFIG)}))
    assert model.training.test_size is None
    # Its encoder read levels, whatever the default for new models is.
    assert getattr(model.config, "relative_inputs", False) is False
    document = changed(("training", "test_size"), 7)
    document["data"].update(trained_until="2024-04-28", trained_until_ns=1714262400 * 10**9)
    (tmp_path / "again").mkdir()
    again = write_model(tmp_path / "again", {"config.json": config_bytes(document)})
    model = load_model(again)
    assert model.training.test_size == 7
    assert model.schema["trained_until"] == "2024-04-28"


# ---------------------------------------------------------------------------------------
# series.json and history.json
# ---------------------------------------------------------------------------------------

GOLDEN_HISTORY = json.loads(GOLDEN_FILES["history.json"])


@pytest.mark.parametrize(
    ("name", "document", "detail"),
    [
        ("series.json", {"ids": ["north"]},
         "ids lists 1 series, but config.json's network.n_series is 2"),
        ("series.json", {"ids": ["north", "north"]}, 'ids lists "north" more than once'),
        ("series.json", {"ids": ["north", 2]}, "ids[1] is 2, expected a string"),
        ("series.json", ["north", "south"], 'it holds ["north", "south"], expected an object'),
        ("history.json", {**GOLDEN_HISTORY, "best_epoch": 9},
         "best_epoch is 9, expected 0 to 3 (the epochs it lists)"),
        ("history.json", {**GOLDEN_HISTORY, "seconds": "fast"},
         'seconds is "fast", expected a number'),
        ("history.json", {**GOLDEN_HISTORY, "epochs": [{"epoch": 1}]},
         "epochs[0].train_loss is missing"),
        ("history.json", {**GOLDEN_HISTORY, "epochs": [None]},
         "epochs[0] is null, expected an object"),
        ("history.json", {**GOLDEN_HISTORY, "note": "hi"}, 'it has the unknown key "note"; '
         "rnncast writes epochs, stopped, best_epoch, best_loss, seconds, device, chosen, refit, "
         "members, averaged, left_out, shares"),
    ],
)  # fmt: skip
def test_series_and_history_that_break_the_schema_are_refused(
    data_csv: Path, name: str, document: Any, detail: str
) -> None:
    with folder() as directory:
        model = write_model(directory, {name: config_bytes(document)})
        message = assert_refused(model, data_csv, name)
    assert message == f"{model / name} is not a valid model file: {detail}{FIX}"


def test_a_history_of_a_model_saved_without_one_loads(tmp_path: Path) -> None:
    # Model.history defaults to {}: a model saved through the Python API may have none.
    assert load_model(write_model(tmp_path, {"history.json": b"{}"})).history == {}


# ---------------------------------------------------------------------------------------
# Broken tensors
# ---------------------------------------------------------------------------------------

TENSOR_DTYPES = (torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64)


def grown(tensor: torch.Tensor) -> torch.Tensor:
    return torch.cat([tensor, tensor[:1]])  # one more row (or element) along dim 0


def tensor_breakages() -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = [("extra", "surprise.weight", None)]
    for name in sorted(GOLDEN_WEIGHTS):
        found += [("dtype", name, dtype) for dtype in TENSOR_DTYPES]
        found += [("grown", name, None), ("flattened", name, None), ("renamed", name, None)]
        found += [("dropped", name, None)]
        found += [("non-finite", name, value) for value in (np.nan, np.inf, -np.inf)]
    return found


def broken_weights(what: str, name: str, value: Any) -> dict[str, torch.Tensor]:
    weights = dict(GOLDEN_WEIGHTS)
    tensor = weights.get(name)
    if what == "extra":
        weights[name] = torch.zeros(3)
    elif what == "dtype":
        weights[name] = tensor.to(value)
    elif what == "grown":
        weights[name] = grown(tensor)
    elif what == "flattened":
        weights[name] = tensor.reshape(1, -1) if tensor.ndim == 1 else tensor.reshape(-1)
    elif what == "renamed":
        weights["x." + name] = weights.pop(name)
    elif what == "dropped":
        del weights[name]
    else:
        tensor = tensor.clone()
        tensor.view(-1)[tensor.numel() // 2] = value
        weights[name] = tensor
    return weights


@schema_settings(40)
@given(breakage=st.sampled_from(tensor_breakages()))
def test_weights_that_do_not_fit_the_network_are_refused(data_csv: Path, breakage) -> None:
    with folder() as directory:
        weights = save_tensors(broken_weights(*breakage))
        model = write_model(directory, {"model.safetensors": weights})
        message = assert_refused(model, data_csv, "model.safetensors")
    assert message.startswith(f"{model / 'model.safetensors'} does not fit config.json: ")


def scaler_breakages() -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = [("extra", "surprise", None)]
    for name in sorted(GOLDEN_SCALER):
        found += [("dtype", name, np.float32), ("dtype", name, np.int64)]
        found += [("grown", name, None), ("dropped", name, None)]
        found += [("value", name, value) for value in (np.nan, np.inf)]
        if name.endswith("scale"):
            found += [("value", name, 0.0), ("value", name, -1.0)]
    return found


@schema_settings(20)
@given(breakage=st.sampled_from(scaler_breakages()))
def test_a_scaler_that_does_not_fit_is_refused(data_csv: Path, breakage) -> None:
    what, name, value = breakage
    arrays = dict(GOLDEN_SCALER)
    if what == "extra":
        arrays[name] = np.zeros(2)
    elif what == "dtype":
        arrays[name] = arrays[name].astype(value)
    elif what == "grown":
        arrays[name] = np.concatenate([arrays[name], arrays[name][:1]])
    elif what == "dropped":
        del arrays[name]
    else:
        arrays[name] = arrays[name].copy()
        arrays[name][0] = value
    with folder() as directory:
        model = write_model(directory, {"scaler.safetensors": save_arrays(arrays)})
        message = assert_refused(model, data_csv, "scaler.safetensors")
    assert message.startswith(f"{model / 'scaler.safetensors'} does not fit config.json: ")


# ---------------------------------------------------------------------------------------
# What rnncast writes, the schema accepts
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "training", "data"),
    [
        (ModelConfig(horizon=3, cell="gru", hidden=4, layers=1, bidirectional=True),
         TrainConfig(strategy="window", lookback=10, max_epochs=1, device="cpu"),
         DataConfig(covariates=("load",))),
        (ModelConfig(horizon=3, cell="indrnn", hidden=4, layers=2, residual=True,
                     id_embedding=2, dropout=0.1),
         TrainConfig(max_epochs=1, device="cpu", test_size=3, threads=1, max_time=100.0),
         DataConfig(covariates=("load",))),
        (ModelConfig(horizon=2, cell="rnn", activation="relu", hidden=4, layers=1, loss="mse",
                     scaler="meanabs", season_inputs=False),
         TrainConfig(max_epochs=1, device="cpu"),
         None),
    ],
    ids=["window-gru-bidirectional", "indrnn-embedding-2-layers", "rnn-mse-no-data-settings"],
)  # fmt: skip
def test_every_kind_of_model_rnncast_writes_loads(
    tmp_path: Path, model: ModelConfig, training: TrainConfig, data: DataConfig | None
) -> None:
    trained = train(small_panel(), model, training, data=data)
    loaded = load_model(save_model(trained, tmp_path / "model"))
    assert (loaded.config, loaded.training, loaded.shape) == (
        trained.config,
        trained.training,
        trained.shape,
    )
    assert loaded.schema == json.loads(json.dumps(trained.schema))
    assert loaded.history == trained.history
    saved, read = trained.network.state_dict(), loaded.network.state_dict()
    assert saved.keys() == read.keys()
    assert all(torch.equal(saved[name], read[name]) for name in saved)


# ---------------------------------------------------------------------------------------
# Format 4: the covariate roles (issue 14)
# ---------------------------------------------------------------------------------------

ROLES_DIR = GOLDEN / "model_v4"
ROLES_FILES = {name: (ROLES_DIR / name).read_bytes() for name in MODEL_FILES}
ROLES_CONFIG = json.loads(ROLES_FILES["config.json"])


def roles_changed(path: tuple, value: Any, remove: bool = False) -> bytes:
    document = copy.deepcopy(ROLES_CONFIG)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return config_bytes(document)


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        (roles_changed(("network", "static_levels"), [5]), "network.static_levels is [5], but "
         "a model of D data with these settings has [3]"),
        (roles_changed(("network", "static_levels"), [1]),
         "network.static_levels[0] is 1, expected at least 2"),
        (roles_changed(("data", "inputs", "static_covariates", "categories", 0, "levels"),
                       ["coast", "coast"]),
         "data.inputs.static_covariates.categories[0].levels names a level twice"),
        (roles_changed(("data", "inputs", "holidays", "countries"), [49]),
         "data.inputs.holidays.countries[0] is 49, expected a string"),
        (roles_changed(("data", "inputs", "static_covariates", "numbers"),
                       [{"name": "area", "loc": 1.0, "scale": 0.0}]),
         "data.inputs.static_covariates.numbers[0].scale is 0.0, expected > 0"),
        (roles_changed(("data", "future_covariates"), None, remove=True),
         "network.n_inputs is 14, but a model of D data with these settings has 13"),
        (roles_changed(("data", "inputs", "surprise"), 1), 'data.inputs has the unknown key '
         '"surprise"; rnncast writes static_covariates, holidays'),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)  # fmt: skip
def test_tampered_covariate_roles_are_refused(config: bytes, detail: str) -> None:
    with folder() as directory:
        model = directory / "model"
        model.mkdir()
        files = {**ROLES_FILES, "config.json": config}
        for name, data in files.items():
            (model / name).write_bytes(data)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        (model / MANIFEST).write_text(json.dumps({"format_version": 4, "files": digests}))
        with pytest.raises(ArtifactError) as raised:
            load_model(model)
    message = str(raised.value).replace(str(model / "config.json"), "config.json")
    assert message == f"config.json is not a valid model file: {detail}{FIX}"
