"""Typed, validated settings. Defaults live here and nowhere else.

A flag on the command line, a key in a config file and a field here share one
name (``id_col`` is ``--id-col``). Every check raises ConfigError naming the
field, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rnncast.errors import ConfigError

LAYOUTS = ("long", "wide")
FILL_POLICIES = ("interpolate", "ffill", "zero", "error")
DUPLICATE_POLICIES = ("error", "mean", "sum", "last")

# Column names tried, in order, when the user names none. The first group is
# the layout of Nixtla's libraries, which many users' files already follow.
ID_COLUMN_NAMES = ("unique_id", "series_id", "id", "series", "item_id")
TIME_COLUMN_NAMES = ("ds", "timestamp", "date", "time", "datetime")
TARGET_COLUMN_NAMES = ("y", "target", "value")


@dataclass(frozen=True)
class DataConfig:
    """How to read a file of series and turn it into a Panel."""

    layout: str = "long"
    id_col: str | None = None  # None: detect; no id column at all means one series
    time_col: str | None = None  # None: detect
    target_col: str | None = None  # None: detect
    # Extra numeric columns fed to the model; "all" takes every numeric column left over.
    covariates: tuple[str, ...] | Literal["all"] = ()
    # strftime-style format of text timestamps, e.g. "%d.%m.%Y"; None: ISO 8601 only.
    time_format: str | None = None
    freq: str | None = None  # None: infer from the timestamps
    fill: str = "interpolate"
    duplicates: str = "error"
    # When set, series too short to give one horizon of targets after one step of
    # history are skipped with a warning.
    horizon: int | None = None

    def __post_init__(self) -> None:
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("fill", self.fill, FILL_POLICIES)
        _check_choice("duplicates", self.duplicates, DUPLICATE_POLICIES)
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"horizon must be at least 1, got {self.horizon}")
        if self.layout == "wide":
            if self.id_col is not None or self.target_col is not None:
                raise ConfigError(
                    "--id-col and --target-col do not apply to --layout wide: "
                    "there every column but the time column is a series"
                )
            if self.covariates:
                raise ConfigError(
                    "--covariates needs --layout long: in a wide file every column "
                    "but the time column is a series"
                )
        if self.covariates != "all" and not isinstance(self.covariates, tuple):
            raise ConfigError(
                f"covariates must be 'all' or a list of column names, got {self.covariates!r}"
            )
        for name in ("id_col", "time_col", "target_col", "time_format", "freq"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ConfigError(f"{name} must not be empty")


def parse_covariates(text: str | None) -> tuple[str, ...] | Literal["all"]:
    """``"a,b"`` -> ``("a", "b")``; ``"all"`` stays ``"all"``; None or "" -> ``()``."""
    if text is None or not text.strip():
        return ()
    if text.strip().lower() == "all":
        return "all"
    names = tuple(name.strip() for name in text.split(","))
    if any(not name for name in names):
        raise ConfigError(f"--covariates {text!r} has an empty name; write e.g. 'temp,price'")
    return names


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
