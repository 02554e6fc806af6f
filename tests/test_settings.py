"""--config TOML files: flags win over the file, the file over the defaults; unknown
keys, tables and wrong types are usage errors naming the file and key (issue 5)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.model_files import MANIFEST, SETTINGS_FILE
from tests.conftest import SAMPLE_DATA

runner = CliRunner()
LOAD = SAMPLE_DATA / "load_hourly.parquet"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_toml(tmp_path: Path, text: str, name: str = "rnncast.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def printed(*args) -> dict:
    """The [train] table `train --print-config` prints, parsed."""
    result = invoke("train", LOAD, *args, "--print-config")
    assert result.exit_code == 0, result.stderr
    return tomllib.loads(result.stdout)["train"]


def test_print_config_shows_defaults_and_leaves_unset_settings_out(tmp_path: Path) -> None:
    settings = printed("--horizon", 24, "--out", tmp_path / "m")
    assert settings["horizon"] == 24
    assert settings["cell"] == "lstm" and settings["lr"] == 0.003 and settings["seed"] == 0
    assert "hidden" not in settings  # unset: chosen from the data, so no TOML value
    assert not (tmp_path / "m").exists()  # printing trains nothing


def test_the_file_fills_in_options_and_flags_win(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path, 'horizon = 12\nout = "from-file"\ncell = "gru"\n[train]\nlr = 0.01\n'
    )
    settings = printed("--config", config, "--cell", "indrnn")
    assert settings["horizon"] == 12 and settings["out"] == "from-file"
    assert settings["lr"] == 0.01
    assert settings["cell"] == "indrnn"  # the flag beats the file


def test_print_config_says_where_each_setting_came_from(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[train]\nhorizon = 12\nout = 'm'\n")
    result = invoke("train", LOAD, "--config", config, "--seed", 7, "--print-config")
    lines = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    assert lines["horizon"] == "12  # config file"
    assert lines["seed"] == "7  # flag"
    assert lines["cell"] == '"lstm"'


def test_a_command_table_wins_over_the_top_level(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "horizon = 6\nout = 'm'\n[train]\nhorizon = 48\n")
    assert printed("--config", config)["horizon"] == 48


def test_keys_may_be_spelt_like_the_flags_and_lists_become_comma_lists(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        "[train]\nhorizon = 6\nout = 'm'\nmax-epochs = 3\ntbptt = 32\n"
        "covariates = ['temperature']\nquantiles = [0.05, 0.5, 0.95]\n",
    )
    settings = printed("--config", config)
    assert settings["max_epochs"] == 3 and settings["chunk_len"] == 32
    assert settings["covariates"] == "temperature"
    assert settings["quantiles"] == "0.05,0.5,0.95"


def test_the_printed_settings_read_back_to_the_same_settings(tmp_path: Path) -> None:
    first = invoke("train", LOAD, "--horizon", 6, "--out", "m", "--cell", "gru", "--lr", 1e-4,
                   "--time-format", 'x"y', "--print-config")  # fmt: skip
    saved = write_toml(tmp_path, first.stdout, "printed.toml")
    again = invoke("train", LOAD, "--config", saved, "--print-config")
    assert again.exit_code == 0, again.stderr
    assert tomllib.loads(again.stdout) == tomllib.loads(first.stdout)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("horizn = 24\n", "unknown key 'horizn'; did you mean 'horizon'?"),
        ("[trian]\nhorizon = 24\n", "[trian] is not a command; tables are named after commands"),
        ("[train]\nmodel = 'm'\n", "[train] has unknown key 'model'; rnncast train has no --model"),
        ("[train]\nhorizon = '24'\n", "train.horizon = '24' must be a whole number"),
        ("[train]\nhorizon = 2.5\n", "train.horizon = 2.5 must be a whole number"),
        ("[train]\nresidual = 'yes'\n", "train.residual = 'yes' must be true or false"),
        ("[train]\nhorizon = true\n", "train.horizon = True must be a whole number"),
        ("[train]\nhorizon = 0\n", "train.horizon = 0:"),
        ("[train]\nhorizon = \n", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_usage_errors_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    config = write_toml(tmp_path, text)
    result = invoke("train", LOAD, "--out", tmp_path / "m", "--config", config)
    assert result.exit_code == 2
    flat = " ".join(result.output.split()).replace("│", "").replace("  ", " ")
    assert str(config.name) in flat
    assert " ".join(message.split()) in flat.replace(" ", " ")
    assert not (tmp_path / "m").exists()


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("check", LOAD, "--config", tmp_path / "nowhere.toml")
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_keys_of_other_commands_at_the_top_are_left_to_them(tmp_path: Path) -> None:
    # One file for the whole pipeline: `model` means nothing to check, but forecast has it.
    config = write_toml(tmp_path, "model = 'models/load'\ncovariates = 'temperature'\n")
    result = invoke("check", LOAD, "--config", config, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["covariates"] == ["temperature"]


def test_train_stores_its_settings_in_the_model_and_an_edit_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "m"
    config = write_toml(tmp_path, f"[train]\nhorizon = 24\nout = '{out}'\nmax_epochs = 1\n")
    options = ("--config", config, "--hidden", 4, "--ensemble", 1, "--test-size", 0)
    result = invoke("train", LOAD, *options)
    assert result.exit_code == 0, result.stderr
    stored = (out / SETTINGS_FILE).read_text()
    assert stored == invoke("train", LOAD, *options, "--print-config").stdout
    assert SETTINGS_FILE in json.loads((out / MANIFEST).read_text())["files"]

    (out / SETTINGS_FILE).write_text(stored.replace("max_epochs = 1", "max_epochs = 9"))
    result = invoke("inspect", out)
    assert result.exit_code == 4
    assert f"{out / SETTINGS_FILE} does not match its sha256" in result.stderr


def test_forecast_reads_its_own_table(tmp_path: Path) -> None:
    model = tmp_path / "m"
    trained = invoke("train", LOAD, "--horizon", 6, "--out", model, "--max-epochs", 1,
                     "--hidden", 4, "--ensemble", 1, "--test-size", 0)  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    out = tmp_path / "f.csv"
    config = write_toml(
        tmp_path, f"out = 'overridden.csv'\n[train]\nout = 'x'\n"
        f"[forecast]\nmodel = '{model}'\nout = '{out}'\nquiet = true\n",
    )  # fmt: skip
    result = invoke("forecast", LOAD, "--config", config)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # quiet came from the file
    assert out.read_text().startswith("unique_id,ds,y_hat")
    assert not Path("overridden.csv").exists()
