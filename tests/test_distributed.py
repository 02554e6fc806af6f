"""One run over many processes (issue 15): the pieces in one process, and whole runs
under ``torchrun --nproc-per-node 2`` with gloo on the CPU, through the CLI."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnncast import distributed, logs
from rnncast.distributed import World, launched_world, timeout_seconds
from rnncast.errors import ConfigError, DataError
from rnncast.panel_shares import balanced_bounds
from tests.conftest import SAMPLE_DATA

# --- the pieces, in one process -----------------------------------------------------


def test_no_torchrun_environment_is_a_single_process() -> None:
    assert launched_world({}) == distributed.SINGLE
    assert not launched_world({"PATH": "/bin"}).is_distributed


def test_the_torchrun_environment_names_rank_and_size() -> None:
    world = launched_world({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert world == World(rank=3, size=4, local_rank=1)
    assert world.is_distributed and not world.is_main


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE='two'"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "RANK=2"),
        ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE=0"),
    ],
)
def test_an_environment_torchrun_never_sets_is_refused(environ: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        launched_world(environ)


def test_the_timeout_comes_from_its_variable() -> None:
    assert timeout_seconds({}) == distributed.DEFAULT_TIMEOUT
    assert timeout_seconds({"RNNCAST_DISTRIBUTED_TIMEOUT": "45"}) == 45.0
    for bad in ("0", "-3", "soon", "nan"):
        with pytest.raises(ConfigError, match="RNNCAST_DISTRIBUTED_TIMEOUT"):
            timeout_seconds({"RNNCAST_DISTRIBUTED_TIMEOUT": bad})


@pytest.mark.parametrize("size", [2, 3, 4])
def test_the_series_are_dealt_in_consecutive_shares_of_even_steps(size: int) -> None:
    lengths = np.random.default_rng(size).integers(50, 5_000, size=37)
    bounds = balanced_bounds(lengths, size)
    # Consecutive shares that join into the whole, in order, each holding a series.
    assert bounds[0] == 0 and bounds[-1] == 37 and (np.diff(bounds) >= 1).all()
    loads = [int(lengths[bounds[r] : bounds[r + 1]].sum()) for r in range(size)]
    # Each share ends at the series that crosses its part of the steps: no share is
    # more than one series from its even part.
    assert max(abs(load - lengths.sum() / size) for load in loads) <= 2 * int(lengths.max())


def test_every_process_keeps_a_series_when_a_few_hold_most_steps() -> None:
    lengths = np.array([10_000, 10_000, 5, 5, 5])
    bounds = balanced_bounds(lengths, 4)
    assert list(bounds) == [0, 1, 2, 3, 5]


def test_more_processes_than_series_is_refused() -> None:
    with pytest.raises(ConfigError, match="3 series cannot be shared among 4 processes"):
        balanced_bounds(np.array([10, 20, 30]), 4)


def test_in_one_process_the_agreements_are_the_values_themselves() -> None:
    assert distributed.world() == distributed.SINGLE
    assert distributed.sum_numbers([1.5, 2.0]).tolist() == [1.5, 2.0]
    assert distributed.max_numbers([3.0]).tolist() == [3.0]
    assert distributed.any_true(True) and not distributed.any_true(False)
    assert distributed.from_main(("ses", 0.5)) == ("ses", 0.5)
    assert distributed.gather_to_all({"a": 1}) == [{"a": 1}]
    assert distributed.gather_to_main({"a": 1}) == [{"a": 1}]
    assert distributed.decided_by_main(lambda: ("theta", 0.2)) == ("theta", 0.2)
    distributed.raise_together(None)
    with pytest.raises(DataError, match="mine"):
        distributed.raise_together(DataError("mine"))


def test_an_error_raised_together_is_waited_for_only_among_many_processes() -> None:
    error = distributed.agreed(DataError("the same on every process"))
    assert error.every_process_raised
    # One process has no one to wait for.
    assert not distributed.every_process_raised(error)
    assert not distributed.every_process_raised(DataError("never marked"))


def test_single_process_training_starts_no_process_group(monkeypatch, tiny_data) -> None:
    import rnncast
    from rnncast.config import ModelConfig, TrainConfig

    def refuse(*args, **kwargs):
        raise AssertionError("a single process joined a process group")

    monkeypatch.setattr(torch.distributed, "init_process_group", refuse)
    panel = rnncast.read_panel(tiny_data)
    model = rnncast.train(panel, ModelConfig(horizon=6, hidden=8, layers=1),
                          TrainConfig(max_epochs=1, ensemble=1, seed=1))  # fmt: skip
    assert model.history["epochs"] and not torch.distributed.is_initialized()


def test_a_command_that_fails_leaves_the_process_group_before_it_exits(tmp_path) -> None:
    # A process that exits still in the group can abort while the interpreter
    # finalises gloo's pending work (SIGABRT after its error was told).
    from typer.testing import CliRunner

    from rnncast.cli import app

    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        arguments = ["train", str(tmp_path / "missing.parquet"), "--horizon", "6",
                     "--out", str(tmp_path / "m")]  # fmt: skip
        done = CliRunner().invoke(app, arguments)
        assert done.exit_code == 3, done.output
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_other_ranks_log_warnings_and_errors_only_naming_their_rank(capsys) -> None:
    logs.configure("text", rank=1)
    logs.note("trained", "an info line")
    logs.warn("data_warning", "a warning line")
    err = capsys.readouterr().err
    assert "an info line" not in err
    assert "rank 1: warning: a warning line" in err
    logs.configure("json", rank=2, command="train")
    logs.fail("failed", "an error line")
    line = json.loads(capsys.readouterr().err)
    assert (line["rank"], line["level"], line["message"]) == (2, "error", "an error line")
    logs.configure("text", rank=0)
    logs.note("trained", "rank 0 speaks for the run")
    assert capsys.readouterr().err == "rank 0 speaks for the run\n"
    logging.getLogger(logs.LOGGER).handlers = []


def test_commands_without_a_distributed_form_refuse_torchrun(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from rnncast.cli import app

    data = tmp_path / "d.csv"
    data.write_text("unique_id,ds,y\na,2025-01-01,1\na,2025-01-02,2\n")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    result = CliRunner().invoke(app, ["check", str(data)])
    assert result.exit_code == 2
    assert "rank 1: error: rnncast check runs in one process; start it without torchrun" in (
        result.stderr
    )
    monkeypatch.setenv("RANK", "7")
    result = CliRunner().invoke(app, ["check", str(data)])
    assert result.exit_code == 2
    assert "do not describe a run" in result.stderr


# --- whole runs under torchrun ---------------------------------------------------------

HORIZON = 6
TRAIN = ["--horizon", str(HORIZON), "--hidden", "8", "--layers", "1", "--ensemble", "1",
         "--seed", "1", "--log-format", "text"]  # fmt: skip


def _frame(series: int, steps: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    hours = np.arange(steps)
    rows = []
    for index in range(series):
        level = 10 + 3 * index
        values = level + 2 * np.sin(2 * np.pi * hours / 24 + index) + rng.normal(0, 0.3, steps)
        rows.append(pd.DataFrame({
            "unique_id": f"s{index}",
            "ds": pd.date_range("2025-01-01", periods=steps, freq="h"),
            "y": values,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(autouse=True)
def launched_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    # torchrun keeps each launch's logs in a new folder under the temporary folder and
    # never removes it: the processes launched here keep theirs with the test's.
    folder = tmp_path_factory.mktemp("launched")
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    path = tmp_path / "load.parquet"
    _frame(series=4, steps=240).to_parquet(path, index=False)
    return path


def _environment() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}  # fmt: skip
    # Two processes share this machine's cores; a bounded wait for a lost peer.
    return {**environ, "OMP_NUM_THREADS": "1", "RNNCAST_DISTRIBUTED_TIMEOUT": "60",
            "COLUMNS": "200"}  # fmt: skip


def _torchrun(*arguments: str, script: Path | None = None, processes: int = 2) -> list[str]:
    target = [str(script)] if script is not None else ["-m", "rnncast"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(processes), *target, *arguments]  # fmt: skip


EPOCH_LINE = re.compile(r"\s*epoch \d+: train ")


def _told(stderr: str) -> str:
    """A run's error output less its epoch lines: the ranks' errors and torchrun's
    summary, short enough to survive a CI log cut in the middle."""
    return "\n".join(line for line in stderr.splitlines() if not EPOCH_LINE.match(line))


def _run(command: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=_environment(), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_train_and_forecast_under_torchrun_behave_as_one_run(tiny_data: Path, tmp_path) -> None:
    import rnncast

    # No refit, so the model saved is the one the processes scored on the test part.
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, "--max-epochs", "12",
                          "--no-refit"), tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    # One log stream: rank 0's lines only, and one "trained" line.
    assert "rank 1:" not in done.stderr
    assert done.stderr.count("model written to model") == 1
    model = rnncast.load_model(tmp_path / "model")
    assert model.history["epochs"] and model.config.horizon == HORIZON
    assert (tmp_path / "model" / "report.md").is_file()
    # Each process forecast half of the test part; rank 0 scored every series as one
    # process scores them.
    from rnncast.evaluation import holdout

    scored = json.loads((tmp_path / "model" / "metrics.json").read_text())
    alone_scores = holdout(model, rnncast.read_panel(str(tiny_data))).scores["model"]
    assert scored["series"]["unique_id"] == [f"s{index}" for index in range(4)]
    for metric in ("mase", "smape", "coverage_80"):
        assert scored["summary"]["model"][metric]["mean"] == pytest.approx(
            alone_scores.summary[metric]["mean"], rel=1e-4
        ), metric
    assert not list(tmp_path.glob(".model*")), "a lock or staging folder was left behind"

    shared = _run(_torchrun("forecast", str(tiny_data), "--model", "model", "--out", "two.csv"),
                  tmp_path)  # fmt: skip
    assert shared.returncode == 0, _told(shared.stderr)
    # The processes shared the 4 series in reads of 2; one process reading the same
    # reads writes the same bytes.
    alone = subprocess.run(
        [sys.executable, "-m", "rnncast", "forecast", str(tiny_data), "--model", "model",
         "--out", "one.csv", "--series-per-read", "2"],
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert alone.returncode == 0, _told(alone.stderr)
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "two.csv")) == 4 * HORIZON
    assert not list(tmp_path.glob(".two.csv*"))


FORECAST_SHARES = """
import json
import sys
from pathlib import Path

