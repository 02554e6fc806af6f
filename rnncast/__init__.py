"""rnncast: time-series forecasting with recurrent networks, from the command line.

The public API is imported lazily, so ``import rnncast`` (and the CLI's start-up,
paid by every cron run) does not load pandas, pyarrow or torch until needed.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DataConfig", "Panel", "__version__", "read_panel"]

_LAZY = {
    "DataConfig": "rnncast.config",
    "Panel": "rnncast.panel",
    "read_panel": "rnncast.panel",
}

if TYPE_CHECKING:
    from rnncast.config import DataConfig
    from rnncast.panel import Panel, read_panel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rnncast' has no attribute {name!r}")
