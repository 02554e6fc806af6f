"""The report's figures, drawn headless as PNG bytes.

Figures are made with ``matplotlib.figure.Figure`` on an Agg canvas, never through
``pyplot``: pyplot keeps a global list of open figures and picks a GUI backend from
the environment, which a cron job has no use for and a long run would leak. Nothing
global is set; every figure is closed simply by going out of scope.

Each function draws a fixed handful of panels whatever the number of series S, so a
report on ten thousand series costs the same as one on ten.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from rnncast.assessment import RECENT_HISTORY, Evaluation
from rnncast.metrics import central_intervals
from rnncast.time_axis import shift_times
from rnncast.timezones import to_datetimes

_DPI = 100
_PANEL_WIDTH = 6.0  # inches per forecast panel
_PANEL_HEIGHT = 2.6
_MAX_RECENT = RECENT_HISTORY  # at most this many steps of history before the first origin
_MODEL_COLOR = "#1f5fa8"
_ACTUAL_COLOR = "#222222"
_BASELINE_COLORS = {
    "naive": "#8c8c8c",
    "seasonal_naive": "#d08a1c",
    "drift": "#5a9e4b",
    "naive2": "#9b59b6",
}


def choose_series(
    evaluation: Evaluation, count_random: int = 4, seed: int = 0
) -> list[tuple[int, str]]:
    """Series worth a look: (position, label) for the best 2 and worst 2, then others.

    The model's series are ranked by MASE; where MASE is defined for no series
    (every history constant or too short), by sMAPE. A series whose ranking metric is
    undefined is never called best or worst but may be drawn among the
    ``count_random`` others, picked with ``np.random.default_rng(seed)`` so a
    report is repeatable. No series appears twice and there are never more than S.
    """
    per_series = evaluation.scores["model"].per_series
    n_series = int(evaluation.ids.shape[0])
    title = "MASE"
    ranking = np.asarray(per_series.get("mase", np.full(n_series, np.nan)), dtype=np.float64)
    if not np.isfinite(ranking).any() and "smape" in per_series:
        title = "sMAPE"
        ranking = np.asarray(per_series["smape"], dtype=np.float64)
    defined = np.flatnonzero(np.isfinite(ranking))
    # A stable sort keeps ties in series order, so the same data always picks the same.
    ordered = defined[np.argsort(ranking[defined], kind="stable")]

    chosen: list[tuple[int, str]] = []
    taken: set[int] = set()
    for position in ordered[:2]:
        chosen.append((int(position), f"best {title} {_short(ranking[position])}"))
        taken.add(int(position))
    for position in ordered[::-1][:2]:
        if int(position) not in taken:
            chosen.append((int(position), f"worst {title} {_short(ranking[position])}"))
            taken.add(int(position))
    others = np.setdiff1d(np.arange(n_series), np.fromiter(taken, np.int64, len(taken)))
    count = min(max(count_random, 0), others.shape[0])
    if count:
        drawn = np.sort(np.random.default_rng(seed).choice(others, size=count, replace=False))
        for position in drawn:
            value = ranking[position]
            label = f"random, {title} {_short(value)}" if np.isfinite(value) else "random"
            chosen.append((int(position), label))
    return chosen


def forecast_figure(evaluation: Evaluation, positions: list[int], labels: list[str]) -> bytes:
    """PNG of one small panel per chosen series: recent history, actuals, forecasts.

    Each panel shows up to max(2 seasons, 3·H) steps (at most 500) of history before
    the first origin, the actuals over the evaluated span, the model's median per
    fold with its central intervals (the widest lightest), and seasonal naive dashed.
    ``positions`` index the evaluation's series; ``labels`` go in the panel titles.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    count = max(len(positions), 1)
    columns = 1 if count == 1 else 2
    rows = -(-count // columns)
    figure, canvas = _figure(_PANEL_WIDTH * columns, _PANEL_HEIGHT * rows + 0.4)
    bands = _central_pairs(evaluation.quantiles)
    for slot, (position, label) in enumerate(zip(positions, labels, strict=True)):
        axes = figure.add_subplot(rows, columns, slot + 1)
        _draw_series(axes, evaluation, position, bands)
        series_id = _clip(str(evaluation.ids[position]), 40)
        axes.set_title(f"{series_id} — {label}", fontsize=9, loc="left")
        locator = AutoDateLocator(minticks=3, maxticks=6)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.tick_params(labelsize=7)
        axes.xaxis.get_offset_text().set_fontsize(7)
        axes.grid(alpha=0.25, linewidth=0.5)
        if slot == 0:
            # One legend for all panels, outside them, so it never hides a line.
            handles, names = axes.get_legend_handles_labels()
            figure.legend(
                handles, names, loc="outside upper center", ncol=5, frameon=False, fontsize=8
            )
    return _png(canvas)


def horizon_figure(evaluation: Evaluation) -> bytes:
    """PNG of the error at each step ahead (1..H) for the model and every baseline.

    The error is MASE averaged over series, or MAE where the model's MASE is
    undefined at every step (every history constant).
    """
    from matplotlib.ticker import MaxNLocator

    model_steps = evaluation.scores["model"].per_step
    mase = np.asarray(model_steps.get("mase", []), dtype=np.float64)
    metric, title = ("mase", "MASE") if np.isfinite(mase).any() else ("mae", "MAE")
    figure, canvas = _figure(8.0, 3.6)
    axes = figure.add_subplot(1, 1, 1)
    steps = np.arange(1, evaluation.horizon + 1)
    for name, scores in evaluation.scores.items():
        values = np.asarray(scores.per_step.get(metric, np.full(steps.shape, np.nan)))
        is_model = name == "model"
        axes.plot(
            steps,
            values,
            marker="o" if steps.shape[0] <= 48 else None,
            markersize=3,
            linewidth=2.2 if is_model else 1.2,
            linestyle="-" if is_model else "--",
            color=_MODEL_COLOR if is_model else _BASELINE_COLORS.get(name),
            label=name.replace("_", " "),
        )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("step ahead")
    axes.set_ylabel(f"{title} (mean over series)")
    axes.set_title(f"{title} by forecast step", fontsize=10, loc="left")
    axes.grid(alpha=0.25, linewidth=0.5)
    axes.legend(fontsize=8, frameon=False)
    return _png(canvas)


def loss_figure(history: dict[str, Any]) -> bytes | None:
    """PNG of training and validation loss per epoch, the best epoch marked.

    ``history`` is a model's training history (``{"epochs": [{"epoch",
    "train_loss", "val_loss", ...}], "best_epoch": ...}``); None when it has no epochs.
    """
    from matplotlib.ticker import MaxNLocator

    epochs = history.get("epochs") or []
    if not epochs:
        return None
    numbers = np.array([row.get("epoch", i + 1) for i, row in enumerate(epochs)], dtype=float)
    train = _floats([row.get("train_loss") for row in epochs])
    validation = _floats([row.get("val_loss") for row in epochs])
    figure, canvas = _figure(8.0, 3.4)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(numbers, train, color=_MODEL_COLOR, linewidth=1.6, label="training")
    if np.isfinite(validation).any():
        axes.plot(numbers, validation, color="#c0392b", linewidth=1.6, label="validation")
    best = history.get("best_epoch")
    if best:
        axes.axvline(best, color="#555555", linestyle=":", linewidth=1.2, label=f"best ({best})")
    finite = np.concatenate([train[np.isfinite(train)], validation[np.isfinite(validation)]])
    # Losses often fall by orders of magnitude in the first epochs, hiding the rest.
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
        axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title("Training loss", fontsize=10, loc="left")
    axes.grid(alpha=0.25, linewidth=0.5)
    axes.legend(fontsize=8, frameon=False)
    return _png(canvas)


def coverage_figure(evaluation: Evaluation) -> bytes | None:
    """PNG of each central interval's nominal vs empirical coverage, overall and by step,
    and, for calibrated intervals, their coverage before calibration (dashed).

    Coverage is read from the model's ``coverage_<p>`` scores (a fraction, p the
    nominal percent); None when the model has no intervals.
    """
    from matplotlib.ticker import MaxNLocator

    scores = evaluation.scores["model"]
    levels = interval_levels(scores.summary)
    if not levels:
        return None
    figure, canvas = _figure(10.0, 3.6)
    bars, by_step = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    places = np.arange(len(levels))
    nominal = [float(level) / 100 for level in levels]
    empirical = _floats([scores.summary[f"coverage_{level}"].get("mean") for level in levels])
    before = evaluation.uncalibrated
    width, shift = (0.34, 0.18) if before is None else (0.24, 0.24)
    bars.bar(places - shift, nominal, width=width, color="#c9c9c9", label="nominal")
    if before is not None:
        uncalibrated = _floats([before.summary[f"coverage_{level}"].get("mean")
                                for level in levels])  # fmt: skip
        bars.bar(places, uncalibrated, width=width, color="#9ab6d3", label="before calibration")
    bars.bar(places + shift, empirical, width=width, color=_MODEL_COLOR, label="empirical")
    bars.set_xticks(places, [f"{level}%" for level in levels])
    bars.set_xlim(-0.7, len(levels) - 0.3)
    bars.set_ylim(0, 1.15)
    bars.set_ylabel("share of actuals inside")
    bars.set_title("Interval coverage", fontsize=10, loc="left")
    bars.legend(fontsize=8, frameon=False, loc="upper left", ncol=2)
    steps = np.arange(1, evaluation.horizon + 1)
    for index, level in enumerate(levels):
        color = f"C{index}"
        values = np.asarray(scores.per_step.get(f"coverage_{level}", np.full(steps.shape, np.nan)))
        by_step.plot(steps, values, color=color, linewidth=1.5, label=f"{level}%")
        by_step.axhline(float(level) / 100, color=color, linestyle=":", linewidth=1)
        if before is not None and f"coverage_{level}" in before.per_step:
            uncalibrated_by_step = np.asarray(before.per_step[f"coverage_{level}"])
            by_step.plot(steps, uncalibrated_by_step, color=color, linewidth=1, linestyle="--",
                         label=f"{level}% before calibration")  # fmt: skip
    by_step.set_ylim(0, 1.15)
    by_step.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_step.set_xlabel("step ahead")
    title = "Coverage by step (dotted: nominal" + (", dashed: before calibration)"
                                                   if before is not None else ")")  # fmt: skip
    by_step.set_title(title, fontsize=10, loc="left")
    by_step.legend(fontsize=8, frameon=False, loc="upper right", ncol=len(levels))
    for axes in (bars, by_step):
        axes.grid(alpha=0.25, linewidth=0.5, axis="y")
    return _png(canvas)


def interval_levels(summary: dict[str, Any]) -> list[str]:
    """Nominal percents of the central intervals scored, e.g. ["50", "80"], narrowest first."""
    levels = [key.removeprefix("coverage_") for key in summary if key.startswith("coverage_")]
    return sorted(levels, key=float)


def _draw_series(axes, evaluation: Evaluation, position: int, bands) -> None:
    freq, tz, horizon = evaluation.freq, evaluation.tz, evaluation.horizon
    cuts = evaluation.cuts[position]
    recent = min(max(2 * evaluation.season, 3 * horizon), _MAX_RECENT)
    history = evaluation.history
    try:
        index = history.index(str(evaluation.ids[position]))
    except KeyError:
        index = None
    times = evaluation.times[position]  # (K, H)
    # Folds may overlap (a step shorter than H): each actual is drawn once.
    stamps, first = np.unique(times.reshape(-1), return_index=True)
    observed = evaluation.actual[position].reshape(-1)[first]
    if index is not None:
        values = np.asarray(history.series(index), dtype=np.float64)
        end = min(int(cuts.min()), values.shape[0])
        steps = np.arange(max(end - recent, 0), end, dtype=np.int64)
        before = shift_times(np.full(steps.shape, history.start_times[index]), steps, freq)
        # One line from the history into the evaluated span, without a gap at the origin.
        stamps = np.concatenate([before, stamps])
        observed = np.concatenate([values[steps], observed])
    # Folds further apart than H leave steps unscored: break the line there, not bridge it.
    following = shift_times(stamps[:-1], np.ones(stamps.shape[0] - 1, np.int64), freq)
    gaps = np.flatnonzero(following != stamps[1:]) + 1
    stamps, observed = np.insert(stamps, gaps, stamps[gaps]), np.insert(observed, gaps, np.nan)
    axes.plot(
        _dates(stamps, tz, freq), observed, color=_ACTUAL_COLOR, linewidth=0.9, label="actual"
    )
    snaive = evaluation.baselines.get("seasonal_naive")
    for fold in range(times.shape[0]):
        dates = _dates(times[fold], tz, freq)
        for band, (name, low, high) in enumerate(bands):
            # Narrower intervals come later and are drawn darker over the wider ones.
            axes.fill_between(
                dates,
                evaluation.values[position, fold, :, low],
                evaluation.values[position, fold, :, high],
                color=_MODEL_COLOR,
                alpha=0.15 + 0.15 * band / max(len(bands) - 1, 1),
                linewidth=0,
                label=f"{name}% interval" if fold == 0 else None,
            )
        axes.plot(
            dates,
            evaluation.point[position, fold],
            color=_MODEL_COLOR,
            linewidth=1.4,
            label="model" if fold == 0 else None,
        )
        if snaive is not None:
            axes.plot(
                dates,
                snaive[position, fold],
                color=_BASELINE_COLORS["seasonal_naive"],
                linestyle="--",
                linewidth=1.0,
                label="seasonal naive" if fold == 0 else None,
            )


def _central_pairs(quantiles: tuple[float, ...]) -> list[tuple[str, int, int]]:
    """(nominal percent, low index, high index) of each central interval, widest first."""
    return [
        (name, quantiles.index(low), quantiles.index(high))
        for name, low, high in central_intervals(quantiles)
    ]


def _dates(times: np.ndarray, tz: str | None, freq) -> np.ndarray:
    """int64 ns times as naive datetime64 in the data's own wall clock, for the x axis."""
    index = to_datetimes(np.asarray(times, dtype=np.int64), tz, freq)
    if index.tz is not None:
        index = index.tz_localize(None)
    return index.to_numpy()


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if value is None else float(value) for value in values], dtype=float)


def _short(value: float) -> str:
    return f"{value:.3g}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    return figure, FigureCanvasAgg(figure)


def _png(canvas) -> bytes:
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The date locator warns when few ticks fit a long span and then picks a
        # coarser step itself; the figure is right, and a user's log needs no warning.
        warnings.filterwarnings("ignore", "AutoDateLocator was unable", UserWarning)
        # A series id with a character the font lacks is drawn with a box in its place;
        # the report is still right, and the warning would land in a cron log.
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        # No Software entry: the default one carries matplotlib's URL into the file.
        canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()
