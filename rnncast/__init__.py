"""rnncast: time-series forecasting with recurrent networks, from the command line.

The public API is imported lazily, so ``import rnncast`` (and the CLI's start-up,
paid by every cron run) does not load pandas, pyarrow or torch until needed.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "DataConfig",
    "ModelConfig",
    "Panel",
    "TrainConfig",
    "__version__",
    "evaluate",
    "forecast",
    "forecast_dataset",
    "load_model",
    "read_panel",
    "train",
]

_LAZY = {
    "DataConfig": "rnncast.config",
    "ModelConfig": "rnncast.config",
    "TrainConfig": "rnncast.config",
    "Panel": "rnncast.panel",
    "read_panel": "rnncast.panel",
    "train": "rnncast.fitting",
    "forecast": "rnncast.forecasting",
    "forecast_dataset": "rnncast.streaming",
    "evaluate": "rnncast.evaluation",
    "load_model": "rnncast.artifact",
}

if TYPE_CHECKING:
    from rnncast.artifact import load_model
    from rnncast.config import DataConfig, ModelConfig, TrainConfig
    from rnncast.evaluation import evaluate
    from rnncast.fitting import train
    from rnncast.forecasting import forecast
    from rnncast.panel import Panel, read_panel
    from rnncast.streaming import forecast_dataset


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rnncast' has no attribute {name!r}")
