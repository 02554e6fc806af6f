"""The target's transform and per-series scaling, fitted on the training part only.

Where every value of every series is above zero and the steps are a week or
longer, or a tenth of the series swing by a factor of e or more within their
season, the model works on their logarithms (``choose_transform``): every stage
after this one, the network, the base forecasts, the blend and its calibration,
then sees a series grow by a factor as it sees one move by a constant, and its
errors are relative, as positive quantities' are judged (sMAPE).
``to_model_space`` and ``from_model_space`` are exact inverses; quantiles pass
through both in order, so the median of the logarithms is the logarithm of the
median.

A network shared by many series needs them on one scale. Each series gets a
location and a scale fitted on its training steps; covariates get one location
and scale per column over all training steps. ``fit_scaler`` returns a frozen
``Scaler``, ``scale_values`` and ``unscale`` are pure and exact inverses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rnncast import panel_shares
from rnncast.errors import DataError
from rnncast.frequency import NS_PER_WEEK
from rnncast.panel import Panel

# A series whose spread is below this fraction of its level is treated as
# constant: dividing by a near-zero spread would blow rounding noise up to
# full-size signal.
_RELATIVE_FLOOR = 1e-6
# Sub-weekly data is modelled on its logarithms where at least this share of the
# series swing, in their typical season, by _MULTIPLYING_SWING or more between
# their lowest and their highest value (a tenth, as for the long season's gate).
_MULTIPLYING_SHARE = 0.1
# The unit of the logarithms' scale: a season whose logarithms move by more than 1.
_MULTIPLYING_SWING = np.e
# The typical swing is the median over the series' last (up to) this many seasons.
_SWING_SEASONS = 64


@dataclass(frozen=True)
class Scaler:
    """Locations and scales: target per series, covariates per column.

    ``ids`` name the series in the order of ``loc``/``scale`` so a scaler fitted
    in training can be matched to the series of new data by id.
    """

    method: str
    ids: np.ndarray  # (S,) str
    loc: np.ndarray  # (S,) float64
    scale: np.ndarray  # (S,) float64, > 0
    covariate_loc: np.ndarray  # (C,) float64
    covariate_scale: np.ndarray  # (C,) float64, > 0

    def take(self, positions: np.ndarray) -> Scaler:
        """The scaler of some series, in the given order."""
        return Scaler(
            self.method,
            self.ids[positions],
            self.loc[positions],
            self.scale[positions],
            self.covariate_loc,
            self.covariate_scale,
        )


def joined_across_shares(scaler: Scaler) -> Scaler:
    """Under torchrun, the scaler of every series of a Panel dealt out among the
    processes (panel_shares.py), in its order, from each process's of its own share:
    the one the model directory keeps. A collective; ``scaler`` itself in one process."""
    return replace(scaler, ids=panel_shares.joined(scaler.ids), loc=panel_shares.joined(scaler.loc),
                   scale=panel_shares.joined(scaler.scale))  # fmt: skip


def fit_scaler(panel: Panel, method: str, *, across_shares: bool = False) -> Scaler:
    """Fit one location and scale per series of ``panel`` (pass the training part).

    ``standard``: mean and standard deviation. ``meanabs``: zero and the mean
    absolute value, which keeps zero at zero (sparse or intermittent series).
    ``robust``: median and interquartile range / 1.349 (the standard deviation of
    a normal distribution), unmoved by a few outliers. A constant series gets
    scale max(|level|, 1), so it maps to a constant of at most one. ``shared``: each
    series' mean, and one scale for all, ``shared_scale`` (see choose_scaler).
    ``across_shares``: ``panel`` is this process's share of a Panel dealt out under
    torchrun (panel_shares.py), and what all series share (that one scale, the
    covariates' moments) is taken over every share: a collective.
    """
    loc = np.empty(panel.n_series)
    scale = np.empty(panel.n_series)
    for index in range(panel.n_series):
        values = panel.series(index).astype(np.float64)
        if method == "shared":
            loc[index] = float(values.mean())
        else:
            loc[index], scale[index] = _fit_one(values, method)
    if method == "shared":
        scale[:] = shared_scale(panel, across_shares=across_shares)
    covariate_loc = np.zeros(len(panel.covariate_names))
    covariate_scale = np.ones(len(panel.covariate_names))
    if panel.covariate_names:
        rows = panel.step_rows()
        columns = panel.covariates[rows].astype(np.float64)
        if across_shares:
            covariate_loc, spread = panel_shares.column_moments(columns)
        else:
            covariate_loc, spread = columns.mean(axis=0), columns.std(axis=0)
        covariate_scale = np.where(spread > 0, spread, 1.0)
    return Scaler(method, panel.ids.copy(), loc, scale, covariate_loc, covariate_scale)


def _fit_one(values: np.ndarray, method: str) -> tuple[float, float]:
    if method == "meanabs":
        loc, spread = 0.0, float(np.abs(values).mean())
    elif method == "robust":
        low, loc, high = np.quantile(values, [0.25, 0.5, 0.75])
        spread = float(high - low) / 1.349 or float(values.std())
    elif method == "standard":
        loc, spread = float(values.mean()), float(values.std())
    else:
        raise ValueError(f"unknown scaler {method!r}")
    level = max(abs(float(loc)), float(np.abs(values).mean()))
    if not spread > _RELATIVE_FLOOR * level or spread == 0.0:
        spread = max(level, 1.0)
    return float(loc), spread


def shared_scale(panel: Panel, *, across_shares: bool = False) -> float:
    """One scale for every series of ``panel``: the median over series of the mean
    absolute change from one step to the next (1 where no series changes)."""
    changes = []
    for index in range(panel.n_series):
        values = panel.series(index).astype(np.float64)
        if values.shape[0] > 1:
            changes.append(float(np.abs(np.diff(values)).mean()))
    if across_shares:
        changes = panel_shares.joined(np.array(changes, dtype=np.float64)).tolist()
    moving = [change for change in changes if change > 0]
    return float(np.median(moving)) if moving else 1.0


def scale_values(panel: Panel, scaler: Scaler) -> tuple[np.ndarray, np.ndarray]:
    """The panel's target and covariates scaled, each series after the next.

    Returns ``(target (N,), covariates (N, C))`` float32 over the panel's own
    steps (series i occupies ``sum(lengths[:i])`` onwards), new arrays.
    """
    rows = panel.step_rows()
    series_of_row = np.repeat(np.arange(panel.n_series), panel.lengths)
    target = (panel.values[rows] - scaler.loc[series_of_row]) / scaler.scale[series_of_row]
    covariates = (panel.covariates[rows] - scaler.covariate_loc) / scaler.covariate_scale
    return target.astype(np.float32), covariates.astype(np.float32)


def unscale(values: np.ndarray, scaler: Scaler) -> np.ndarray:
    """Scaled values (S, ...) back to the data's units, float64; series along axis 0."""
    extra = (1,) * (values.ndim - 1)
    loc = scaler.loc.reshape(-1, *extra)
    scale = scaler.scale.reshape(-1, *extra)
    return values.astype(np.float64) * scale + loc


def choose_transform(panel: Panel) -> str:
    """The model's transform for ``panel``: "log" where ``logarithms_reason`` gives
    one, else "none"."""
    return "none" if logarithms_reason(panel) is None else "log"


def logarithms_reason(panel: Panel) -> str | None:
    """Why the model of ``panel`` should forecast logarithms, or None where it should
    not: every value of every series must be above zero, and either its steps are a
    week or longer or a tenth of its series swing by a factor of e or more within
    their season.

    Series counted in weeks, months or years grow and shrink by factors over their
    history, and logarithms paid there (sMAPE: M3 Monthly 13.727 -> 13.444, M3
    Yearly 16.151 -> 16.084, M3 Monthly summed to quarters 11.125 -> 10.816). Faster
    series usually swing around their level by a share of it, and there logarithms
    cost: both measures on the sample data, whose loads swing by a factor of 1.9 a
    day (OWA 0.352 -> 0.370, the mean of three seeds). Where a season multiplies the
    values instead, a model of the values spends its loss on the peaks and misses the
    troughs by factors: a third of M4 Hourly's series swing by more than e a day (a
    quarter by more than 7), most of its sMAPE comes from them, and logarithms took
    its OWA from 0.453 to 0.429 (the mean of five seeds; sMAPE 10.738 -> 9.764, while
    MASE went 0.770 -> 0.783: the troughs' errors traded for the peaks'). M4 Hourly
    summed to days, whose runs disagreed, swings that far in 4% of its series and
    keeps its values."""
    rows = panel.step_rows()
    positive = rows.shape[0] > 0 and bool((panel.values[rows] > 0).all())
    if not panel_shares.all_true(positive):
        return None
    if panel.freq.months > 0 or panel.freq.step_ns >= NS_PER_WEEK:
        return "steps of a week or longer, every value above 0"
    season = panel.freq.season_length
    if season < 2:
        return None
    swinging = [_swings_by_factors(panel.series(i), season) for i in range(panel.n_series)]
    joined = panel_shares.joined(np.array(swinging, dtype=bool))
    share = float(np.mean(joined)) if joined.shape[0] else 0.0
    if share < _MULTIPLYING_SHARE:
        return None
    return (
        f"{share:.0%} of the series swing by a factor of e or more within their season, "
        "every value above 0"
    )


def _swings_by_factors(values: np.ndarray, season: int) -> bool:
    """Whether the series' highest value in its typical season (the median over its
    last whole seasons, up to _SWING_SEASONS) is _MULTIPLYING_SWING times its lowest
    or more. Values must be above 0."""
    whole = min(values.shape[0] // season, _SWING_SEASONS)
    if whole < 2:
        return False
    seasons = np.asarray(values[values.shape[0] - whole * season :], dtype=np.float64)
    seasons = seasons.reshape(whole, season)
    swing = np.median(seasons.max(axis=1) / seasons.min(axis=1))
    return bool(swing >= _MULTIPLYING_SWING)


def choose_scaler(panel: Panel, transform: str) -> str:
    """The scaler for ``panel`` in the model's space: "shared" for logarithms of series
    without a season, else "standard".

    A scale fitted on a series' whole training part tells the network, at every
    origin it trains on, how far the series still goes before that part ends: the
    standard deviation of a short trending series is mostly its trend. At the end of
    the series, where it forecasts, there is no such hint, and validation got worse
    from the first epoch on (M3 Yearly: best epochs 1 to 4). Logarithms are already on
    one relative scale, so one scale for every series hints at nothing: M3 Yearly
    sMAPE 16.099 -> 15.786 (mean of five seeds), and the best epochs 3 to 29. It cost
    0.1 on shorter yearly series (M3 Monthly summed to 8 to 12 years, h 2), where the
    rule takes it too. Where a season moves the series, its swing is most of their
    spread, which then measures how each series moves rather than where it is going:
    M3 Monthly lost with one scale (13.414 -> 13.598, and 13.737 with a scale of each
    series' changes), as did quarterly data in MASE, so seasonal data keeps each
    series' own."""
    if transform == "log" and panel.freq.season_length <= 1:
        return "shared"
    return "standard"


def to_model_space(panel: Panel, transform: str) -> Panel:
    """``panel`` with its target transformed as the model reads it (a new buffer; the
    covariates are shared). DataError naming the series, the column and the step of
    a value the transform cannot take."""
    if transform == "none":
        return panel
    rows = panel.step_rows()
    values = panel.values[rows]
    bad = np.flatnonzero(values <= 0)
    if bad.shape[0]:
        first = int(bad[0])  # steps are numbered series after series, as panel.times()
        series = int(np.searchsorted(np.cumsum(panel.lengths), first, side="right"))
        source = f"{panel.ingest.source}: " if panel.ingest is not None else ""
        raise DataError(
            f"{source}series {str(panel.ids[series])!r} has {float(values[first]):g} in column "
            f"{panel.target_name!r} at {panel.format_time(int(panel.times()[first]))}"
            f" ({bad.shape[0]} such values in all); the model forecasts the logarithms of "
            "the values and needs every value above 0: train it with --transform none"
        )
    # Rows of the buffer outside every series may hold anything and are read by masked
    # sums, where a NaN would not vanish: they become 0.
    logged = np.zeros_like(panel.values)
    logged[rows] = np.log(values)
    return replace(panel, values=logged)


def from_model_space(values: np.ndarray, transform: str) -> np.ndarray:
    """Forecasts in the model's space back in the data's units (float64)."""
    values = values.astype(np.float64, copy=False)
    if transform != "log":
        return values
    with np.errstate(over="ignore"):  # an overflow is a forecast that is not finite
        return np.exp(values)
