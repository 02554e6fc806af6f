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
FUTURE_ROW_MODES = ("skip", "check", "require")

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
    # Extra numeric columns fed to the model, known up to each series' last value;
    # "all" takes every numeric column left over.
    covariates: tuple[str, ...] | Literal["all"] = ()
    # Numeric columns known for the forecast steps too (a weather forecast, a planned
    # price): the data holds them on H rows after each series' last value.
    future_covariates: tuple[str, ...] = ()
    # Columns with one value per series: text is a category, numbers are scaled.
    static_covariates: tuple[str, ...] = ()
    # A file keyed by series id holding the static covariates, instead of the data file.
    static_file: str | None = None
    # Countries (ISO codes, "DE" or "DE-BY") whose public holidays become features.
    holidays: tuple[str, ...] = ()
    # A column naming each series' country, read as a static column, for holidays.
    holidays_column: str | None = None
    # The rows after each series' last value: "skip" leaves them out (training);
    # "check" reads them as future rows where a series has some (check --horizon);
    # "require" needs them for every series (forecasting with future covariates).
    future_rows: str = "skip"
    # The future rows each series needs (a model's horizon); None: ``horizon``'s.
    future_steps: int | None = None
    # strftime-style format of text timestamps, e.g. "%d.%m.%Y"; None: ISO 8601 only.
    time_format: str | None = None
    freq: str | None = None  # None: infer from the timestamps
    fill: str = "interpolate"
    duplicates: str = "error"
    # When set, series too short to give one horizon of targets after one step of
    # history are skipped with a warning.
    horizon: int | None = None

    @property
    def static_columns(self) -> tuple[str, ...]:
        """The columns read with one value per series: the static covariates and
        the holidays column."""
        extra = self.holidays_column
        return self.static_covariates + (
            (extra,) if extra and extra not in self.static_covariates else ()
        )

    def __post_init__(self) -> None:
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("fill", self.fill, FILL_POLICIES)
        _check_choice("duplicates", self.duplicates, DUPLICATE_POLICIES)
        _check_choice("future_rows", self.future_rows, FUTURE_ROW_MODES)
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
        if self.layout == "wide" and (self.future_covariates or self.static_covariates):
            raise ConfigError(
                "--future-covariates and --static-covariates need --layout long: in a wide "
                "file every column but the time column is a series"
            )
        roles = {
            "--covariates": () if self.covariates == "all" else self.covariates,
            "--future-covariates": self.future_covariates,
            "--static-covariates": self.static_covariates,
        }
        seen: dict[str, str] = {}
        for option, names in roles.items():
            for name in names:
                if name in seen:
                    where = "twice" if seen[name] == option else f"in {seen[name]} and {option}"
                    raise ConfigError(
                        f"column {name!r} is named {where}; give each column one role"
                    )
                seen[name] = option
        if self.holidays_column is not None and self.layout == "wide":
            raise ConfigError("--holidays-column needs --layout long")
        role = seen.get(self.holidays_column or "", "--static-covariates")
        if role != "--static-covariates":
            raise ConfigError(
                f"--holidays-column {self.holidays_column!r} is named in {role} too; "
                "it holds one country per series"
            )
        if self.static_file is not None and not self.static_covariates:
            raise ConfigError("--static FILE needs --static-covariates naming its columns")
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
    if text is not None and text.strip().lower() == "all":
        return "all"
    return parse_names(text, "--covariates")