import rnncast
from rnncast import distributed, parts

world = distributed.start(distributed.launched_world(), "cpu")
forecast_by_me = []
forecast = parts.forecast


def recording(model, panel, **options):
    forecast_by_me.extend(str(name) for name in panel.ids)
    return forecast(model, panel, **options)


parts.forecast = recording
model = rnncast.load_model(sys.argv[2])
summary = parts.forecast_in_parts(model, sys.argv[1], sys.argv[3], series_per_read=10_000,
                                  context=None, batch_size=512, device=None)
Path(f"forecast-{world.rank}.json").write_text(json.dumps(
    {"forecast": forecast_by_me, "series": summary.series, "skipped": summary.skipped}))
distributed.finish()
"""


def test_a_csv_read_by_rank_zero_is_forecast_in_shares_as_one_process_would(
    tiny_data: Path, tmp_path: Path
) -> None:
    import rnncast
    from rnncast.config import ModelConfig, TrainConfig

    frame = pd.read_parquet(tiny_data)
    frame["y"] = frame["y"].astype(float)
    # A fifth series without a value: skipped, and counted once.
    empty = frame[frame["unique_id"] == "s0"].assign(unique_id="s4", y=math.nan)
    data = tmp_path / "latest.csv"
    pd.concat([frame, empty]).to_csv(data, index=False)
    model = rnncast.train(
        rnncast.read_panel(str(tiny_data)),
        ModelConfig(horizon=HORIZON, hidden=8, layers=1),
        TrainConfig(max_epochs=1, ensemble=1, seed=1),
        out=tmp_path / "model",
    )
    script = tmp_path / "forecast_shares.py"
    script.write_text(FORECAST_SHARES)
    done = _run(_torchrun(str(data), "model", "two.csv", script=script), tmp_path)
    assert done.returncode == 0, _told(done.stderr)
    ranks = [json.loads((tmp_path / f"forecast-{rank}.json").read_text()) for rank in (0, 1)]
    assert [rank["forecast"] for rank in ranks] == [["s0", "s1"], ["s2", "s3"]]
    assert all(rank["series"] == 4 and rank["skipped"] == 1 for rank in ranks)
    # One process forecasting the whole read writes the same rows, and the same values
    # to float32's rounding: the network reads batches of two series, not of four.
    from rnncast.streaming import forecast_dataset

    forecast_dataset(model, data, tmp_path / "one.csv")
    shared, alone = (pd.read_csv(tmp_path / name) for name in ("two.csv", "one.csv"))
    assert list(shared["unique_id"].unique()) == ["s0", "s1", "s2", "s3"]
    pd.testing.assert_frame_equal(shared, alone, rtol=1e-6)
    assert not list(tmp_path.glob(".two.csv*"))
    # One series among two processes: rank 1's share is empty, and it forecasts none.
    single = tmp_path / "single.csv"
    frame[frame["unique_id"] == "s0"].to_csv(single, index=False)
    done = _run(_torchrun(str(single), "model", "one-series.csv", script=script), tmp_path)
    assert done.returncode == 0, _told(done.stderr)
    ranks = [json.loads((tmp_path / f"forecast-{rank}.json").read_text()) for rank in (0, 1)]
    assert [rank["forecast"] for rank in ranks] == [["s0"], []]
    forecast_dataset(model, single, tmp_path / "one-series-alone.csv")
    pd.testing.assert_frame_equal(
        *(pd.read_csv(tmp_path / name) for name in ("one-series.csv", "one-series-alone.csv")),
        rtol=1e-6,
    )


def test_a_share_of_a_csv_that_fails_stops_every_rank_and_writes_nothing(
    tiny_data: Path, tmp_path: Path
) -> None:
    import rnncast
    from rnncast.config import ModelConfig, TrainConfig

    rnncast.train(
        rnncast.read_panel(str(tiny_data)),
        ModelConfig(horizon=HORIZON, hidden=8, layers=1, id_embedding=2),
        TrainConfig(max_epochs=1, ensemble=1, seed=1),
        out=tmp_path / "model",
    )
    # s3 renamed: a series the id embedding never learned, in rank 1's share only.
    frame = pd.read_parquet(tiny_data)
    frame["unique_id"] = frame["unique_id"].replace("s3", "s9")
    frame.to_csv(tmp_path / "latest.csv", index=False)
    told = _fails_on_rank_one("latest.csv", tmp_path, "1 series were not in the training data")
    assert "('s9') and this model learned an embedding per series id" in told
    assert "exitcode  : 3" in told


def _fails_on_rank_one(data: str, tmp_path: Path, said: str) -> str:
    """A torchrun forecast of ``data`` that fails on rank 1 with ``said``: every rank
    fails, rank 0 names rank 1, and the previous output stays whole. Its stderr."""
    (tmp_path / "f.csv").write_text("the previous forecasts\n")
    shared = _run(_torchrun("forecast", data, "--model", "model", "--out", "f.csv"), tmp_path)
    assert shared.returncode != 0
    assert f"rank 1: error: {said}" in shared.stderr
    assert f"error: rank 1 failed: {said}" in shared.stderr
    assert (tmp_path / "f.csv").read_text() == "the previous forecasts\n"
    assert not list(tmp_path.glob(".f.csv*"))
    return shared.stderr


def test_the_window_strategy_trains_under_torchrun_as_one_run(tiny_data: Path, tmp_path) -> None:
    import rnncast
    from rnncast.evaluation import holdout

    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, "--max-epochs", "3",
                          "--strategy", "window", "--lookback", "24", "--batch-size", "32",
                          "--no-refit"), tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    assert "rank 1:" not in done.stderr
    model = rnncast.load_model(tmp_path / "model")
    assert (model.training.strategy, model.training.lookback) == ("window", 24)
    assert len(model.history["epochs"]) == 3
    # Validation losses were summed over both processes' windows: finite, one per epoch.
    assert all(math.isfinite(epoch["val_loss"]) for epoch in model.history["epochs"])
    scored = json.loads((tmp_path / "model" / "metrics.json").read_text())
    alone = holdout(model, rnncast.read_panel(str(tiny_data))).scores["model"]
    assert scored["summary"]["model"]["mase"]["mean"] == pytest.approx(
        alone.summary["mase"]["mean"], rel=1e-4
    )


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _worker_of_rank(launcher: int, rank: int) -> int:
    """The pid of the worker process torchrun started for ``rank``."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for child in children:
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(child)
    raise AssertionError(f"no worker of rank {rank} among {children}")


