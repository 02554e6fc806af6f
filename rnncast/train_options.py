"""The options only ``rnncast train`` takes, declared here so that cli.py holds the
commands: the network, its inputs, how it trains, and what the run prints."""

from __future__ import annotations

from typing import Annotated

import typer

from rnncast.config import (
    CELLS,
    DEFAULT_MEMBERS,
    LOSSES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULES,
    STRATEGIES,
    TRANSFORMS,
)
from rnncast.errors import ConfigError


def chosen_or_auto(name: str, value: str, choices: tuple[str, ...]) -> str | None:
    """``value`` of an option that takes ``auto`` or one of ``choices``: None for
    ``auto`` (chosen from the data), else the choice itself."""
    if value not in ("auto", *choices):
        raise ConfigError(f"{name} must be one of auto, {', '.join(choices)}; got {value!r}")
    return None if value == "auto" else value


CellOption = Annotated[str, typer.Option(help=f"Recurrent cell: {' | '.join(CELLS)}.")]
ActivationOption = Annotated[str, typer.Option(help="Elman rnn only: tanh | relu.")]
HiddenOption = Annotated[int | None, typer.Option(help="Units per layer (from data size).")]
LayersOption = Annotated[int | None, typer.Option(help="Stacked layers (from data size).")]
DropoutOption = Annotated[float, typer.Option(help="Dropout between layers.")]
ResidualOption = Annotated[bool, typer.Option(help="indrnn only: residual layers.")]
IdEmbeddingOption = Annotated[
    int, typer.Option(help="Size of a learned vector per series id; 0: none.")
]
QuantilesOption = Annotated[
    str | None, typer.Option(help="Quantiles to forecast (default 0.1,0.5,0.9).")
]
LossOption = Annotated[
    str, typer.Option(help=f"{' | '.join(LOSSES)} (mse, mae: point forecast only).")
]
ScalerOption = Annotated[
    str,
    typer.Option(
        help=f"How series are scaled: auto | {' | '.join(SCALERS)} (shared: one scale "
        "for all; auto: shared for the logarithms of series without a season, else "
        "standard)."
    ),
]
TransformOption = Annotated[
    str,
    typer.Option(
        help=f"What the model forecasts: auto | {' | '.join(TRANSFORMS)} (log: the "
        "logarithms of the values; auto: log where every value is above 0 and the "
        "steps are a week or longer or a tenth of the series swing by a factor of e "
        "or more within their season)."
    ),
]
SeasonInputsOption = Annotated[
    bool, typer.Option(help="Give the head the value one season back (seasonal naive).")
]
RelativeInputsOption = Annotated[
    bool, typer.Option(help="The network reads changes, not levels (follows level shifts).")
]
LongSeasonOption = Annotated[
    int | None,
    typer.Option(
        help="Steps of a second, longer season input (a week of hourly steps); "
        "0: none (chosen from the data)."
    ),
]
BidirectionalOption = Annotated[
    bool, typer.Option(help="window only: also read each window backwards.")
]
StrategyOption = Annotated[str, typer.Option(help=f"{' | '.join(STRATEGIES)}.")]
ChunkLenOption = Annotated[
    int | None, typer.Option("--chunk-len", "--tbptt", help="TBPTT chunk length K.")
]
OriginStrideOption = Annotated[
    int | None,
    typer.Option(help="tbptt only: score every k-th origin of a chunk (from the horizon)."),
]
LookbackOption = Annotated[int | None, typer.Option(help="window only: steps per window.")]
BatchSizeOption = Annotated[int | None, typer.Option(help="Series (tbptt) or windows.")]
StreamsOption = Annotated[
    int | None,
    typer.Option(help="tbptt only: streams each series is read in, side by side (from the data)."),
]
MaxEpochsOption = Annotated[int, typer.Option(help="Most epochs to train.")]
MaxTimeOption = Annotated[
    float | None, typer.Option(help="Most seconds to train (stops after that epoch).")
]
PatienceOption = Annotated[int, typer.Option(help="Epochs without improvement before stopping.")]
ValSizeOption = Annotated[
    int | None, typer.Option(help="Steps held out per series for validation (horizon).")
]
TestSizeOption = Annotated[
    int | None,
    typer.Option(help="Last steps per series never shown, then scored (horizon); 0: none."),
]
RefitOption = Annotated[
    bool,
    typer.Option(help="After validation (and the test), train again on every step."),
]
EnsembleOption = Annotated[
    int | None,
    typer.Option(
        help="Networks trained, forecasts their median (as many as the time "
        f"budget holds, up to {DEFAULT_MEMBERS})."
    ),
]
OptimizerOption = Annotated[str, typer.Option(help=f"{' | '.join(OPTIMIZERS)}.")]
LrOption = Annotated[float, typer.Option(help="Learning rate.")]
WeightDecayOption = Annotated[float, typer.Option(help="L2 weight decay.")]
ScheduleOption = Annotated[str, typer.Option(help=f"LR schedule: {' | '.join(SCHEDULES)}.")]
ClipOption = Annotated[float, typer.Option(help="Gradient-norm clip; 0: off.")]
SeedOption = Annotated[int, typer.Option(help="Random seed (same seed, same CPU result).")]
ThreadsOption = Annotated[
    int | None,
    typer.Option(help="CPU threads (default: one a core for small networks, else torch's)."),
]
ResumeOption = Annotated[
    bool, typer.Option(help="Continue the interrupted run whose checkpoint is in --out.")
]
PrintConfigOption = Annotated[
    bool, typer.Option(help="Print the effective settings as TOML on stdout and stop.")
]
JsonOutputOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON summary on stdout when done.")
]
