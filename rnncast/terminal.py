"""What people see on a terminal: rich tables for check, inspect and metrics, and
training progress (a bar on a terminal, one plain line per epoch in a log).

Everything goes to stderr except the tables of commands whose output is the
table itself (check, inspect, score). rich is imported inside the functions, so
``rnncast --help`` does not pay for it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rnncast import logs
from rnncast.logs import escape, stderr_console


def render_check(description: dict[str, Any], panel: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    ingest = description["ingest"]
    columns = ingest["columns"]
    length = description["length"]
    if ingest["layout"] == "wide":
        roles = f"time {columns['time']}, {len(columns['target'])} series columns"
    else:
        roles = f"id {columns['id']}, time {columns['time']}, target {columns['target'][0]}"
    zone = f" ({description['time_zone']})" if description["time_zone"] else ""
    cycles = dict.fromkeys(n.rsplit("_", 1)[0] for n in description["calendar_features"])
    facts = Table(title=f"rnncast check: {ingest['source']}", title_justify="left", box=None)
    facts.show_header = False
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("layout", f"{ingest['layout']}: {roles}"),
        ("rows read", f"{ingest['rows_read']:,}"),
        ("series", f"{description['series']:,} ({len(ingest['skipped'])} skipped)"),
        ("length", f"min {length['min']:,}, median {length['median']:,.0f}, max {length['max']:,}"),
        (
            "frequency",
            f"{description['frequency']} ({description['frequency_label']}), "
            f"season length {description['season_length']}",
        ),
        ("time range", f"{description['start']} to {description['end']}{zone}"),
        ("rows sorted", "already" if ingest["was_sorted"] else "by series and time"),
        ("duplicates combined", f"{ingest['duplicates_combined']:,}"),
        ("missing timestamps filled", f"{ingest['missing_timestamps']:,}"),
        ("missing values filled", f"{ingest['missing_values']:,}"),
        ("missing ends trimmed", f"{ingest['trimmed_rows']:,}"),
        ("covariates", ", ".join(description["covariates"]) or "none"),
        ("future covariates", ", ".join(description["future_covariates"]) or "none"),
        ("static covariates", ", ".join(description["static_covariates"]) or "none"),
        ("future rows", _future_rows(ingest, description)),
        ("other numeric columns", ", ".join(columns["spare_numeric"]) or "none"),
        ("calendar features", ", ".join(cycles) or "none"),
        ("holidays", _holidays(description.get("holidays"))),
    ):
        facts.add_row(name, escape(str(value)))
    shown = min(panel.n_series, 10)
    series = Table(title=f"first {shown} of {panel.n_series:,} series", title_justify="left")
    for heading in ("series", "steps", "first", "last"):
        series.add_column(heading, justify="right" if heading == "steps" else "left")
    ends = panel.end_times()
    for index in range(shown):
        series.add_row(
            escape(str(panel.ids[index])),
            f"{int(panel.lengths[index]):,}",
            panel.format_time(int(panel.start_times[index])),
            panel.format_time(int(ends[index])),
        )
    console = Console(highlight=False)
    console.print(facts)
    console.print(series)


def _holidays(found: dict[str, Any] | None) -> str:
    """The public holidays check found in the data's time range, per country."""
    if not found:
        return "none"
    counts = found["holidays_in_range"]
    return ", ".join(f"{code}: {count}" for code, count in counts.items()) + " in the time range"


def _future_rows(ingest: dict[str, Any], description: dict[str, Any]) -> str:
    """What check found after the series' last values: rows left out of training, or
    future rows of the future covariates for so many series and steps."""
    count = ingest.get("future_rows", 0)
    found = description.get("future_rows")
    if found is None or not description["future_covariates"]:
        return f"{count:,} rows after the last values" + (
            " (left out of training)" if count else ""
        )
    return f"{found['steps']} steps for {found['series']:,} of {description['series']:,} series"


