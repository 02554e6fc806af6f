"""Killed, stopped and racing runs, in real processes: ``python -m rnncast`` killed with
SIGKILL at seeded random instants, stopped with SIGTERM, and run twice at once. (The
successful run after a killed one runs in this process, through CliRunner.)

Whenever a run dies, what it was writing is the old output or a complete new one,
never part of one; a checkpoint it left is resumed from; and the next successful run
removes what the dead one left beside its output (staging directories, temporary
files, its lock). The kill instants are drawn from a seeded ``random.Random`` within
the phases of a reference run, as measured (start-up, the epochs, the final write),
so they fall in each whatever the machine's speed; every assertion holds wherever a
kill lands. Each test prints which outcomes its kills gave (see them with -s).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from rnncast.artifact import load_model
from rnncast.cli import app
from rnncast.model_files import CHECKPOINT, MANIFEST
from tests.conftest import REPO_ROOT
from tests.test_cli_train import tiny_csv

# One OpenMP thread that does not spin: the machine running the tests is small and busy.
ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")},
    "OMP_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
}
# Ten epochs on two monthly series of 400 steps: about 4 s a run, most of it start-up.
HORIZON = 12
# One network: what a kill leaves behind does not depend on how many there are.
TRAIN = ["--horizon", HORIZON, "--hidden", 8, "--max-epochs", 10, "--test-size", 0,
         "--patience", 100, "--ensemble", 1]  # fmt: skip
TIMEOUT_S = 120  # for one run; generous, it only guards against a hang
RUNNER = CliRunner()
# `python -m rnncast` with its heavy imports done first, held until a line on stdin:
# started early, it then reaches its lock within milliseconds, not seconds.
HELD = """\
import sys
import rnncast.artifact, rnncast.cli, rnncast.training, rnncast.writing
print("ready", file=sys.stderr, flush=True)
sys.stdin.readline()
sys.argv[0] = "rnncast"
rnncast.cli.main()
"""


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "rnncast", *map(str, args)]


def follow_up(*args: object) -> Result:
    """The run after a killed one, in this process: what it must do (resume, take the
    dead run's lock over, clear its leftovers) is the same, and it skips the 4 s a new
    process spends importing torch."""
    return RUNNER.invoke(app, [str(a) for a in args])


class Running:
    """An rnncast process whose stderr a thread reads line by line, so waiting for a
    line never blocks on a full pipe. As a context manager it kills the process if
    the block leaves it running."""

    def __init__(self, *args: object, cwd: Path, held: bool = False) -> None:
        self.args = " ".join(map(str, args))
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", HELD, *map(str, args)] if held else command(*args),
            cwd=cwd, env=ENV, stdin=subprocess.PIPE if held else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.pid = self.process.pid
        self.lines: list[str] = []
        self.times: list[float] = []  # when each line came, in seconds after the start
        self.stdout = ""
        self._closed = False
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self.times.append(time.monotonic() - self.started)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for_line(self, prefix: str, timeout: float = TIMEOUT_S) -> str:
        """The first stderr line starting with ``prefix``; fails if the process ends
        (or the time runs out) without printing one."""

        def found() -> str | None:
            return next((line for line in self.lines if line.startswith(prefix)), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self._closed, timeout)
            line = found()
        assert line is not None, (
            f"rnncast {self.args}: no line starting {prefix!r} on stderr "
            f"(exit {self.process.poll()}):\n{self.stderr}"
        )
        return line

    def time_of(self, text: str) -> float:
        """When the first stderr line holding ``text`` came, in seconds after the start."""
        with self._changed:
            pairs = zip(self.times, self.lines, strict=True)
            return next(when for when, line in pairs if text in line)

    def kill_at(self, seconds: float, after: str | None = None) -> None:
        """SIGKILL the process ``seconds`` after it started, or after it printed a line
        starting with ``after``; nothing if it ended before."""
        if after is not None:
            self.wait_for_line(after)
            seconds += self.time_of(after)
        time.sleep(max(0.0, self.started + seconds - time.monotonic()))
        self.process.kill()  # a no-op once the process has ended

    def go(self) -> None:
        """Let a ``held`` process, ready once it printed "ready", run rnncast."""
        self.wait_for_line("ready")
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.close()

    def finish(self, timeout: float = TIMEOUT_S) -> int:
        """Wait for the end; the exit code (-9 when killed by SIGKILL)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        for reader in self._readers:
            reader.join(timeout)
        return code

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(10)


# ---------------------------------------------------------------------------------------
# What a killed run may leave
# ---------------------------------------------------------------------------------------


def visible(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if not p.name.startswith(".")}


def leftovers(out: Path) -> list[str]:
    """Hidden files and folders about ``out``: ``.NAME.*`` beside it (staging
    directories, temporary files, locks) and hidden files inside it."""
    beside = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    inside = [f"{out.name}/{p.name}" for p in out.iterdir() if p.name.startswith(".")] if (
        out.is_dir()
    ) else []  # fmt: skip
    return sorted(beside + inside)


def checkpoint_epoch(out: Path) -> int:
    """The epoch stored in the checkpoint's safetensors metadata (0: before the first)."""
    from safetensors import safe_open

    with safe_open(str(out / CHECKPOINT), framework="pt") as handle:
        metadata = handle.metadata()
    return int(json.loads(metadata["state"])["epoch"])


def assert_complete_model(out: Path, files: set[str]) -> None:
    load_model(out)  # verifies every sha256 of the manifest
    assert visible(out) == files, sorted(visible(out))


@dataclass(frozen=True)
class Reference:
    """One whole training run, timed: what killed runs are measured against."""

    folder: Path
    data: Path
    model: Path
    first_epoch: float  # seconds from the start to the "epoch 1:" line
    written: float  # ... to the line saying the model was written
    files: set[str]  # what a finished model directory holds

    @property
    def manifest(self) -> bytes:
        return (self.model / MANIFEST).read_bytes()

    def kill_instants(self, label: str) -> list[tuple[float, str | None]]:
        """Three instants, seeded by ``label``, as (seconds, after which line): one in
        start-up (up to the end of the first epoch, the epoch-0 checkpoint included),
        one in the later epochs, one around the final write of the model. Those after
        training began are counted from the run's own "epoch 1:" line: start-up times
        vary more from run to run than the whole of training takes."""
        rng = random.Random(f"rnncast-kill-{label}")
        training = self.written - self.first_epoch
        return [
            (rng.uniform(0.0, self.first_epoch), None),
            (rng.uniform(0.0, 0.6) * training, "epoch 1:"),
            (rng.uniform(0.8, 1.2) * training, "epoch 1:"),
        ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp("kill")
    data = tiny_csv(folder / "tiny.csv", periods=400)
    model = folder / "reference"
    with Running("train", data, "--out", model, *TRAIN, cwd=folder) as run:
        code = run.finish()
    assert code == 0, run.stderr
    first_epoch, written = run.time_of("epoch 1:"), run.time_of("model written to")
    files = visible(model)
    assert MANIFEST in files and CHECKPOINT not in files
    load_model(model)
    return Reference(folder, data, model, first_epoch, written, files)


def resume_and_check(reference: Reference, out: Path, options: list[object]) -> None:
    """``train --resume`` from the checkpoint in ``out`` finishes a complete model and
    leaves nothing hidden behind."""
    epoch = checkpoint_epoch(out)
    assert epoch >= 0
    result = follow_up("train", reference.data, "--out", out, *options, "--resume")
    assert result.exit_code == 0, result.stderr
    assert f"resuming from epoch {epoch} of {out}" in result.stderr, result.stderr
    assert_complete_model(out, reference.files)
    assert leftovers(out) == []


# ---------------------------------------------------------------------------------------
# SIGKILL during train
# ---------------------------------------------------------------------------------------


def test_sigkill_during_a_first_train_leaves_nothing_a_checkpoint_or_a_whole_model(
    reference: Reference, tmp_path: Path
) -> None:
    options = [*TRAIN, "--seed", 1]
    seen = []
    for point, (instant, after) in enumerate(reference.kill_instants("fresh")):
        out = tmp_path / f"model{point}"
        with Running("train", reference.data, "--out", out, *options, cwd=tmp_path) as run:
            run.kill_at(instant, after)
            code = run.finish()
        where = f"kill {instant:.2f} s after {after or 'the start'} (exit {code}):\n{run.stderr}"
        if code == 0:
            assert_complete_model(out, reference.files)
            assert leftovers(out) == [], where
            seen.append("finished")
            continue
        assert code == -signal.SIGKILL, where
        if not out.exists():
            seen.append("nothing")
            continue
        files = visible(out)
        if MANIFEST in files:  # the kill came after the new model was in place
            assert_complete_model(out, reference.files)
            seen.append("new model")
        else:
            assert files == {CHECKPOINT}, f"a partial model: {sorted(files)}; {where}"
            resume_and_check(reference, out, options)
            seen.append("checkpoint, resumed")
    print(f"fresh --out: {seen}")


def test_sigkill_while_replacing_a_model_keeps_the_old_one_or_gives_the_new(
    reference: Reference, tmp_path: Path
) -> None:
    options = [*TRAIN, "--seed", 1]  # another seed: a different model from the old one
    previous = reference.manifest
    seen = []
    for point, (instant, after) in enumerate(reference.kill_instants("replace")):
        out = tmp_path / f"model{point}"
        shutil.copytree(reference.model, out)
        with Running("train", reference.data, "--out", out, *options, cwd=tmp_path) as run:
            run.kill_at(instant, after)
            code = run.finish()
        where = f"kill {instant:.2f} s after {after or 'the start'} (exit {code}):\n{run.stderr}"
        assert code in (0, -signal.SIGKILL), where
        assert out.is_dir(), f"the old model is gone and no new one is there; {where}"
        files = visible(out)
        assert MANIFEST in files, f"no manifest: {sorted(files)}; {where}"
        if (out / MANIFEST).read_bytes() == previous:
            assert code != 0, f"a finished run left the old model; {where}"
            load_model(out)
            assert files - {CHECKPOINT} == reference.files, where
            if CHECKPOINT in files:
                resume_and_check(reference, out, options)
                seen.append("old model + checkpoint, resumed")
            else:
                seen.append("old model")
        else:
            assert_complete_model(out, reference.files)
            seen.append("new model")
        if code == 0:
            assert leftovers(out) == [], where
    print(f"old model in --out: {seen}")


# ---------------------------------------------------------------------------------------
# SIGKILL during forecast
# ---------------------------------------------------------------------------------------

N_SERIES = 4000


@pytest.fixture(scope="module")
def many_series(reference: Reference) -> Path:
    """Monthly history of N_SERIES series: a forecast of about 50 000 rows, 4 MB of CSV."""
    rng = np.random.default_rng(1)
    steps = 30
    path = reference.folder / "many.parquet"
    pd.DataFrame(
        {
            "unique_id": np.repeat([f"s{i:05d}" for i in range(N_SERIES)], steps),
            "ds": np.tile(pd.date_range("2000-01-01", periods=steps, freq="MS"), N_SERIES),
            "y": 10 + rng.normal(0, 1, N_SERIES * steps),
        }
    ).to_parquet(path, index=False)
    return path


def wait_for_temporary(run: Running, out: Path, before: set[str]) -> bool:
    """Poll until a new temporary file of ``out`` appears beside it (True) or the run
    ends. Names in ``before`` (what an earlier killed run left) and the lock's do not
    count."""
    while run.process.poll() is None:
        with os.scandir(out.parent) as entries:
            names = {entry.name for entry in entries} - before
        if any(n.startswith(f".{out.name}.") and not n.startswith(f".{out.name}.lock")
               for n in names):  # fmt: skip
            return True
        time.sleep(0.002)
    return False


def test_sigkill_during_forecast_keeps_the_old_file_or_gives_the_new(
    reference: Reference, many_series: Path, tmp_path: Path
) -> None:
    out = tmp_path / "f.csv"
    previous = b"unique_id,ds,y_hat\nold,2000-01-01,1.0\n"
    out.write_bytes(previous)
    args = ("forecast", many_series, "--model", reference.model, "--out", out)
    # Each run is killed a random moment after its temporary file appears: the write
    # takes 0.3 to 0.5 s here, so the first two kills land in it, the last after it.
    rng = random.Random("rnncast-kill-forecast")
    delays = [rng.uniform(0.0, 0.15), rng.uniform(0.15, 0.3), rng.uniform(0.7, 1.2)]
    seen, new_files = [], []
    for delay in delays:
        before = {p.name for p in tmp_path.iterdir()}
        with Running(*args, cwd=tmp_path) as run:
            if wait_for_temporary(run, out, before):
                time.sleep(delay)
                run.process.kill()
            code = run.finish()
        where = f"killed {delay:.2f} s into the write (exit {code}); stderr:\n{run.stderr}"
        assert code in (0, -signal.SIGKILL), where
        written = out.read_bytes()
        if written == previous:
            seen.append("old file")
            continue
        frame = pd.read_csv(out)
        assert len(frame) == N_SERIES * HORIZON, where
        assert frame["unique_id"].nunique() == N_SERIES, where
        assert frame.notna().all().all(), where
        seen.append("new file")
        new_files.append(frame)
        previous = written  # the file the next kill must keep
    print(f"forecast killed {[round(d, 2) for d in delays]} s into the write: {seen}")

    result = follow_up(*args)
    assert result.exit_code == 0, result.stderr
    final = pd.read_csv(out)
    assert len(final) == N_SERIES * HORIZON
    for frame in new_files:
        pd.testing.assert_frame_equal(frame, final)
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert hidden == [], "a successful forecast must remove what killed runs left"


# ---------------------------------------------------------------------------------------
# SIGTERM, and two runs at once
# ---------------------------------------------------------------------------------------


def test_sigterm_during_training_exits_143_with_a_checkpoint_to_resume(
    reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    # Bounded by time, not epochs: the signal lands in training however fast the machine.
    options = [*TRAIN, "--max-epochs", 1000, "--max-time", 3]
    with Running("train", reference.data, "--out", out, *options, cwd=tmp_path) as run:
        run.wait_for_line("epoch 1:")
        run.process.send_signal(signal.SIGTERM)
        code = run.finish()
    stderr = run.stderr
    assert code == 143, stderr
    assert "Traceback" not in stderr
    last = stderr.splitlines()[-1]
    match = re.fullmatch(
        rf"error: training stopped by SIGTERM in epoch (\d+); checkpoint saved in "
        rf"{re.escape(str(out))}, continue with --resume",
        last,
    )
    assert match, stderr
    assert visible(out) == {CHECKPOINT}
    assert checkpoint_epoch(out) == int(match[1]) - 1  # the last whole epoch
    resume_and_check(reference, out, options)


def test_a_second_run_on_the_same_out_is_refused_while_the_first_finishes(
    reference: Reference, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    # The first trains for 3 s (a margin for slow machines); the second, held until then with
    # its imports done, meets the lock within milliseconds of being let go.
    options = [*TRAIN, "--max-epochs", 1000, "--max-time", 3]
    args = ("train", reference.data, "--out", out, *options)
    with Running(*args, cwd=tmp_path) as first, Running(*args, cwd=tmp_path, held=True) as second:
        first.wait_for_line("epoch 1:")
        lock = tmp_path / ".model.lock"
        assert lock.is_file()
        assert re.search(rf"\b{first.pid}\b", lock.read_text()), lock.read_text()
        second.go()
        second.wait_for_line("error:")
        first_ran_on = first.process.poll() is None
        refused = second.finish()
        code = first.finish()
    assert refused == 7, f"the first run was still running: {first_ran_on}\n{second.stderr}"
    assert "Traceback" not in second.stderr
    error = second.stderr.splitlines()[-1]
    assert error.startswith("error: "), second.stderr
    named = re.search(r"is being written by another rnncast run \(pid (\d+)\b", error)
    assert named, error
    assert int(named[1]) == first.pid
    assert code == 0, first.stderr
    assert_complete_model(out, reference.files)
    assert leftovers(out) == []  # the lock too