def parse_names(text: str | None, option: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")`` for an option naming columns; None or "" -> ``()``."""
    if text is None or not text.strip():
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if any(not name for name in names):
        raise ConfigError(f"{option} {text!r} has an empty name; write e.g. 'temp,price'")
    return names


def embedding_size(levels: int) -> int:
    """Width of a static category's embedding: grows slowly with its levels, at most
    16 (a rule of thumb from models of tabular data, 1.6 n^0.56)."""
    return max(2, min(16, round(1.6 * max(levels, 1) ** 0.56)))


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


CELLS = ("lstm", "gru", "indrnn", "rnn")
ACTIVATIONS = ("tanh", "relu")
LOSSES = ("quantile", "mse", "mae")
SCALERS = ("standard", "meanabs", "robust", "shared")
TRANSFORMS = ("log", "none")
STRATEGIES = ("tbptt", "window")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("plateau", "cosine", "budget", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
# torch seeds take 64 bits unsigned and numpy's generators any non-negative integer:
# the seeds both accept.
MAX_SEED = 2**63 - 1
# torch allocates per-thread state up front: a billion threads is a MemoryError, not
# a slow run. No CPU we know of has more hardware threads than this.
MAX_THREADS = 1024
# Each member is a network that forecasting runs: past a few dozen the median hardly
# moves and the forecast costs grow, so more are refused rather than trained.
MAX_MEMBERS = 64
# Members trained by default when the time budget holds them (ensembles.py). The noise
# one member brings to the median falls as 1/sqrt(N): at 20 it is half what it is at 5.
# Where members are cheap that paid: M3 Yearly over three seeds, sMAPE 16.44 on average
# (16.22 to 16.69) with 5, 16.30 (16.19 to 16.37) with 20, and 15 or 40 kept alike
# scored the same. Past 20, each member only adds its share of every forecast.
DEFAULT_MEMBERS = 20


@dataclass(frozen=True)
class ModelConfig:
    """What the network is. Stored in the model directory; forecasting rebuilds it from here.

    ``None`` for a size means "choose from the data" (data_choices.choose_sizes says how).
    """

    horizon: int = 1
    cell: str = "lstm"
    activation: str = "tanh"  # Elman rnn only; the other cells fix their own
    hidden: int | None = None
    layers: int | None = None
    dropout: float = 0.0
    residual: bool = False  # indrnn only: each layer after the first adds its input
    id_embedding: int = 0  # size of a learned per-series vector; 0 turns it off
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    loss: str = "quantile"
    # How each series is put on the network's scale (scaling.fit_scaler). None: chosen
    # from the data (scaling.choose_scaler, which says what was measured).
    scaler: str | None = None
    # What the model forecasts: "log", the logarithms of the values (where every value
    # is above zero: errors are then relative, as sMAPE judges them, and a series that
    # grows by a factor looks to the model like one that moves by a constant), or
    # "none", the values. None: chosen from the data (scaling.choose_transform, which
    # says what was measured).
    transform: str | None = None
    # The head also sees, for each future step, the last observed value at the same
    # phase of the season: seasonal naive is then one input away, and the network
    # learns how far to trust it (strongly seasonal data, e.g. M4 Hourly, gains most).
    season_inputs: bool = True
    bidirectional: bool = False  # window strategy only: the encoder also reads backwards
    # The encoder reads changes (from the step before and one season before), not
    # levels, and the head is anchored on the season input: forecasts follow a level
    # the training part never reached. Measured (bench/ablation.py): M4 Hourly OWA
    # 0.627 -> 0.524, ETTh1 MSE 0.033 -> 0.028, M3 Monthly sMAPE 13.87 -> 13.76.
    relative_inputs: bool = True
    # With season inputs, the head also sees the value one long season back (a week
    # for hourly data, a year for daily: Frequency.long_season_length) and the encoder
    # the change from it, so a series with a weekly pattern as well as a daily one can
    # follow both; each series' history shows the network which holds. The steps of
    # that season; None: chosen from the data (data_choices.choose_sizes), 0: none.
    long_season: int | None = None
    # Forecasters of this shape whose forecasts are combined by the median of each
    # quantile (nn/ensemble.py); how many the training made (TrainConfig.ensemble).
    members: int = 1

    def __post_init__(self) -> None:
        _check_choice("cell", self.cell, CELLS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("loss", self.loss, LOSSES)
        if self.scaler is not None:
            _check_choice("scaler", self.scaler, SCALERS)
        if self.transform is not None:
            _check_choice("transform", self.transform, TRANSFORMS)
        if not isinstance(self.horizon, int) or isinstance(self.horizon, bool):
            raise ConfigError(f"horizon must be a whole number of steps, got {self.horizon!r}")
        _check_at_least("horizon", self.horizon, 1)
        _check_at_least("hidden", self.hidden, 1)
        _check_at_least("layers", self.layers, 1)
        _check_at_least("id_embedding", self.id_embedding, 0)
        if self.long_season is not None and (self.long_season < 0 or self.long_season == 1):
            raise ConfigError(
                f"long_season must be 0 (none) or at least 2 steps, got {self.long_season}"
            )
        _check_between("members", self.members, 1, MAX_MEMBERS)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation != "tanh" and self.cell != "rnn":
            raise ConfigError(f"--activation applies to --cell rnn only, not {self.cell}")
        if self.residual and self.cell != "indrnn":
            raise ConfigError(f"--residual applies to --cell indrnn only, not {self.cell}")
        if self.loss == "quantile":
            if not self.quantiles:
                raise ConfigError("quantiles must not be empty with --loss quantile")
            if any(not 0.0 < q < 1.0 for q in self.quantiles):
                raise ConfigError(
                    f"quantiles must lie strictly between 0 and 1, got "
                    f"{', '.join(str(q) for q in self.quantiles)}"
                )
            if len(set(self.quantiles)) != len(self.quantiles):
                raise ConfigError(f"quantiles repeat a value: {self.quantiles}")

    @property
    def output_quantiles(self) -> tuple[float, ...]:
        """The quantiles the network emits, sorted, always with the median (the point
        forecast); a point loss emits the point forecast alone."""
        if self.loss != "quantile":
            return (0.5,)
        return tuple(sorted(set(self.quantiles) | {0.5}))


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``None`` means "choose from the data" (data_choices.choose_sizes says how)."""

    strategy: str = "tbptt"
    chunk_len: int | None = None  # TBPTT window K; the state is carried across chunks
    # TBPTT: the loss scores every k-th origin of a chunk (from a random one), since
    # neighbouring origins share all their targets but one; None: from the horizon.
    origin_stride: int | None = None
    lookback: int | None = None  # window strategy: steps the encoder reads per forecast
    batch_size: int | None = None  # series per batch (tbptt) or windows per batch (window)
    # TBPTT: each series of a batch is read as this many streams side by side, each
    # its own stretch of the series; None: from the series' count and lengths.
    streams: int | None = None
    max_epochs: int = 200
    max_time: float | None = None  # seconds; training stops after the epoch that passes it
    patience: int = 10  # epochs without a better validation loss before stopping
    val_size: int | None = None  # steps held out at the end of every series; None: horizon
    # Steps held out after the validation part and never shown to the model, for the
    # holdout test of `rnncast train`; None: one horizon, 0: train on everything.
    test_size: int | None = None
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"
    clip: float = 1.0  # gradient-norm clipping; 0 turns it off
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    # After validation has chosen the epochs and the blend (and the holdout is scored),
    # train again on every step, so the saved model has learned from the newest data.
    refit: bool = True
    # Members of the ensemble, trained one after another with other seeds and chunks;
    # None: as many as the time budget holds, up to DEFAULT_MEMBERS (fitting.py).
    ensemble: int | None = None

    @property
    def batch_rows(self) -> int:
        """Rows of a training batch: its series (windows) times their streams."""
        return int(self.batch_size or 1) * int(self.streams or 1)

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("device", self.device, DEVICES)
        _check_at_least("chunk_len", self.chunk_len, 2)
        _check_at_least("origin_stride", self.origin_stride, 1)
        _check_at_least("lookback", self.lookback, 1)
        _check_at_least("batch_size", self.batch_size, 1)
        _check_at_least("streams", self.streams, 1)
        _check_at_least("max_epochs", self.max_epochs, 1)
        _check_at_least("patience", self.patience, 1)
        _check_at_least("val_size", self.val_size, 0)
        _check_at_least("test_size", self.test_size, 0)
        _check_between("threads", self.threads, 1, MAX_THREADS)
        _check_between("seed", self.seed, 0, MAX_SEED)
        _check_between("ensemble", self.ensemble, 1, MAX_MEMBERS)
        if self.max_time is not None and self.max_time <= 0:
            raise ConfigError(f"max_time must be positive seconds, got {self.max_time}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.clip < 0:
            raise ConfigError(f"clip must be >= 0 (0 turns it off), got {self.clip}")
        if self.chunk_len is not None and self.strategy != "tbptt":
            raise ConfigError("--chunk-len applies to --strategy tbptt only")
        if self.origin_stride is not None and self.strategy != "tbptt":
            raise ConfigError("--origin-stride applies to --strategy tbptt only")
        if self.lookback is not None and self.strategy != "window":
            raise ConfigError("--lookback applies to --strategy window only")


def parse_quantiles(text: str | None) -> tuple[float, ...]:
    """``"0.1,0.5,0.9"`` -> ``(0.1, 0.5, 0.9)``; None -> the default quantiles."""
    if text is None:
        return DEFAULT_QUANTILES
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--quantiles {text!r} is not a list of numbers; write e.g. '0.1,0.5,0.9'"
        ) from None


def _check_between(field: str, value: int | None, minimum: int, maximum: int) -> None:
    if value is not None and not minimum <= value <= maximum:
        raise ConfigError(f"{field} must be between {minimum} and {maximum:,}, got {value:,}")


def _check_at_least(field: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise ConfigError(f"{field} must be at least {minimum}, got {value}")