LONG = ["--max-time", "120", "--max-epochs", "10000", "--patience", "10000"]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_sigterm_stops_every_rank_with_a_checkpoint_and_resume_continues(
    tiny_data: Path, tmp_path: Path
) -> None:
    # The resumed run keeps the checkpoint's settings: a budget of 8 s in all, of which
    # the first run spends its first epoch and the 2 s below.
    budget = ["--max-time", "8", "--max-epochs", "10000", "--patience", "10000", "--no-refit"]
    launcher = subprocess.Popen(
        _torchrun("train", str(tiny_data), "--out", "model", *TRAIN, *budget), cwd=tmp_path,
        env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    checkpoint = tmp_path / "model" / "checkpoint.safetensors"
    _wait_for(checkpoint, 120)
    time.sleep(2)  # a few epochs
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=90)
    assert launcher.returncode != 0
    assert "error: training stopped by SIGTERM" in err
    assert "rank 1: error: training stopped by SIGTERM" in err
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["checkpoint.safetensors"]

    # Another number of processes cannot continue this run, and says what can.
    alone = subprocess.run(
        [sys.executable, "-m", "rnncast", "train", str(tiny_data), "--out", "model", *TRAIN,
         "--resume"], cwd=tmp_path, env=_environment(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert alone.returncode == 2
    assert "was written by 2 processes, and this run has 1; resume under torchrun" in alone.stderr

    resumed = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, "--resume"),
                   tmp_path)  # fmt: skip
    assert resumed.returncode == 0, _told(resumed.stderr)
    assert "resuming from epoch" in resumed.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_killed_rank_stops_the_others_and_keeps_the_checkpoint(
    tiny_data: Path, tmp_path: Path
) -> None:
    launcher = subprocess.Popen(
        _torchrun("train", str(tiny_data), "--out", "model", *TRAIN, *LONG), cwd=tmp_path,
        env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(tmp_path / "model" / "checkpoint.safetensors", 120)
    time.sleep(2)
    os.kill(_worker_of_rank(launcher.pid, 1), signal.SIGKILL)
    began = time.monotonic()
    _, err = launcher.communicate(timeout=120)
    # Bounded: torchrun notices the death and the survivor's next collective fails.
    assert time.monotonic() - began < 90
    assert launcher.returncode != 0
    # torchrun's summary names the rank that died and how; rank 0 either fails at its
    # next collective, saying so, or is stopped by torchrun's SIGTERM while blocked in it.
    assert "rank      : 1 (local_rank: 1)" in err and "Signal 9 (SIGKILL)" in err
    assert ("rank 0: another process of this run failed or stopped" in err
            or "rank      : 0 (local_rank: 0)" in err)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["checkpoint.safetensors"]
    assert not list(tmp_path.glob(".model.lock"))


FAULT = """
import sys
import rnncast.loop
from rnncast.cli import main
from rnncast.errors import DataError

calls = []
validate = rnncast.loop.Loop._validate


def failing_validate(self):
    calls.append(1)
    if self.world.rank == 1 and len(calls) == 3:
        raise DataError("an error raised on rank 1 only")
    return validate(self)


rnncast.loop.Loop._validate = failing_validate
sys.argv = ["rnncast", *sys.argv[1:]]
main()
"""


def test_an_error_on_one_rank_stops_the_run_naming_that_rank(tiny_data: Path, tmp_path) -> None:
    script = tmp_path / "fault.py"
    script.write_text(FAULT)
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, *LONG,
                          script=script), tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "rank 1: error: an error raised on rank 1 only" in done.stderr
    assert "rank 0: another process of this run failed or stopped" in done.stderr
    # Two whole epochs were checkpointed before the failure; no model was written.
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["checkpoint.safetensors"]


