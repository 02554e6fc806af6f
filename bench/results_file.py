"""What every benchmark writes beside its figures: the machine, and the file itself.

Imported by the scripts in this folder (run as ``python bench/NAME.py``, which puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def package_version(package: str) -> str | None:
    # Read from installed metadata so a parent process never imports torch or pyarrow.
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info(packages: tuple[str, ...]) -> dict[str, Any]:
    """CPU count, memory, platform and the versions of ``packages``."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_bytes": _memory_total_bytes(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "versions": {name: package_version(name) for name in packages},
    }


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target so os.replace is a rename on one file system; a reader
    # sees the old file or the new one, never half of one.
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=path.name + ".", suffix=".tmp", delete=False
    ) as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    # NamedTemporaryFile creates the file 0600; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(handle.name, 0o666 & ~umask)
    try:
        os.replace(handle.name, path)
    except OSError:
        os.unlink(handle.name)
        raise