def _known_ahead(data: dict[str, Any]) -> str:
    """The covariates a model reads beside the past ones: future, static, holidays."""
    inputs = data.get("inputs") or {}
    statics = inputs.get("static_covariates") or {"numbers": [], "categories": []}
    holidays = inputs.get("holidays")
    parts = [
        f"future covariates {', '.join(data.get('future_covariates') or []) or 'none'}",
        "static covariates "
        + (
            ", ".join(
                [n["name"] for n in statics["numbers"]]
                + [f"{c['name']} ({len(c['levels'])} levels)" for c in statics["categories"]]
            )
            or "none"
        ),
    ]
    if holidays:
        where = list(holidays["countries"]) + (
            [f"by column {holidays['column']}"] if holidays["column"] else []
        )
        parts.append(f"holidays {', '.join(where)}")
    return "; ".join(parts)


def render_inspect(directory: str, description: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    config, training, data = description["model"], description["training"], description["data"]
    history, network = description["history"], description["network"]
    epochs = history.get("epochs") or [{}]
    best = epochs[max(history.get("best_epoch", 1), 1) - 1] if history.get("best_epoch") else {}
    quantiles = ", ".join(f"{q:g}" for q in config["quantiles"])
    members, season = config.get("members") or 1, data.get("season_length")
    if config["loss"] != "quantile":
        quantiles = ""
    facts = Table(title=f"rnncast model: {directory}", title_justify="left", box=None)
    facts.show_header = False
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("network", f"{config['cell']}, {config['layers']} x {config['hidden']}, "
                    f"{network['parameters']:,} parameters"
                    + (f" in {members} members (forecasts: their median)" if members > 1 else "")
                    + (f"; {len(history['left_out'])} more trained and left out on validation"
                       if history.get("left_out") else "")
                    + (f", seasons {season} and {config['long_season']}"
                       if config.get("long_season") else "")),
        ("forecasts", f"{config['horizon']} steps, "
                      + (f"quantiles {quantiles}" if quantiles else f"point ({config['loss']})")
                      + ("; modelled on the logarithms" if config.get("transform") == "log"
                         else "")
                      + ("; one scale for every series" if config.get("scaler") == "shared"
                         else "")),
        ("data", f"{description['series']:,} series, {data['frequency']}, target "
                 f"{data['target']}, covariates {', '.join(data['covariates']) or 'none'}"),
        ("known ahead", _known_ahead(data)),
        ("training", f"{training['strategy']}, "
                     + (f"chunk {training['chunk_len']}" if training["strategy"] == "tbptt"
                        else f"lookback {training['lookback']}")
                     + (f", scoring one origin in {training['origin_stride']}"
                        if (training.get("origin_stride") or 1) > 1 else "")
                     + f", batch {training['batch_size']}, {training['optimizer']} lr "
                       f"{training['lr']:g}, seed {training['seed']}"),
        ("epochs", f"{len(history.get('epochs', []))} (stopped: {history.get('stopped')}), "
                   f"{history.get('seconds', 0):.1f} s on {history.get('device')}"
                   + (" (the first member; all: "
                      f"{sum(m.get('seconds', 0) for m in history['members']):.1f} s)"
                      if len(history.get("members") or []) > 1 else "")),
        ("best epoch", f"{history.get('best_epoch')}: train loss {best.get('train_loss', 0):.4f}"
                       + (f", validation loss {best['val_loss']:.4f}" if best.get("val_loss")
                          else "")),
        ("warm states", _warm_states(description.get("warm_states"))),
    ):  # fmt: skip
        facts.add_row(name, escape(str(value)))
    test = description.get("test")
    if test:
        model, naive = test["mean"]["model"], test["mean"].get("seasonal_naive", {})
        relative = test["relative_to_seasonal_naive"]
        owa = (test.get("relative_to_naive2") or {}).get("owa") or _owa(model, test["mean"])
        facts.add_row(
            "test",
            escape(
                f"last {test['test_size']} steps: MASE {_number(model['mase'])} (seasonal naive "
                f"{_number(naive.get('mase'))}), sMAPE {_number(model['smape'])} (seasonal "
                f"naive {_number(naive.get('smape'))}), OWA vs seasonal naive "
                f"{_number(relative.get('owa'))}"
                + (f", OWA vs Naive2 {_number(owa)}" if owa is not None else "")
            ),
        )
    Console(highlight=False).print(facts)