NONFINITE = """
import sys
import rnncast.losses
from rnncast import distributed
from rnncast.cli import main

losses = rnncast.losses.TrainingLosses.tbptt
epochs = []


def poisoned(self):
    epochs.append(1)  # one walk over the batches an epoch
    for loss_sum, origins in losses(self):
        if distributed.world().rank == 1 and len(epochs) == 3:
            loss_sum = loss_sum * float("nan")
        yield loss_sum, origins


rnncast.losses.TrainingLosses.tbptt = poisoned
sys.argv = ["rnncast", *sys.argv[1:]]
main()
"""


def test_a_loss_not_finite_on_one_rank_stops_every_rank_as_diverged(
    tiny_data: Path, tmp_path: Path
) -> None:
    script = tmp_path / "nonfinite.py"
    script.write_text(NONFINITE)
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, *LONG,
                          "--lr", "0.004", script=script), tmp_path)  # fmt: skip
    assert done.returncode != 0
    told = "error: the training loss became non-finite in epoch 3; try a lower --lr (now 0.004)"
    assert f"rank 1: {told}" in done.stderr, _told(done.stderr)
    assert f"\n{told}" in done.stderr, _told(done.stderr)
    assert not (tmp_path / "model" / "model.safetensors").exists()


REPLICAS = """
import hashlib
import os
import sys
import rnncast.loop
from rnncast.cli import run

restore_best = rnncast.loop.Loop.restore_best


def recorded(self):
    digest = hashlib.sha256()
    for name, tensor in sorted(self.network.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    with open(f"weights-{os.environ['RANK']}.txt", "w") as out:
        out.write(digest.hexdigest())
    restore_best(self)


rnncast.loop.Loop.restore_best = recorded
sys.argv = ["rnncast", *sys.argv[1:]]
run()
"""


def test_a_rate_that_follows_the_clock_is_the_same_in_every_replica(
    tiny_data: Path, tmp_path: Path
) -> None:
    # Each process reads its own clock; were the rate taken from it, the replicas'
    # weights would part after the first step and DDP would average unlike gradients.
    script = tmp_path / "replicas.py"
    script.write_text(REPLICAS)
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, "--schedule",
                          "budget", "--max-time", "4", "--max-epochs", "10000", "--patience",
                          "10000", "--no-refit", script=script), tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    first, second = ((tmp_path / f"weights-{rank}.txt").read_text() for rank in (0, 1))
    assert first == second
    import rnncast

    rates = [epoch["lr"] for epoch in rnncast.load_model(tmp_path / "model").history["epochs"]]
    assert len(set(rates)) > 1, "the budget schedule's rate never moved"


