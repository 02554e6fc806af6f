"""Writing outputs: whole or not at all, one writer at a time.

Every output is written beside its destination, flushed to disk and renamed into
place, so a reader, or a run killed at any instant, sees the old output or the
new one, never part of one. A directory (a model, a report) is built whole in a
staging directory and swapped in the same way.

While a run writes to a destination it holds ``.NAME.lock`` beside it, naming
its pid: a second run is refused (Busy, exit 7) instead of racing it. A lock left
by a process that no longer runs (killed with SIGKILL, a crashed host) is taken
over. The holder of a lock also removes what killed runs left behind: staging
directories and temporary files, all named ``.NAME.`` + something.

Operating-system failures (disk full, read-only file system, no permission)
become OutputError (exit 6) naming the destination; the old output is kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

from rnncast.errors import Busy, ConfigError, OutputError

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
# A lock file that cannot be read yet may be one another run created a moment ago
# and has not written its pid into; only an old one is treated as abandoned.
_UNREADABLE_LOCK_GRACE_S = 10.0
# A lock holds one short JSON record; more than this is not one rnncast wrote.
_MAX_LOCK_BYTES = 4096


# Bytes rnncast adds to an output's name for the files it writes beside it: the
# lock (".NAME.lock"), a temporary (".NAME.<pid>.<random>.tmp"), a retired model.
_NAME_ROOM = 40


def check_name_length(destination: str | Path) -> None:
    """OutputError (exit 6) for an output whose name, or a name rnncast writes beside
    it, is longer than the file system allows: checked before any work, so nothing
    is half written and no OSError surfaces as a bug."""
    path = Path(destination)
    folder = next((p for p in (path.parent, *path.parent.parents) if p.is_dir()), Path("."))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest + _NAME_ROOM > limit:
        raise OutputError(
            f"cannot write {path}: a name in it is {longest} bytes long; this file system "
            f"allows {limit}, and rnncast writes a lock and a temporary file beside the "
            f"output, so at most {limit - _NAME_ROOM}; nothing was written"
        )


def check_destination(destination: str | Path) -> str:
    """The format an output goes in (``csv``, ``parquet`` or ``stdout``), checked before
    any work is done; ConfigError when rnncast cannot write there. A missing folder
    is created when the output is written, as for model directories."""
    if str(destination) == "-":
        return "stdout"
    check_name_length(destination)
    path = Path(destination)
    name = path.name.lower()
    if name.endswith(".csv"):
        file_format = "csv"
    elif name.endswith((".parquet", ".pq", ".parq")):
        file_format = "parquet"
    else:
        raise ConfigError(
            f"--out {path}: write to a .csv or .parquet file (or - for CSV on stdout)"
        )
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; name a .csv or .parquet file")
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"--out {path}: {path.parent} is a file, not a folder")
    return file_format


def write_bytes(destination: str | Path, data: bytes) -> None:
    """Replace a file with ``data`` atomically (see ``replacing``)."""
    with replacing(destination) as stream:
        stream.write(data)


@contextlib.contextmanager
def replacing(destination: str | Path) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``destination`` when the block ends.

    It is written beside its destination, flushed to disk and renamed into place,
    so a reader (or a killed run) sees the old file or the new one, never half of
    one; an exception in the block leaves the old file as it was. OSError becomes
    OutputError.
    """
    path = Path(destination)
    with refusing_os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
    try:
        with refusing_os_errors(path), os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        with refusing_os_errors(path):
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def replace_directory(target: str | Path, files: Mapping[str, bytes]) -> None:
    """Make ``target`` a directory holding exactly ``files``, in one rename.

    The files are written and synced in a staging directory beside the target,
    which then takes the target's place; the old directory is removed only after.
    """
    target = Path(target)
    staging = target.parent / f".{target.name}.incoming-{os.getpid()}"
    retired = target.parent / f".{target.name}.retired-{os.getpid()}"
    with refusing_os_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    try:
        with refusing_os_errors(target):
            for name, data in files.items():
                write_synced(staging / name, data)
            sync_directory(staging)
            if target.exists():
                os.replace(target, retired)
            os.replace(staging, target)
            sync_directory(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not target.exists():
            os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def replace_files(folder: str | Path, files: Mapping[str, bytes]) -> None:
    """Replace several files of ``folder`` (created if missing) together: all are
    written and synced first, then renamed one after another, so a failure while
    writing leaves every old file, and only a kill between renames (microseconds)
    could mix old and new. Call it holding the folder's lock (``holding_lock``)."""
    folder = Path(folder)
    with refusing_os_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:  # temporary files of a killed run on the same folder
            clear_leftovers(folder / name)
    written: dict[str, str] = {}
    try:
        for name, data in files.items():
            with refusing_os_errors(folder / name):
                handle, temporary = tempfile.mkstemp(
                    prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder
                )
                written[name] = temporary
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.chmod(temporary, 0o644)
        with refusing_os_errors(folder):
            for name, temporary in written.items():
                os.replace(temporary, folder / name)
            sync_directory(folder)
    except BaseException:
        for temporary in written.values():
            Path(temporary).unlink(missing_ok=True)
        raise


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk before returning."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sync_directory(path: Path) -> None:
    # A rename is durable only once the directory holding it is flushed.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def refusing_os_errors(destination: Path) -> Iterator[None]:
    """OSError inside the block becomes OutputError naming ``destination``."""
    try:
        yield
    except OSError as exc:
        reason = _REASONS.get(exc.errno, exc.strerror or type(exc).__name__)
        raise OutputError(
            f"cannot write {destination}: {reason}"
            + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(destination)
               else "")
            + "; nothing was replaced, the previous output is as it was"
        ) from exc  # fmt: skip


