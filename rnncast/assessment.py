"""Forecasts scored: the actuals after each origin, the baselines' forecasts from the
same origins, and the scores of both, as an ``Evaluation`` (evaluation.py makes the
forecasts; the report shows them).

Under torchrun a training's test part is scored where its series lie
(``assemble_across_shares``): each process measures its own share (actuals, MASE
scales, baselines) and rank 0 receives those arrays and each series' recent history,
not the whole Panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rnncast import distributed, panel_shares
from rnncast.baselines import baseline_forecasts, seasonal_adjustment
from rnncast.frequency import Frequency
from rnncast.metrics import Scores, score, seasonal_scales
from rnncast.panel import Panel
from rnncast.time_axis import shift_times

if TYPE_CHECKING:
    from rnncast.artifact import Model

# Steps of history before each series' first origin that an Evaluation scored across
# shares keeps: the most a report's figure draws (plots.py).
RECENT_HISTORY = 500

# Report order; naive2 (M4's benchmark, the one OWA is relative to) came last, so
# the methods of older reports keep their places.
BASELINES = ("naive", "seasonal_naive", "drift", "naive2")


@dataclass(frozen=True)
class Evaluation:
    """Forecasts at K origins per series, the actuals after them, and their scores."""

    kind: str  # "holdout" (train --test-size), "backtest" (evaluate) or "score"
    ids: np.ndarray  # (S,) str
    freq: Frequency
    tz: str | None
    season: int  # m of MASE and of the seasonal-naive baseline
    horizon: int  # H
    quantiles: tuple[float, ...]  # levels of `values`, sorted; () for point forecasts only
    cuts: np.ndarray  # (S, K) int64: steps of history each origin saw (origin = cut - 1)
    times: np.ndarray  # (S, K, H) int64 ns: the forecast steps
    actual: np.ndarray  # (S, K, H) float64, NaN where no actual
    point: np.ndarray  # (S, K, H) float64: the model's point forecast (its median)
    values: np.ndarray  # (S, K, H, Q) float64: the model's quantiles
    baselines: dict[str, np.ndarray]  # name -> (S, K, H) point forecasts
    scores: dict[str, Scores]  # "model" and each baseline name
    history: Panel  # the data the origins were cut from, for plotting what came before
    settings: dict[str, Any] = field(default_factory=dict)  # protocol facts for the report
    # The model's scores before its intervals were calibrated (holdout of a calibrated
    # model only): coverage before and after, for the report.
    uncalibrated: Scores | None = None
    # How Naive2 went, in origins: ``naive2_seasonal_origins`` (histories it adjusted for
    # a season), ``naive2_nonpositive_origins`` (seasonal histories with a value <= 0,
    # which it left unadjusted: naive).
    baseline_counts: dict[str, int] = field(default_factory=dict)


def assemble(
    kind: str,
    panel: Panel,
    cuts: np.ndarray,
    model: Model | None,
    values: np.ndarray,
    season: int,
    settings: dict[str, Any],
    *,
    quantiles: tuple[float, ...] = (),
    point: np.ndarray | None = None,
) -> Evaluation:
    """Actuals, baselines and scores around forecasts ``values`` (S, K, H, Q) made
    after ``cuts`` (S, K) steps of the series of ``panel``: a model's output, or
    (``model`` None) read from a file with its ``quantiles`` and ``point``."""
    quantiles, point, values = _outputs(model, values, quantiles, point)
    measured = _measured(panel, cuts, point.shape[-1], season)
    return scored(kind, panel, cuts, quantiles, point, values, season, settings, measured)


def assemble_across_shares(
    kind: str,
    panel: Panel | None,
    cuts: np.ndarray | None,
    model: Model,
    values: np.ndarray | None,
    season: int,
    settings: dict[str, Any],
) -> Evaluation | None:
    """``assemble`` under torchrun, where ``panel`` is this process's share of a
    training's Panel (panel_shares.py; None where it holds no series to score) and
    ``values`` its forecasts: the Evaluation of every share on rank 0, None on the
    others. A collective.

    Each process measures its own series; rank 0 receives the per-series arrays, joined
    in rank order, and the last RECENT_HISTORY steps before each series' first origin
    with what follows, as the Evaluation's history (its cuts count from there). The
    scores are those of one process scoring the whole Panel."""
    quantiles = model.config.output_quantiles if model.config.loss == "quantile" else ()
    mine, recent = None, None
    if panel is not None and cuts is not None and values is not None:
        _, point, values = _outputs(model, values, (), None)
        measured = _measured(panel, cuts, point.shape[-1], season)
        kept_from = np.maximum(cuts.min(axis=1) - RECENT_HISTORY, 0)
        starts = shift_times(panel.start_times, kept_from, panel.freq)
        recent = replace(panel, begins=panel.begins + kept_from, start_times=starts)
        mine = {"cuts": cuts - kept_from[:, None], "point": point, "values": values, **measured}
    shares = distributed.gather_to_main(mine)
    history = panel_shares.joined_on_main(recent)
    if shares is None or history is None:
        return None
    gathered = [share for share in shares if share is not None]
    joined: dict[str, Any] = {
        name: np.concatenate([share[name] for share in gathered])
        for name in ("cuts", "point", "values", "actual", "scale", "times")
    }
    joined["baselines"] = {name: np.concatenate([share["baselines"][name] for share in gathered])
                           for name in gathered[0]["baselines"]}  # fmt: skip
    joined["counts"] = {name: sum(share["counts"][name] for share in gathered)
                        for name in gathered[0]["counts"]}  # fmt: skip
    cuts, point, values = joined.pop("cuts"), joined.pop("point"), joined.pop("values")
    return scored(kind, history, cuts, quantiles, point, values, season, settings, joined)


def _outputs(
    model: Model | None, values: np.ndarray, quantiles: tuple[float, ...], point: np.ndarray | None
) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
    """The quantile levels, the point forecast and the quantile forecasts scored: a
    model's median and, when it was trained for them, its quantiles."""
    if model is not None:
        quantiles = model.config.output_quantiles
        point = values[..., quantiles.index(0.5)]
        if model.config.loss != "quantile":
            quantiles, values = (), values[..., :0]
    assert point is not None
    return quantiles, point, values