MAIN_ONLY = """
import atexit
import json
import os
import sys

import rnncast.assessment
import rnncast.ensembles
import rnncast.evaluation
import rnncast.forecasting
import rnncast.selection
from rnncast.cli import run

RANK = int(os.environ["RANK"])
calls = []
states_read = []
reading = rnncast.forecasting.read_states


def read_share(network, lay_out, panel, *args, **kwargs):
    states_read.append([str(name) for name in panel.ids])
    return reading(network, lay_out, panel, *args, **kwargs)


rnncast.forecasting.read_states = read_share


def on_rank_zero_only(module, name):
    original = getattr(module, name)

    def guarded(*args, **kwargs):
        calls.append(name)
        if RANK != 0:
            raise AssertionError(f"{name} ran on rank {RANK}")
        return original(*args, **kwargs)

    setattr(module, name, guarded)


# What reads the gathered validation and test arrays: rank 0's work alone.
on_rank_zero_only(rnncast.selection, "choose_members")
on_rank_zero_only(rnncast.selection, "left_out_members")
on_rank_zero_only(rnncast.selection, "choose_blend")
on_rank_zero_only(rnncast.assessment, "scored")
# Three members as if the budget held them, however fast this machine is today.
rnncast.ensembles.another_fits = lambda spent, budget, refit_share: len(spent) < 3


@atexit.register
def record():
    with open(f"calls-{RANK}.json", "w") as record:
        json.dump(calls, record)
    with open(f"states-{RANK}.json", "w") as record:
        json.dump(states_read, record)


sys.argv = ["rnncast", *sys.argv[1:]]
# As python -m rnncast ends: without the interpreter's teardown (process_exit.py).
run()
"""


def test_only_rank_zero_receives_and_reads_the_validation_and_test_forecasts(
    tiny_data: Path, tmp_path: Path
) -> None:
    script = tmp_path / "main_only.py"
    script.write_text(MAIN_ONLY)
    # No --ensemble: members as the budget holds (three, the script says), so rank 0
    # also chooses among them.
    arguments = ["--horizon", str(HORIZON), "--hidden", "8", "--layers", "1", "--seed", "1",
                 "--max-epochs", "2", "--no-refit"]  # fmt: skip
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *arguments, script=script),
                tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    on_zero = json.loads((tmp_path / "calls-0.json").read_text())
    assert json.loads((tmp_path / "calls-1.json").read_text()) == []
    assert {"choose_members", "choose_blend", "scored"} <= set(on_zero), on_zero
    import rnncast

    model = rnncast.load_model(tmp_path / "model")
    assert len(model.history["members"]) + len(model.history.get("left_out") or []) == 3
    assert model.combination is not None
    assert (tmp_path / "model" / "metrics.json").is_file()
    # The warm states were read in halves, one per process, and rank 0 joined them into
    # what one process reads of every series with the same weights.
    halves = [json.loads((tmp_path / f"states-{rank}.json").read_text()) for rank in (0, 1)]
    assert halves == [[["s0", "s1"]], [["s2", "s3"]]]
    from rnncast.forecasting import warm_states

    alone = warm_states(model, rnncast.read_panel(str(tiny_data)))
    assert model.warm is not None and alone is not None
    np.testing.assert_array_equal(model.warm.steps, alone.steps)
    np.testing.assert_array_equal(model.warm.fingerprints, alone.fingerprints)
    np.testing.assert_array_equal(model.warm.network, alone.network)
    assert sorted(model.warm.tensors) == ["c", "h"]
    for name, tensor in alone.tensors.items():
        np.testing.assert_allclose(model.warm.tensors[name], tensor, rtol=0, atol=1e-5)


DEALT = """
import atexit
import json
import os
import sys

import rnncast.training
from rnncast.cli import run

RANK = int(os.environ.get("RANK", "0"))
laid_out = []
lay_out = rnncast.training.lay_out


def recording(panel, *args, **kwargs):
    laid_out.append({"ids": [str(name) for name in panel.ids],
                     "buffer": int(panel.values.shape[0]), "steps": int(panel.lengths.sum())})
    return lay_out(panel, *args, **kwargs)


rnncast.training.lay_out = recording


@atexit.register
def record():
    with open(f"laid-out-{RANK}.json", "w") as record:
        json.dump(laid_out, record)


sys.argv = ["rnncast", *sys.argv[1:]]
run()
"""


def test_a_panel_dealt_out_makes_every_choice_one_process_makes(tmp_path: Path) -> None:
    # Series of other lengths, levels and regions, a covariate and holidays: each
    # choice made from the data reads something of every series.
    frame = _panel_frame(series=5, steps=400)
    frame = frame[frame.groupby("unique_id").cumcount(ascending=False) < 400 - 60 * (
        frame["unique_id"].str[1:].astype(int) % 3)]  # fmt: skip
    data = tmp_path / "load.parquet"
    frame.to_parquet(data, index=False)
    script = tmp_path / "dealt.py"
    script.write_text(DEALT)
    # Sizes, the chunk, the batch, the streams and the long season left to the data.
    arguments = ["train", str(data), "--horizon", str(HORIZON), "--ensemble", "1", "--seed", "1",
                 "--max-epochs", "1", "--no-refit", "--covariates", "temperature",
                 "--static-covariates", "region", "--holidays", "US"]  # fmt: skip
    done = _run(_torchrun(*arguments, "--out", "two", script=script), tmp_path)
    assert done.returncode == 0, _told(done.stderr)
    alone = tmp_path / "alone"
    alone.mkdir()
    done = _run([sys.executable, str(script), *arguments, "--out", "one"], alone)
    assert done.returncode == 0, done.stderr
    # Each process laid out its own consecutive share, in buffers of its own.
    shares = [json.loads((tmp_path / f"laid-out-{rank}.json").read_text()) for rank in (0, 1)]
    whole = json.loads((alone / "laid-out-0.json").read_text())
    assert [share[0]["ids"] for share in shares] == [["s0", "s1", "s2"], ["s3", "s4"]]
    assert shares[0][0]["ids"] + shares[1][0]["ids"] == whole[0]["ids"]
    assert all(share[0]["buffer"] < whole[0]["buffer"] for share in shares)
    assert sum(share[0]["steps"] for share in shares) == whole[0]["steps"]
    import rnncast

    two, one = (rnncast.load_model(folder) for folder in (tmp_path / "two", alone / "one"))
    assert two.config == one.config
    assert two.training == one.training
    assert two.shape == one.shape
    for key in ("series", "steps", "trained_until", "inputs", "covariates"):
        assert two.schema[key] == one.schema[key], key
    assert list(two.scaler.ids) == list(one.scaler.ids)
    for name in ("loc", "scale", "covariate_loc", "covariate_scale"):
        np.testing.assert_allclose(getattr(two.scaler, name), getattr(one.scaler, name),
                                   rtol=1e-12, err_msg=name)  # fmt: skip