def _warm_states(warm: dict[str, Any] | None) -> str:
    if not warm:
        return "none: every forecast reads each series' whole history"
    return (f"{warm['series']:,} series: a forecast of their training history reads only "
            f"the steps after it ({warm['bytes'] / 1e6:.1f} MB)")  # fmt: skip


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _owa(model: dict[str, Any], means: dict[str, Any]) -> float | None:
    """M4's OWA from mean scores, for test summaries that do not carry it; None
    without Naive2's (a report written before it) or where a mean is missing or 0."""
    naive2 = means.get("naive2") or {}
    parts = [(model.get(key), naive2.get(key)) for key in ("smape", "mase")]
    if any(ours is None or not theirs for ours, theirs in parts):
        return None
    return sum(ours / theirs for ours, theirs in parts) / 2


@contextlib.contextmanager
def training_progress(quiet: bool):
    """A progress bar on a terminal; one log line ("epoch" event) per epoch otherwise
    (cron logs) and in JSON logs."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = stderr_console()
    if quiet or not console.is_terminal or logs.is_json():

        def log_line(report: Any) -> None:
            logs.note(
                "epoch", epoch_line(report), epoch=report.epoch, train_loss=report.train_loss,
                val_loss=report.val_loss, lr=report.lr, improved=report.improved,
                seconds=round(report.elapsed, 3),
            )  # fmt: skip

        yield log_line
        return
    columns = (TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None)

        def update(report: Any) -> None:
            total = report.max_epochs
            if report.max_time:
                # The run ends at whichever limit comes first; show the nearer one.
                left = (report.max_time - report.elapsed) / (report.elapsed / report.epoch)
                total = min(total, report.epoch + int(left) + 1)
            line = epoch_line(report, short=True)
            progress.update(task, completed=report.epoch, total=total, description=line)

        yield update


def epoch_line(report: Any, short: bool = False) -> str:
    validation = f", val {report.val_loss:.4f}" if report.val_loss is not None else ""
    mark = " *" if report.improved else ""
    text = f"train {report.train_loss:.4f}{validation}{mark}, lr {report.lr:.2g}"
    return text if short else f"epoch {report.epoch}: {text}, {report.elapsed:.1f} s"


def render_metrics(document: dict[str, Any], title: str, stdout: bool = False) -> None:
    """The metric table of a report: on stdout when it is the command's output
    (score), else on stderr, as a rich table on a terminal and a plain line in logs."""
    from rich.console import Console
    from rich.table import Table

    from rnncast.report import SUMMARY_HEADER, summary_rows

    console = Console(highlight=False) if stdout else stderr_console()
    rows = summary_rows(document)
    relative = document.get("relative_to_seasonal_naive") or {}
    to_naive2 = document.get("relative_to_naive2") or {}
    versus = "; ".join(
        f"relative to {baseline}: "
        + ", ".join(f"{name} {value:.3f}" for name, value in ratios.items() if value is not None)
        for baseline, ratios in (("seasonal naive", relative), ("Naive2", to_naive2))
        if any(value is not None for value in ratios.values())
    )
    if not stdout and (not console.is_terminal or logs.is_json()):
        named = {row[0]: dict(zip(SUMMARY_HEADER, row, strict=True)) for row in rows}
        model, naive = named["model"], named.get("seasonal naive", {})
        summary = document["summary"]
        logs.note(
            "scores",
            f"{document['kind']} over {document['counts']['points']:,} points: "
            f"MASE {model['MASE']} (seasonal naive {naive.get('MASE', '–')}), "
            f"sMAPE {model['sMAPE']} (seasonal naive {naive.get('sMAPE', '–')})"
            + (f", coverage {model['coverage']}" if model["coverage"] else "")
            + (f"; {versus}" if versus else ""),
            kind=document["kind"],
            points=document["counts"]["points"],
            series=document["counts"]["series"],
            mean={method: {metric: summary[method][metric]["mean"]
                           for metric in ("mae", "smape", "mase") if metric in summary[method]}
                  for method in summary},
            relative_to_seasonal_naive=relative,
            relative_to_naive2=to_naive2,
        )  # fmt: skip
        return
    table = Table(title=title, title_justify="left")
    for position, heading in enumerate(SUMMARY_HEADER):
        table.add_column(heading, justify="left" if position == 0 else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    counts = document["counts"]
    table.caption = escape(
        f"means over {counts['series']:,} series, {counts['points']:,} points"
        + (f"; {versus}" if versus else "")
    )
    table.caption_justify = "left"
    console.print(table)