def _measured(panel: Panel, cuts: np.ndarray, horizon: int, season: int) -> dict[str, Any]:
    """What scoring needs of the series themselves: the actuals after each cut, the
    MASE scales, the baselines' forecasts and how Naive2 went, and the forecast times."""
    actual = values_after(panel, cuts, horizon)
    # Forecasts scored later may start before the first actual (no history: no scale,
    # no baselines) or after the last one (nothing to score yet).
    lengths = panel.lengths[:, None]
    usable = (cuts >= 1) & (cuts <= lengths)
    known = np.clip(cuts, 1, lengths)
    scale = np.where(usable, seasonal_scales(panel.values, panel.begins, known, season), np.nan)
    adjustment = seasonal_adjustment(panel.values, panel.begins, known, season)
    baselines = {
        name: np.where(usable[..., None], forecast, np.nan)
        for name, forecast in baseline_forecasts(
            panel.values, panel.begins, known, horizon, season, adjustment
        ).items()
    }
    counts = {
        "naive2_seasonal_origins": int((adjustment.adjusted & usable).sum()),
        "naive2_nonpositive_origins": int((adjustment.nonpositive & usable).sum()),
    }
    steps = cuts[..., None] + np.arange(horizon)  # (S, K, H)
    starts = np.broadcast_to(panel.start_times[:, None, None], steps.shape)
    times = shift_times(starts.reshape(-1), steps.reshape(-1), panel.freq).reshape(steps.shape)
    return {"actual": actual, "scale": scale, "baselines": baselines, "counts": counts,
            "times": times}  # fmt: skip


def scored(
    kind: str,
    history: Panel,
    cuts: np.ndarray,
    quantiles: tuple[float, ...],
    point: np.ndarray,
    values: np.ndarray,
    season: int,
    settings: dict[str, Any],
    measured: dict[str, Any],
) -> Evaluation:
    """The Evaluation of forecasts ``point`` and ``values`` against ``measured``
    (_measured) for the series of ``history``."""
    actual, scale = measured["actual"], measured["scale"]
    scores = {
        "model": score(actual, point, scale, quantiles=quantiles, values=values)
        if quantiles
        else score(actual, point, scale)
    }
    scores.update(
        (name, score(actual, forecast, scale)) for name, forecast in measured["baselines"].items()
    )
    return Evaluation(
        kind=kind, ids=history.ids, freq=history.freq, tz=history.tz, season=season,
        horizon=point.shape[-1], quantiles=quantiles, cuts=cuts, times=measured["times"],
        actual=actual, point=point, values=values, baselines=measured["baselines"],
        scores=scores, history=history, settings=settings,
        baseline_counts=measured["counts"],
    )  # fmt: skip


def values_after(panel: Panel, cuts: np.ndarray, horizon: int) -> np.ndarray:
    """(S, K, H) float64: the H values after each cut; NaN past a series' end."""
    steps = cuts[..., None] + np.arange(horizon)  # (S, K, H)
    inside = (steps >= 0) & (steps < panel.lengths[:, None, None])
    rows = panel.begins[:, None, None] + np.clip(steps, 0, panel.lengths[:, None, None] - 1)
    return np.where(inside, panel.values[rows].astype(np.float64), np.nan)