def test_a_share_left_without_a_long_series_is_dealt_out_again(tmp_path: Path) -> None:
    # Dealt by steps, rank 1 would hold s2 and s3, both too short for the horizon.
    frame = _frame(series=4, steps=300)
    frame = frame[frame["unique_id"].isin(["s0", "s1"]) | (frame["ds"] < "2025-01-01 10:00")]
    data = tmp_path / "load.parquet"
    frame.to_parquet(data, index=False)
    script = tmp_path / "dealt.py"
    script.write_text(DEALT)
    done = _run(_torchrun("train", str(data), "--out", "model", *TRAIN, "--max-epochs", "1",
                          "--no-refit", script=script), tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    shares = [json.loads((tmp_path / f"laid-out-{rank}.json").read_text()) for rank in (0, 1)]
    assert [share[0]["ids"] for share in shares] == [["s0"], ["s1"]]
    assert "rank 1: warning: series 's2' skipped" in done.stderr, _told(done.stderr)
    import rnncast

    model = rnncast.load_model(tmp_path / "model")
    assert list(model.scaler.ids) == ["s0", "s1"]
    # Rank 1's share holds none of them: rank 0 validated, read the warm states of and
    # scored both, as its share of the read held them.
    assert model.warm is not None and model.warm.steps.shape == (2,)
    scored = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert scored["series"]["unique_id"] == ["s0", "s1"]


def test_data_rank_zero_cannot_read_stops_every_rank_with_its_exit_code(tmp_path) -> None:
    data = tmp_path / "bad.csv"
    frame = _frame(series=2, steps=60)
    frame.loc[7, "ds"] = frame.loc[6, "ds"]  # a duplicate timestamp: exit 3 by default
    frame.to_csv(data, index=False)
    done = _run(_torchrun("train", str(data), "--out", "model", *TRAIN), tmp_path)
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    said = [line for line in lines if line.startswith("error: ") and "bad.csv" in line]
    assert said, _told(done.stderr)
    assert f"rank 1: error: rank 0 failed: {said[0].removeprefix('error: ')}" in lines
    # Whichever ends first, torchrun names its exit code; the other may be stopped.
    assert "exitcode  : 3" in done.stderr, _told(done.stderr)
    assert not (tmp_path / "model").exists()


SHARED_READ = """
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

import rnncast.panel_shares as panel_shares
import rnncast.shared_read as shared_read
from rnncast import distributed
from rnncast.config import DataConfig

panel_shares.PIECE_BYTES = 4096
world = distributed.start(distributed.launched_world(), "cpu")
whole_reads = []
read_by_main = shared_read._read_by_main


def counted(read):
    whole_reads.append(world.rank)
    return read_by_main(read)


def digest(array):
    if array is None:
        return None
    return [hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
            list(array.shape), array.dtype.str]


def one_series(index):
    rows = slice(int(panel.begins[index]), int(panel.ends[index]))
    statics = panel.statics
    return {
        "id": str(panel.ids[index]),
        "steps": panel.values[rows].tolist(),
        "start": int(panel.start_times[index]),
        "covariates": digest(panel.covariates[rows]),
        "ahead": None if panel.ahead is None else digest(panel.ahead[index]),
        "statics": None if statics is None else repr(
            (statics.numeric[index].tolist(), statics.categories[index].tolist())),
    }


shared_read._read_by_main = counted
options = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sys.argv[2]).items()}
panel = shared_read.read_for_training(sys.argv[1], DataConfig(**options))
report = asdict(panel.ingest)
Path(f"panel-{world.rank}.json").write_text(json.dumps({"whole_reads": whole_reads, "panel": {
    "series": [one_series(index) for index in range(panel.n_series)],
    "rest": repr((panel.freq, panel.covariate_names, panel.future_covariates, panel.tz,
                  panel.target_name, None if panel.statics is None else panel.statics.names)),
    "counts": {k: v for k, v in report.items() if k not in ("skipped", "warnings")},
    "skipped": sorted(report["skipped"]),
    "own_buffers": int(panel.values.shape[0]) == int(panel.lengths.sum()),
    "read_only": not panel.values.flags.writeable,
}}))
distributed.finish()
"""


def _joined_shares(ranks: list[dict]) -> dict:
    """The ranks' shares joined in rank order, with what each says of the whole, which
    must be the same on every rank."""
    rest = [{k: v for k, v in rank["panel"].items() if k != "series"} for rank in ranks]
    assert all(each == rest[0] for each in rest), rest
    return {**rest[0], "series": [one for rank in ranks for one in rank["panel"]["series"]]}


def _shared_read(
    tmp_path: Path, data: Path, processes: int = 2, **config
) -> tuple[list[dict], dict]:
    """Every rank's account of read_for_training under torchrun, and the account of
    one process (the same script without torchrun: read_panel) of the same data."""
    script = tmp_path / "shared_read.py"
    script.write_text(SHARED_READ)
    arguments = [str(data), json.dumps(config)]
    done = _run(_torchrun(*arguments, script=script, processes=processes), tmp_path)
    assert done.returncode == 0, _told(done.stderr)
    ranks = [json.loads((tmp_path / f"panel-{rank}.json").read_text())
             for rank in range(processes)]  # fmt: skip
    alone = tmp_path / "alone"
    alone.mkdir()
    done = _run([sys.executable, str(script), *arguments], alone)
    assert done.returncode == 0, done.stderr
    return ranks, json.loads((alone / "panel-0.json").read_text())["panel"]


def _panel_frame(series: int, steps: int) -> pd.DataFrame:
    frame = _frame(series, steps)
    frame["temperature"] = np.arange(len(frame), dtype=float) % 17
    frame["region"] = np.where(frame["unique_id"].str[1:].astype(int) % 2 == 0, "north", "south")
    return frame.drop(index=[30, 31, 32])  # a gap in s0, filled


def test_each_rank_reads_a_share_of_a_dataset_and_holds_only_that(tmp_path: Path) -> None:
    frame = _panel_frame(series=6, steps=60)
    folder = tmp_path / "data"
    folder.mkdir()
    # Files of one, one and four series: the shares are whole files, the third one
    # larger than half the series and read whole by one process.
    for number, names in enumerate((["s0"], ["s1"], ["s2", "s3", "s4", "s5"])):
        frame[frame["unique_id"].isin(names)].to_parquet(folder / f"part-{number}.parquet")
    config = {"covariates": ["temperature"], "static_covariates": ["region"],
              "holidays": ["US"], "horizon": 6}  # fmt: skip
    ranks, alone = _shared_read(tmp_path, folder, **config)
    assert [rank["whole_reads"] for rank in ranks] == [[], []]
    # Rank 0 read the first two files, rank 1 the third: the shares join into what one
    # process reads, and each holds its own series only, in buffers of their own.
    assert [len(rank["panel"]["series"]) for rank in ranks] == [2, 4]
    assert _joined_shares(ranks) == alone


def test_processes_without_a_file_of_their_own_get_a_share_of_one_read(tmp_path: Path) -> None:
    frame = _frame(series=6, steps=48)
    folder = tmp_path / "data"
    folder.mkdir()
    for number, names in enumerate((["s0", "s1", "s2"], ["s3", "s4", "s5"])):
        frame[frame["unique_id"].isin(names)].to_parquet(folder / f"part-{number}.parquet")
    # Two files of three series among four processes: two processes read a file
    # each (files are not cut), two read nothing.
    ranks, alone = _shared_read(tmp_path, folder, processes=4, horizon=6)
    # Two processes would hold nothing: rank 0 reads the whole and deals it out.
    assert [rank["whole_reads"] for rank in ranks] == [[0], [1], [2], [3]]
    assert [len(rank["panel"]["series"]) for rank in ranks] == [2, 1, 2, 1]
    assert _joined_shares(ranks) == alone


def test_one_file_is_read_by_rank_zero_and_dealt_out(tmp_path: Path) -> None:
    data = tmp_path / "load.parquet"
    _panel_frame(series=5, steps=48).sample(frac=1.0, random_state=3).to_parquet(data)
    ranks, alone = _shared_read(tmp_path, data, covariates=["temperature"], horizon=6)
    assert [rank["whole_reads"] for rank in ranks] == [[0], [1]]
    # Five series of about 48 steps: three to rank 0 (the third crosses half the
    # steps), two to rank 1; rank 0 keeps its share in buffers of its own.
    assert [len(rank["panel"]["series"]) for rank in ranks] == [3, 2]
    assert _joined_shares(ranks) == alone
    assert all(rank["panel"]["own_buffers"] for rank in ranks)
    # Shuffled rows: the series go in the order they first appear, and so do the shares'.
    ids = [one["id"] for one in alone["series"]]
    assert ids != sorted(ids)


def test_one_file_with_future_rows_is_dealt_out_as_one_process_reads_it(
    tmp_path: Path,
) -> None:
    data = SAMPLE_DATA / "load_hourly_next_day.parquet"
    config = {"covariates": ["temperature"], "future_covariates": ["temperature_forecast"],
              "holidays": ["US"], "horizon": 24, "future_rows": "require"}  # fmt: skip
    ranks, alone = _shared_read(tmp_path, data, **config)
    assert [rank["whole_reads"] for rank in ranks] == [[0], [1]]
    assert all(rank["panel"]["series"] for rank in ranks)
    # Each share, covariates known ahead and the rows after the series' ends with it,
    # is the one process's read, array for array, byte for byte; read-only.
    assert _joined_shares(ranks) == alone
    assert all(one["ahead"] is not None for one in alone["series"])
    assert alone["read_only"]


def _files_of_two_series(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir()
    for number, (_, part) in enumerate(frame.groupby(frame["unique_id"].str[1:].astype(int) // 2)):
        part.to_parquet(folder / f"part-{number}.parquet")
    return folder


def test_shares_that_infer_other_frequencies_give_way_to_one_whole_read(tmp_path: Path) -> None:
    frame = _frame(series=4, steps=48)
    # The first two series hold every second hour only: their share alone would be
    # two-hourly, while the whole data is hourly.
    frame = frame[~frame["unique_id"].isin(["s0", "s1"]) | (frame["ds"].dt.hour % 2 == 0)]
    data = _files_of_two_series(frame, tmp_path / "data")
    ranks, alone = _shared_read(tmp_path, data, horizon=6)
    assert [rank["whole_reads"] for rank in ranks] == [[0], [1]]
    assert _joined_shares(ranks) == alone
    assert "step_ns=3600000000000" in alone["rest"]


def test_a_share_that_cannot_be_read_fails_as_the_whole_data_does(tmp_path: Path) -> None:
    frame = _frame(series=4, steps=48)
    frame.loc[frame.index[150], "ds"] = frame.loc[frame.index[149], "ds"]  # in s3
    data = _files_of_two_series(frame, tmp_path / "data")
    done = _run(_torchrun("train", str(data), "--out", "model", *TRAIN), tmp_path)
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert said and "'s3'" in said[0] and "part-1.parquet" in said[0], _told(done.stderr)
    assert f"rank 1: error: rank 0 failed: {said[0].removeprefix('error: ')}" in done.stderr
    assert not (tmp_path / "model").exists()


def test_data_the_plan_cannot_read_fails_as_one_process_fails(tmp_path: Path) -> None:
    frame = _frame(series=4, steps=48).astype({"unique_id": object})
    frame.loc[frame.index[120], "unique_id"] = None  # a row without a series id
    data = _files_of_two_series(frame.fillna({"unique_id": "s2"}), tmp_path / "data")
    broken = frame[frame["unique_id"].isin(["s2", "s3"]) | frame["unique_id"].isna()]
    broken.to_parquet(data / "part-1.parquet")
    alone = _run([sys.executable, "-m", "rnncast", "train", str(data), "--out", "one", *TRAIN],
                 tmp_path)  # fmt: skip
    assert alone.returncode == 3
    said = [line for line in alone.stderr.splitlines() if line.startswith("error: ")]
    done = _run(_torchrun("train", str(data), "--out", "model", *TRAIN), tmp_path)
    assert done.returncode != 0
    assert said[0] in done.stderr.splitlines(), _told(done.stderr)
    assert f"rank 1: error: rank 0 failed: {said[0].removeprefix('error: ')}" in done.stderr


def test_rank_zero_failing_to_take_the_lock_stops_every_rank(tiny_data: Path, tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = tmp_path / ".model.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                    "started": None, "since": "now"}))  # fmt: skip
        done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN), tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode != 0
    assert "error: model is being written by another rnncast run" in done.stderr
    assert "rank 1: error: rank 0 failed: model is being written by another" in done.stderr
    assert not (tmp_path / "model").exists()


SLOW_TO_TELL = """
import os
import sys
import time

import rnncast.logs
from rnncast.cli import main

fail = rnncast.logs.fail


def slow_on_rank_1(*args, **kwargs):
    if os.environ["RANK"] == "1":
        time.sleep(3)  # far longer than torchrun takes to stop a process once one ended
    fail(*args, **kwargs)


rnncast.logs.fail = slow_on_rank_1
sys.argv = ["rnncast", *sys.argv[1:]]
main()
"""


def test_every_rank_tells_an_error_they_all_raised_before_any_ends(
    tiny_data: Path, tmp_path: Path
) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW_TO_TELL)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / ".model.lock").write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": None, "since": "now"}
        ))  # fmt: skip
        done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, script=script),
                    tmp_path)  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert any(line.startswith("error: model is being written by another") for line in lines)
    told = "rank 1: error: rank 0 failed: model is being written by another"
    assert any(line.startswith(told) for line in lines), _told(done.stderr)