@contextlib.contextmanager
def holding_lock(target: str | Path) -> Iterator[Path]:
    """Hold the lock of ``target`` (a file or directory to be written) for the block.

    Raises Busy when a live process holds it. The parent folder is created if
    missing. Leftovers of killed runs on the same target are removed once the
    lock is held. Yields the lock file's path.
    """
    target = Path(target)
    check_name_length(target)
    lock = target.parent / f".{target.name}.lock"
    with refusing_os_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}
    _acquire(lock, target, owner)
    try:
        clear_leftovers(target)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            holder = _read_owner(lock)
            if holder and (holder["pid"], holder["started"]) == (owner["pid"], owner["started"]):
                lock.unlink()


def _acquire(lock: Path, target: Path, owner: dict) -> None:
    text = json.dumps({**owner, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    for _ in range(3):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_owner(lock)
            if _is_alive(holder, lock):
                raise Busy(_held_message(target, lock, holder, owner["host"])) from None
            _take_over(lock, holder)
            continue
        except OSError:
            with refusing_os_errors(target):
                raise
        try:
            with refusing_os_errors(target), os.fdopen(descriptor, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            lock.unlink(missing_ok=True)
            raise
        return
    raise Busy(f"{target}: could not take its lock {lock}; another run keeps taking it")


def _held_message(target: Path, lock: Path, holder: dict | None, host: str) -> str:
    if holder is None:
        # Fresh but unreadable: a run that created the lock a moment ago and has not
        # written its record yet, or a file damaged or written by something else.
        return (
            f"{target} is being written by another rnncast run: it holds the lock {lock} "
            f"(its owner record is unreadable); nothing was done. If no run is going, "
            f"remove {lock}"
        )
    where = f" on {holder['host']}" if holder["host"] != host else ""
    since = f", since {holder['since']}" if holder["since"] else ""
    return (
        f"{target} is being written by another rnncast run (pid {holder['pid']}{where}{since}); "
        f"nothing was done. If no such run exists, remove {lock}"
    )


def _take_over(lock: Path, abandoned: dict | None) -> None:
    """Remove an abandoned lock. It is moved aside first, in one atomic step, and
    checked there: a run that took it over a moment earlier may have put its own
    lock in its place, which is then put back."""
    aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
    try:
        os.replace(lock, aside)
    except FileNotFoundError:
        return
    moved = _read_owner(aside)
    if moved != abandoned and _is_alive(moved, aside):
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


def _read_owner(lock: Path) -> dict | None:
    """The record a lock's holder wrote, or None when it is unreadable: not (yet) written,
    damaged, lacking a field, or not a regular file (a FIFO would block the read)."""
    try:
        descriptor = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            owner = json.loads(handle.read(_MAX_LOCK_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(owner, dict):
        return None
    pid, host = owner.get("pid"), owner.get("host")
    started, since = owner.get("started"), owner.get("since")
    # os.kill takes a C int and treats 0 and negative pids as process groups.
    if type(pid) is not int or not 0 < pid < 2**31 or not isinstance(host, str):
        return None
    if started is not None and type(started) is not int:
        return None
    if not isinstance(since, str) or len(since) > 64:
        since = None
    return {"pid": pid, "host": host, "started": started, "since": since}


def _is_alive(holder: dict | None, lock: Path) -> bool:
    if holder is None:
        try:
            return time.time() - lock.stat().st_mtime < _UNREADABLE_LOCK_GRACE_S
        except FileNotFoundError:
            return False
    if holder["host"] != socket.gethostname():
        return True  # a process on another host (shared folder) cannot be checked
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    # The pid may have been reused since by an unrelated process: compare start times.
    started = _start_time(holder["pid"])
    return holder.get("started") is None or started is None or started == holder["started"]


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it don't.
    return int(stat.rsplit(")", 1)[1].split()[19])


def leftover_pattern(name: str) -> re.Pattern[str]:
    """Names of what a run writing ``name`` leaves behind when killed."""
    return re.compile(
        rf"\.{re.escape(name)}\.(incoming-\d+|retired-\d+|\d+\..+\.tmp|lock\.stale-\d+)"
    )


def _restore_retired(target: Path) -> None:
    """A run killed between moving the old directory aside and renaming the new one
    into place leaves no target, only ``.NAME.retired-PID``: put it back."""
    if target.exists():
        return
    retired = sorted(
        target.parent.glob(f".{glob_escape(target.name)}.retired-*"),
        key=lambda path: path.stat().st_mtime,
    )
    if retired:
        os.replace(retired[-1], target)


def clear_leftovers(target: Path) -> list[str]:
    """Remove staging directories and temporary files killed runs left beside
    ``target``; only the lock holder may call this. Returns the names removed."""
    pattern = leftover_pattern(target.name)
    removed = []
    _restore_retired(target)
    with contextlib.suppress(FileNotFoundError):
        for path in target.parent.iterdir():
            if pattern.fullmatch(path.name):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed
