"""Holdout tests, rolling-origin backtests and scores of forecasts written earlier.

Every path ends in an ``Evaluation``: forecasts at K origins per series, the
actuals that followed, the baselines' forecasts on exactly the same origins, and
their Scores.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnncast import distributed
from rnncast.assessment import Evaluation, assemble, assemble_across_shares
from rnncast.config import DataConfig
from rnncast.errors import ConfigError, DataError
from rnncast.panel import Panel, keep_long_enough
from rnncast.time_axis import shift_times, step_positions

if TYPE_CHECKING:
    from rnncast.artifact import Model

log = logging.getLogger("rnncast")


def backtest_cuts(lengths: np.ndarray, horizon: int, folds: int, step: int) -> np.ndarray:
    """(S, K) history lengths of a rolling-origin backtest: K = ``folds`` origins
    ``step`` steps apart, the last one H steps before each series' end."""
    back = horizon + step * np.arange(folds - 1, -1, -1)  # (K,) oldest origin first
    return (lengths[:, None] - back[None, :]).astype(np.int64)


def evaluate(
    model: Model,
    panel: Panel | None,
    *,
    folds: int = 1,
    step: int | None = None,
    season: int | None = None,
    refit: Callable[[Panel], Model] | None = None,
    batch_size: int = 512,
    device: Any = None,
    unseen: bool = False,
    dealt: bool = False,
) -> Evaluation | None:
    """Rolling-origin backtest: forecast H steps from ``folds`` origins ``step``
    steps apart (default H) over the end of every series, and score the forecasts
    and the baselines' on the actuals that followed. Under a process group (torchrun)
    the processes share the forecasting and rank 0 alone scores; the others get None.

    Without ``refit`` the model is not retrained: its state is warmed up over the
    true history up to each origin. ``refit(history) -> Model`` retrains it at
    every origin on the history before it. ``season`` (m of MASE and of seasonal
    naive) defaults to the frequency's. Series too short for the first origin are
    skipped with a warning. Raises ConfigError for impossible settings, DataError
    when no series is long enough or the data does not fit the model.

    ``dealt``: under torchrun, ``panel`` is this process's share of the series a model
    trained on (panel_shares.py; None: none of them, as where a share's series were all
    too short); each process forecasts and measures its own share, and rank 0 scores
    them all (assessment.assemble_across_shares).
    """
    from rnncast.forecasting import forecast_origins

    horizon = model.config.horizon
    step = horizon if step is None else step
    if folds < 1 or step < 1:
        raise ConfigError(f"--folds and --step must be at least 1, got {folds} and {step}")
    needed = horizon + (folds - 1) * step + 1
    settings = {"folds": folds, "step": step, "refit": refit is not None}
    if dealt and refit is None:
        season = int(model.schema["season_length"]) if season is None else season
        cuts, values = None, None
        if panel is not None and (panel.lengths >= needed).any():
            # The series trained on are long enough for the test part they held out.
            panel = panel.take(np.flatnonzero(panel.lengths >= needed))
            cuts = backtest_cuts(panel.lengths, horizon, folds, step)
            values = forecast_origins(model, panel, cuts, batch_size=batch_size, device=device)
        else:
            panel = None
        evaluation = assemble_across_shares("backtest", panel, cuts, model, values, season,
                                            settings)  # fmt: skip
        if evaluation is None:
            return None  # another process than rank 0: rank 0 scores
        in_sample = 0 if unseen else _in_sample_origins(model, evaluation)
        return replace(evaluation, settings={**settings, "in_sample_origins": in_sample})
    assert panel is not None
    season = _season(panel, season)
    panel = keep_long_enough(panel, needed, f"{folds} folds of --horizon {horizon}, --step {step}")
    cuts = backtest_cuts(panel.lengths, horizon, folds, step)
    if refit is None:
        values = _forecast_shares(model, panel, cuts, batch_size=batch_size, device=device)
        if values is None:
            return None  # another process than rank 0 under torchrun: rank 0 scores
    else:
        values = np.empty((panel.n_series, folds, horizon, len(model.config.output_quantiles)))
        for fold in range(folds):
            history = replace(panel, ends=panel.begins + cuts[:, fold])
            log.info("refitting for origin %d of %d", fold + 1, folds, extra={"event": "refit"})
            values[:, fold] = forecast_origins(
                refit(history), history, cuts[:, fold : fold + 1], batch_size=batch_size,
                device=device,
            )[:, 0]  # fmt: skip
    evaluation = assemble("backtest", panel, cuts, model, values, season, settings)
    if refit is None:
        # ``unseen``: the caller knows the model never saw these steps (the holdout cut
        # them off before training), which the one end time a model records cannot
        # tell for series of different lengths.
        in_sample = 0 if unseen else _in_sample_origins(model, evaluation)
        evaluation = replace(evaluation, settings={**settings, "in_sample_origins": in_sample})
    return evaluation


def _in_sample_origins(model: Model, evaluation: Evaluation) -> int:
    """How many origins forecast steps the model was trained or validated on, for
    series it was trained on; they flatter it, so a warning says so."""
    until = model.schema.get("trained_until_ns")
    if until is None:
        return 0  # a model written before this was recorded
    known = np.isin(evaluation.ids.astype(str), model.scaler.ids.astype(str))
    seen = known[:, None] & (evaluation.times[..., 0] <= until)  # (S, K)
    if seen.any():
        log.warning(
            "%d of %d origins forecast steps up to %s, which the model was trained on: "
            "their scores are in-sample. Backtest on data after it, or use --refit",
            int(seen.sum()), seen.size, model.schema.get("trained_until"),
            extra={"event": "in_sample_origins", "fields": {"origins": int(seen.sum())}},
        )  # fmt: skip
    return int(seen.sum())


def holdout(
    model: Model,
    panel: Panel,
    *,
    season: int | None = None,
    batch_size: int = 512,
    device: Any = None,
) -> Evaluation | None:
    """Score a model on the test part ``rnncast train`` held out of ``panel``, the
    data it was trained on: every whole horizon of the last ``test_size`` steps.

    Under torchrun every process forecasts its share, and rank 0 alone scores: the
    others get None. Raises ConfigError when the model was trained without a test part.
    """
    test_size = model.training.test_size or 0
    horizon = model.config.horizon
    if test_size < horizon:
        raise ConfigError(
            "this model was trained on every step (--test-size 0); evaluate it on new data "
            "with rnncast evaluate"
        )
    # Series the model skipped as too short were never trained on; scoring them would
    # measure something else than the test of this training run.
    trained_on = np.isin(panel.ids.astype(str), model.scaler.ids.astype(str))
    dealt = distributed.world().is_distributed
    # Under torchrun a share may hold none of them (its series were all too short).
    kept = panel.take(np.flatnonzero(trained_on)) if trained_on.any() else None
    # Under torchrun ``panel`` is this process's share of the training data, scored
    # where it lies (assessment.assemble_across_shares).
    protocol = {"folds": test_size // horizon, "step": horizon, "season": season,
                "batch_size": batch_size, "device": device, "unseen": True,
                "dealt": dealt}  # fmt: skip
    if kept is None and not dealt:
        raise ConfigError("none of the series was trained on: there is no test part to score")
    evaluation = evaluate(model, kept, **protocol)
    combination = model.combination
    uncalibrated = None
    # Every process takes the same branches (no evaluation needed to choose), so that
    # each joins the same collectives.
    if combination is not None and combination.offsets and model.config.loss == "quantile":
        # The same forecasts before the conformal offsets moved their quantiles: the
        # report sets their coverage beside the calibrated one, step by step.
        before = replace(model, combination=replace(combination, offsets=()))
        scored = evaluate(before, kept, **protocol)
        uncalibrated = None if scored is None else scored.scores["model"]
    if evaluation is None:
        return None
    settings = {"test_size": test_size, **evaluation.settings}
    return replace(evaluation, kind="holdout", settings=settings, uncalibrated=uncalibrated)


def score_forecasts(
    forecasts: Panel, quantiles: tuple[float, ...], actuals: Panel, *, season: int | None = None
) -> Evaluation:
    """Score forecasts written earlier (read with ``read_forecasts``) against actuals.

    Each forecast series is matched by id; its origin is the step before its first
    forecast time. The actuals' steps before it are the history that MASE is scaled
    by and the baselines forecast from. Forecast steps without an actual yet are
    left unscored (counted as missing). Raises DataError when no forecast series is
    in the actuals, or a forecast's times are off the actuals' grid.
    """
    if forecasts.freq != actuals.freq:
        raise DataError(
            f"the forecasts are {forecasts.freq.label} ({forecasts.freq.alias}) and the "
            f"actuals {actuals.freq.label} ({actuals.freq.alias})"
        )
    season = _season(actuals, season)
    position = {str(name): index for index, name in enumerate(actuals.ids)}
    matched = np.array([position.get(str(name), -1) for name in forecasts.ids])
    if (matched < 0).all():
        raise DataError(
            f"none of the {forecasts.n_series} forecast series is in the actuals (first "
            f"forecast id {str(forecasts.ids[0])!r}); check the id column"
        )
    if (matched < 0).any():
        missing = ", ".join(repr(str(i)) for i in forecasts.ids[matched < 0][:5])
        log.warning(
            "%d forecast series have no actuals: %s", int((matched < 0).sum()), missing,
            extra={"event": "series_unmatched", "fields": {"series": int((matched < 0).sum())}},
        )  # fmt: skip
        forecasts = forecasts.take(np.flatnonzero(matched >= 0))
        matched = matched[matched >= 0]
    history = actuals.take(matched)
    cuts = step_positions(forecasts.start_times, history.start_times, actuals.freq)
    on_grid = shift_times(history.start_times, cuts, actuals.freq) == forecasts.start_times
    if not on_grid.all():
        name = str(forecasts.ids[np.flatnonzero(~on_grid)[0]])
        raise DataError(
            f"the forecast times of series {name!r} are not on the grid of its actuals "
            f"({actuals.freq.label})"
        )
    horizon = int(forecasts.lengths.max())
    steps = np.arange(horizon)
    inside = steps[None, :] < forecasts.lengths[:, None]  # (S, H): ragged horizons
    rows = np.minimum(forecasts.begins[:, None] + steps, forecasts.ends[:, None] - 1)
    point = np.where(inside, forecasts.values[rows], np.nan)[:, None]  # (S, 1, H)
    values = np.where(inside[..., None], forecasts.covariates[rows], np.nan)[:, None]
    settings = {"forecast_start": forecasts.format_time(int(forecasts.start_times.min()))}
    return assemble(
        "score", history, cuts[:, None], None, values.astype(np.float64), season, settings,
        quantiles=quantiles, point=point.astype(np.float64),
    )  # fmt: skip


def read_forecasts(
    location: str | Path, freq: str | None = None
) -> tuple[Panel, tuple[float, ...]]:
    """Read a forecast file rnncast wrote (unique_id, ds, y_hat, y_q10, …) as a Panel
    whose target is the point forecast and whose covariates are the quantile columns,
    and the quantile levels, sorted. ``freq`` is needed for one-step forecasts."""
    from rnncast.panel import read_panel

    config = DataConfig(
        id_col="unique_id", time_col="ds", target_col="y_hat", covariates="all", freq=freq
    )
    panel = read_panel(location, config)
    levels = {}
    for column, name in enumerate(panel.covariate_names):
        matched = re.fullmatch(r"y_q(\d+(?:\.\d+)?)", name)
        if matched is not None and 0 < float(matched.group(1)) < 100:
            levels[float(matched.group(1)) / 100] = column
    quantiles = tuple(sorted(levels))
    columns = [levels[q] for q in quantiles]
    return replace(
        panel,
        covariates=np.ascontiguousarray(panel.covariates[:, columns]),
        covariate_names=tuple(panel.covariate_names[c] for c in columns),
    ), quantiles


def _forecast_shares(
    model: Model,
    panel: Panel,
    cuts: np.ndarray,
    *,
    batch_size: int,
    device: Any,
) -> np.ndarray | None:
    """(S, K, H, Q) forecasts from every cut. Under torchrun each process forecasts a
    consecutive share of the series and rank 0 alone receives the shares, joined in
    order (a collective): it then scores the whole test part without forecasting it
    alone, and the other processes, which get None, never hold all of it."""
    from rnncast.forecasting import forecast_origins

    current = distributed.world()
    if not current.is_distributed:
        return forecast_origins(model, panel, cuts, batch_size=batch_size, device=device)
    share = distributed.consecutive_share(panel.n_series, current)
    mine = None
    if share.size:
        mine = forecast_origins(model, panel.take(share), cuts[share], batch_size=batch_size,
                                device=device)  # fmt: skip
    gathered = distributed.gather_to_main(mine)
    if gathered is None:
        return None
    return np.concatenate([found for found in gathered if found is not None])


def _season(panel: Panel, season: int | None) -> int:
    if season is None:
        return panel.freq.season_length
    if season < 1:
        raise ConfigError(f"--season must be at least 1, got {season}")
    return season