def test_the_first_difference_between_processes_is_named_by_its_key() -> None:
    from rnncast.distributed import _difference

    first = {"series": 3, "model": {"hidden": 64, "layers": 2}}
    other = {"series": 3, "model": {"hidden": 32, "layers": 2}}
    assert _difference(first, other) == ("model.hidden", 64, 32)
    assert _difference(5, 6) == ("the value", 5, 6)


DIFFERENT_SIZES = """
import sys
from dataclasses import replace
import rnncast.data_choices
import rnncast.training
from rnncast.cli import main

choose = rnncast.data_choices.choose_sizes


def other_sizes_on_rank_1(panel, model, training):
    import torch.distributed as dist

    model, training, notes = choose(panel, model, training)
    if dist.get_rank() == 1:
        model = replace(model, hidden=16)
    return model, training, notes


# Patched where train looks it up: training imported the name from data_choices.
rnncast.training.choose_sizes = other_sizes_on_rank_1
sys.argv = ["rnncast", *sys.argv[1:]]
main()
"""


def test_processes_that_read_different_data_stop_before_training(
    tiny_data: Path, tmp_path: Path
) -> None:
    script = tmp_path / "different.py"
    script.write_text(DIFFERENT_SIZES)
    arguments = [a for a in TRAIN if a not in ("--hidden", "8")]
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *arguments,
                          script=script), tmp_path)  # fmt: skip
    assert done.returncode != 0
    message = "the processes differ in the data and the settings chosen from it: model.hidden"
    assert f"error: {message} is 32 on rank 0 and 16 on rank 1" in done.stderr
    assert f"rank 1: error: {message}" in done.stderr
    assert "exitcode  : 3" in done.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_panel_reaches_the_gpu_through_pinned_memory_unchanged() -> None:
    from rnncast.batches import to_device

    rows = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    on_gpu = to_device(rows, torch.device("cuda"))
    torch.cuda.synchronize()
    assert on_gpu.device.type == "cuda"
    assert np.array_equal(on_gpu.cpu().numpy(), rows)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_torchrun_on_two_gpus_trains_with_nccl(tiny_data: Path, tmp_path: Path) -> None:
    done = _run(_torchrun("train", str(tiny_data), "--out", "model", *TRAIN, "--device",
                          "cuda", "--max-epochs", "4"), tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    assert "training on cuda" in done.stderr
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_a_bad_read_on_one_rank_fails_the_forecast_and_writes_nothing(
    tiny_data: Path, tmp_path: Path
) -> None:
    # The model may come from one process: what is tested is the forecast.
    done = _run([sys.executable, "-m", "rnncast", "train", str(tiny_data), "--out", "model",
                 *TRAIN, "--max-epochs", "2"], tmp_path)  # fmt: skip
    assert done.returncode == 0, _told(done.stderr)
    # The second read (series s2 and s3, rank 1's) has half-hourly steps.
    frame = pd.read_parquet(tiny_data)
    later = frame["unique_id"].isin(["s2", "s3"])
    frame.loc[later, "ds"] = (
        frame.loc[later, "ds"] - (frame.loc[later, "ds"] - frame["ds"].min()) / 2
    )
    frame.to_parquet(tmp_path / "latest.parquet", index=False)
    told = _fails_on_rank_one("latest.parquet", tmp_path, "the model was trained on h data")
    assert "the model was trained on h data; this data is" in told
    assert "exitcode  : 3" in told
