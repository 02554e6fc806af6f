"""Outputs are replaced whole or not at all; one writer per output; a full disk or an
unwritable folder is a clear error (exit 6) that leaves the old output (issue 5)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.errors import Busy, OutputError
from rnncast.writing import (
    clear_leftovers,
    holding_lock,
    replace_directory,
    replace_files,
    replacing,
    write_bytes,
)
from tests.conftest import REPO_ROOT, SAMPLE_DATA
from tests.test_artifact import deadline

runner = CliRunner()
LOAD = SAMPLE_DATA / "load_hourly.parquet"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_error_while_writing_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as stream:
        stream.write(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert hidden(tmp_path) == []


def test_a_full_disk_is_an_output_error_and_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("rnncast.writing.os.fsync", full)
    with pytest.raises(OutputError, match=r"cannot write .*out.csv: the disk is full; nothing"):
        write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert hidden(tmp_path) == []


def test_replace_files_writes_every_file_before_replacing_any(tmp_path, monkeypatch) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text(f"old {name}")
    real_fdopen = os.fdopen
    opened = []

    def fail_second(descriptor, *args, **kwargs):
        opened.append(descriptor)
        if len(opened) == 2:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real_fdopen(descriptor, *args, **kwargs)

    monkeypatch.setattr("rnncast.writing.os.fdopen", fail_second)
    with pytest.raises(OutputError, match="the disk quota is used up"):
        replace_files(tmp_path, {"a": b"new a", "b": b"new b"})
    assert [(tmp_path / n).read_text() for n in ("a", "b")] == ["old a", "old b"]
    assert hidden(tmp_path) == []


def test_replace_directory_swaps_the_whole_directory(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale").write_text("x")
    replace_directory(target, {"a": b"1", "b": b"2"})
    assert sorted(p.name for p in target.iterdir()) == ["a", "b"]
    assert hidden(tmp_path) == []


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "forecasts.csv"
    with holding_lock(target) as lock:
        owner = json.loads(lock.read_text())
        assert owner["pid"] == os.getpid()
        with (
            pytest.raises(Busy, match=rf"being written by another rnncast run \(pid {os.getpid()}"),
            holding_lock(target),
        ):
            pass
        assert lock.exists()  # the refused run did not remove the holder's lock
    assert not lock.exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    target = tmp_path / "model"
    lock = tmp_path / ".model.lock"
    lock.write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename, "started": 1}))
    with holding_lock(target):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert hidden(tmp_path) == []


def test_a_lock_whose_pid_was_reused_by_another_process_is_taken_over(tmp_path: Path) -> None:
    # Same pid as a live process (ours), but not the same process: it started at another time.
    lock = tmp_path / ".model.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": -5}))
    with holding_lock(tmp_path / "model"):
        assert json.loads(lock.read_text())["started"] != -5


def test_an_unreadable_lock_is_respected_while_fresh_and_taken_over_when_old(
    tmp_path: Path,
) -> None:
    lock = tmp_path / ".model.lock"
    lock.write_text("")  # created, pid not written yet: a run starting this very moment
    with pytest.raises(Busy), holding_lock(tmp_path / "model"):
        pass
    old = time.time() - 3600
    os.utime(lock, (old, old))
    with holding_lock(tmp_path / "model"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def unreadable_message(target: Path, lock: Path) -> str:
    return (
        f"{target} is being written by another rnncast run: it holds the lock {lock} (its "
        f"owner record is unreadable); nothing was done. If no run is going, remove {lock}"
    )


@pytest.mark.parametrize(
    "record",
    [
        "",
        "[]",
        '{"host": "h"}',
        '{"pid": 123}',
        '{"pid": 0, "host": "h"}',
        '{"pid": -1, "host": "h"}',
        '{"pid": true, "host": "h"}',
        '{"pid": "123", "host": "h"}',
        '{"pid": 1e30, "host": "h"}',
        '{"pid": 100000000000000000000000000000, "host": "h"}',
        '{"pid": 123, "host": ["h"]}',
        '{"pid": 123, "host": "h", "started": "yesterday"}',
        "[" * 100_000,
    ],
)
def test_a_fresh_lock_with_an_unreadable_owner_record_says_so(tmp_path: Path, record: str) -> None:
    # Was "(pid ?, since None)", or for a pid os.kill cannot take (1e30), an
    # OverflowError (exit 1); pid 0 or -1 would have signalled process groups.
    lock = tmp_path / ".model.lock"
    lock.write_text(record)
    with pytest.raises(Busy) as raised, holding_lock(tmp_path / "model"):
        pass
    assert str(raised.value) == unreadable_message(tmp_path / "model", lock)
    old = time.time() - 3600
    os.utime(lock, (old, old))
    with holding_lock(tmp_path / "model"):  # an old unreadable lock is taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert hidden(tmp_path) == []


def test_a_lock_record_without_a_start_time_names_the_pid_alone(tmp_path: Path) -> None:
    lock = tmp_path / ".model.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    with pytest.raises(Busy) as raised, holding_lock(tmp_path / "model"):
        pass
    assert str(raised.value) == (
        f"{tmp_path / 'model'} is being written by another rnncast run (pid {os.getpid()}); "
        f"nothing was done. If no such run exists, remove {lock}"
    )


def test_a_lock_that_is_a_fifo_is_not_read(tmp_path: Path) -> None:
    # Reading a FIFO blocks until something writes to it: a run would hang, not refuse.
    lock = tmp_path / ".model.lock"
    os.mkfifo(lock)
    with deadline(10), pytest.raises(Busy) as raised, holding_lock(tmp_path / "model"):
        pass
    assert str(raised.value) == unreadable_message(tmp_path / "model", lock)


def test_the_lock_holder_removes_what_killed_runs_left(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    leftovers = [".model.incoming-123", ".model.retired-123", ".model.77.x1y2.tmp"]
    for name in leftovers:
        if name.endswith(".tmp"):
            (tmp_path / name).write_text("x")
        else:
            (tmp_path / name).mkdir()
    (tmp_path / ".model2.incoming-1").mkdir()  # another target's: kept
    (tmp_path / ".modelling.lock").write_text("{}")
    assert sorted(clear_leftovers(tmp_path / "model")) == sorted(leftovers)
    assert hidden(tmp_path) == [".model2.incoming-1", ".modelling.lock"]


def test_a_model_moved_aside_by_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    # Killed between moving the old model aside and renaming the new one in: the old
    # one must come back, not be cleared as a leftover (found by the kill tests).
    retired = tmp_path / ".model.retired-99999"
    retired.mkdir()
    (retired / "manifest.json").write_text("old model")
    (tmp_path / ".model.incoming-99999").mkdir()
    with holding_lock(tmp_path / "model"):
        pass
    assert (tmp_path / "model" / "manifest.json").read_text() == "old model"
    assert hidden(tmp_path) == []


def test_forecast_refuses_to_race_a_run_holding_its_output(tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    out.write_text("previous")
    with holding_lock(out):
        model = REPO_ROOT / "tests" / "golden" / "model_v1"
        result = invoke("forecast", LOAD, "--model", model, "--out", out)
    assert result.exit_code == 7, result.output
    assert f"error: {out} is being written by another rnncast run (pid {os.getpid()}" in (
        result.stderr
    )
    assert out.read_text() == "previous"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("writing") / "model"
    result = invoke("train", LOAD, "--horizon", 6, "--out", out, "--max-epochs", 1,
                    "--hidden", 4, "--ensemble", 1)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return out


def test_a_full_disk_while_forecasting_exits_6_and_keeps_the_old_file(
    model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "f.parquet"
    out.write_bytes(b"previous")
    (tmp_path / ".f.parquet.99999.abc.tmp").write_bytes(b"left by a killed run")
    real_fsync, calls = os.fsync, []

    def full_after_the_lock(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) > 1:  # the lock file (a few bytes) still fit; the forecasts do not
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr("rnncast.writing.os.fsync", full_after_the_lock)
    result = invoke("forecast", LOAD, "--model", model_dir, "--out", out)
    assert result.exit_code == 6, result.output
    assert f"error: cannot write {out}: the disk is full; nothing was replaced" in result.stderr
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"previous"
    assert hidden(tmp_path) == []  # the killed run's temp file is gone, and so is ours


def test_an_unwritable_folder_while_training_exits_6_and_keeps_the_old_model(
    model_dir: Path, monkeypatch
) -> None:
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}

    def refuse(path, data) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("rnncast.writing.write_synced", refuse)
    result = invoke("train", LOAD, "--horizon", 6, "--out", model_dir, "--max-epochs", 1,
                    "--hidden", 4, "--ensemble", 1, "--test-size", 0)  # fmt: skip
    assert result.exit_code == 6, result.output
    assert f"error: cannot write {model_dir}: permission denied" in result.stderr
    after = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"checkpoint.safetensors"}  # to resume from
    assert hidden(model_dir.parent) == []


def test_a_read_only_folder_for_the_lock_exits_6(tmp_path: Path, monkeypatch) -> None:
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("rnncast.writing.os.open", read_only)
    result = invoke("train", LOAD, "--horizon", 6, "--out", tmp_path / "m", "--max-epochs", 1)
    assert result.exit_code == 6
    assert "the file system is read-only" in result.stderr
    assert not (tmp_path / "m").exists()


def test_a_checkpoint_temp_file_left_in_the_model_dir_does_not_block_training(
    model_dir: Path,
) -> None:
    (model_dir / ".checkpoint.safetensors.4242.abcd.tmp").write_bytes(b"half")
    result = invoke("train", LOAD, "--horizon", 6, "--out", model_dir, "--max-epochs", 1,
                    "--hidden", 4, "--ensemble", 1, "--test-size", 0)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert hidden(model_dir) == []
