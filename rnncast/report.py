"""The evaluation report: metrics.json, report.md and report.html.

``metrics_document`` turns an Evaluation into plain JSON-ready values (the
machine-readable result, whose keys stay stable across versions); the Markdown
and HTML reports render that document and the figures of ``rnncast.plots``.
Both reports embed their figures as base64 data URLs and refer to nothing
outside themselves, so either file can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from rnncast import __version__
from rnncast.evaluation import BASELINES, Evaluation
from rnncast.frequency import shift_times
from rnncast.metrics import quantile_name
from rnncast.plots import (
    choose_series,
    coverage_figure,
    forecast_figure,
    horizon_figure,
    interval_levels,
    loss_figure,
)
from rnncast.writing import replace_files

FORMAT_VERSION = 1
REPORT_FILES = ("metrics.json", "report.md", "report.html")
SUMMARY_HEADER = ("method", "MAE", "RMSE", "sMAPE", "MASE", "coverage")

_SKILL_METRICS = ("mae", "rmse", "smape", "mase")
_TABLE_METRICS = (("mae", "MAE"), ("rmse", "RMSE"), ("mape", "MAPE"), ("smape", "sMAPE"))
_FIGURES = {
    "forecasts": "Forecasts of chosen series",
    "horizon": "Error by forecast step",
    "loss": "Training and validation loss",
    "coverage": "Interval coverage",
}
_RELATIVE = {  # document key: the baseline as the report names it, and a note
    "relative_to_seasonal_naive": ("seasonal naive", ""),
    "relative_to_naive2": (
        "Naive2",
        " Naive2 is M4's benchmark, the naive forecast of the seasonally adjusted series;"
        " OWA against it is M4's OWA.",
    ),
}
_NOTES = {  # counts key: (singular, plural, what it means)
    "missing": ("point has", "points have", "no actual yet (or no finite forecast): not scored."),
    "mape_skipped_zero": ("actual is", "actuals are", "zero: MAPE skips them."),
    "mase_undefined_series": (
        "series has",
        "series have",
        "a constant history: MASE is undefined for {them} and left out of its mean.",
    ),
    "naive2_nonpositive_origins": (
        "origin has",
        "origins have",
        "a seasonal history with values <= 0, which a multiplicative decomposition "
        "cannot adjust: Naive2 is the naive forecast there.",
    ),
}
_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 980px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f5f5f5; } .num { text-align: right; }
figure { margin: 1.2em 0; } figure img { width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; } .muted { color: #666; }
"""


def metrics_document(evaluation: Evaluation, model: dict[str, Any] | None = None) -> dict:
    """The content of metrics.json: Python types only, NaN as None, 6 significant digits.

    ``model`` is ``Model.describe()``'s dict, or None when forecasts were scored
    without a model. ``skill`` is 1 - model/baseline of the means over series
    (positive: the model is better); ``relative_to_seasonal_naive`` and
    ``relative_to_naive2`` hold the model's mean sMAPE and MASE over the baseline's
    and OWA, their average (M4's OWA is the one relative to Naive2); each is None
    where a mean is undefined or zero. ``counts`` adds the evaluation's
    ``baseline_counts`` to the model's. ``plotted_series`` names the series the
    report's forecast panels show.
    """
    scores = evaluation.scores
    methods = ["model", *(name for name in BASELINES if name in scores)]
    methods += [name for name in scores if name not in methods]
    skill = {
        name: {key: _ratio(scores, name, key) for key in _SKILL_METRICS} for name in methods[1:]
    }
    document = {
        "format_version": FORMAT_VERSION,
        "rnncast_version": __version__,
        "kind": evaluation.kind,
        "settings": dict(evaluation.settings),
        "data": _data_facts(evaluation),
        "model": _model_facts(model),
        "counts": {**scores["model"].counts, **evaluation.baseline_counts},
        "methods": methods,
        "summary": {name: scores[name].summary for name in methods},
        "skill": {
            name: {key: None if ratio is None else 1 - ratio for key, ratio in row.items()}
            for name, row in skill.items()
        },
        "relative_to_seasonal_naive": _relative(scores, "seasonal_naive"),
        "relative_to_naive2": _relative(scores, "naive2"),
        "by_step": {
            "step": list(range(1, evaluation.horizon + 1)),
            **{name: scores[name].per_step for name in methods},
        },
        "series": {
            "unique_id": [str(name) for name in evaluation.ids],
            **{name: scores[name].per_series for name in methods},
        },
        "plotted_series": [
            {"unique_id": str(evaluation.ids[position]), "label": label}
            for position, label in choose_series(evaluation)
        ],
        "calibration": _calibration(evaluation),
    }
    return _json_ready(document)


def _calibration(evaluation: Evaluation) -> dict[str, Any] | None:
    """Coverage and pinball loss of the model's intervals before and after their
    calibration, overall and by step; None when they were not calibrated."""
    before = evaluation.uncalibrated
    if before is None:
        return None
    after = evaluation.scores["model"]
    keys = [f"coverage_{level}" for level in interval_levels(after.summary)]
    keys += [key for key in ("scaled_pinball",) if key in after.summary]
    return {
        stage: {
            "summary": {key: scores.summary[key]["mean"] for key in keys},
            "by_step": {key: scores.per_step[key] for key in keys if key in scores.per_step},
        }
        for stage, scores in (("before", before), ("after", after))
    }


def write_report(
    directory: str | Path,
    evaluation: Evaluation,
    *,
    model: dict[str, Any] | None = None,
    title: str = "rnncast report",
) -> dict:
    """Write metrics.json, report.md and report.html into ``directory``; return the document.

    The directory is created if missing; the three files are written in full
    before any replaces its old version (writing.replace_files). OutputError
    when they cannot be written.
    """
    document, files = render_report(evaluation, model=model, title=title)
    replace_files(directory, files)
    return document


def render_report(
    evaluation: Evaluation, *, model: dict[str, Any] | None = None, title: str = "rnncast report"
) -> tuple[dict, dict[str, bytes]]:
    """The metrics document and the bytes of each of REPORT_FILES."""
    document = metrics_document(evaluation, model)
    chosen = choose_series(evaluation)
    positions, labels = [position for position, _ in chosen], [label for _, label in chosen]
    figures = {
        "forecasts": forecast_figure(evaluation, positions, labels) if chosen else None,
        "horizon": horizon_figure(evaluation),
        "loss": loss_figure((model or {}).get("history") or {}),
        "coverage": coverage_figure(evaluation),
    }
    images = {name: png for name, png in figures.items() if png is not None}
    contents = {
        "metrics.json": document_text(document),
        "report.md": markdown_report(evaluation, document, images, title),
        "report.html": html_report(evaluation, document, images, title),
    }
    return document, {name: contents[name].encode("utf-8") for name in REPORT_FILES}


def document_text(document: dict) -> str:
    """The metrics document as indented JSON with every list of numbers or ids on one
    line: one value per line made the file of 100 000 series 49 MB."""
    text = json.dumps(document, indent=2, allow_nan=False)
    # Inside JSON strings newlines are escaped, so ",\n" only ever separates elements;
    # a list holding brackets or braces in a string is left as it is, still valid JSON.
    flat = re.sub(
        r"\[\n\s+([^\[\]{}]*?)\n\s*\]",
        lambda match: "[" + ", ".join(part.strip() for part in match.group(1).split(",\n")) + "]",
        text,
    )
    return flat + "\n"


def summary_rows(document: dict) -> list[tuple[str, ...]]:
    """Rows for a terminal table under ``SUMMARY_HEADER``: one per method, plain strings.

    Means over series with 3 significant digits, "–" where undefined; the model's
    row ends with the coverage of its widest interval (e.g. "78.5% of 80%").
    """
    rows = []
    for method in document["methods"]:
        summary = document["summary"][method]
        levels = interval_levels(summary) if method == "model" else []
        coverage = _percent(_mean(summary, f"coverage_{levels[-1]}")) if levels else ""
        if levels and coverage != "–":
            coverage += f" of {levels[-1]}%"
        means = (_number(_mean(summary, metric)) for metric in ("mae", "rmse", "smape", "mase"))
        rows.append((method.replace("_", " "), *means, coverage))
    return rows


def markdown_report(
    evaluation: Evaluation, document: dict, images: dict[str, bytes], title: str
) -> str:
    """The report as self-contained Markdown: tables, notes, figures as data URLs."""
    lines = [f"# {_md(title)}", ""]
    for kind, *content in _blocks(evaluation, document, images):
        if kind == "heading":
            lines.append(f"## {_md(content[0])}")
        elif kind == "text":
            lines.append(_md(content[0]))
        elif kind == "list":
            lines += [f"- {_md(item)}" for item in content[0]]
        elif kind == "table":
            header, rows, numeric = content
            align = "---:" if numeric else "---"
            lines.append("| " + " | ".join(_md(cell) for cell in header) + " |")
            lines.append("|" + "|".join(["---"] + [align] * (len(header) - 1)) + "|")
            lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
        else:
            alt = _md(content[0]).replace("[", "(").replace("]", ")")
            lines.append(f"![{alt}]({_data_url(content[1])})")
        lines.append("")
    return "\n".join(lines)


def html_report(
    evaluation: Evaluation, document: dict, images: dict[str, bytes], title: str
) -> str:
    """The report as one HTML file: inline CSS, no script, nothing fetched from elsewhere."""
    escape = html.escape
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    for kind, *content in _blocks(evaluation, document, images):
        if kind == "heading":
            parts.append(f"<h2>{escape(content[0])}</h2>")
        elif kind == "text":
            parts.append(f'<p class="muted">{escape(content[0])}</p>')
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in content[0]) + "</ul>")
        elif kind == "table":
            header, rows, numeric = content
            # Key-value tables have no header worth a row.
            head = f"<thead>{_html_row(header, 'th', numeric)}</thead>" if any(header) else ""
            parts.append(f"<table>{head}<tbody>")
            parts += [_html_row(row, "td", numeric) for row in rows]
            parts.append("</tbody></table>")
        else:
            caption = escape(content[0])
            parts.append(
                f'<figure><img alt="{caption}" src="{_data_url(content[1])}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _blocks(evaluation: Evaluation, document: dict, images: dict[str, bytes]) -> list[tuple]:
    """The report's content, once, as ("heading" | "text" | "list" | "table" | "image", ...)
    blocks; the Markdown and HTML renderers differ only in markup and escaping."""
    data, model, methods = document["data"], document["model"], document["methods"]
    kind, version = document["kind"], document["rnncast_version"]
    blocks: list[tuple] = [("text", f"{kind} of {data['series']:,} series · rnncast {version}")]
    facts = {"Model": model or {}, "Data": data, "Evaluation settings": document["settings"]}
    for heading, values in facts.items():
        if values:
            rows = [(str(key).replace("_", " "), _text(value)) for key, value in values.items()]
            blocks += [("heading", heading), ("table", ("", ""), rows, False)]

    summary, skill = document["summary"], document["skill"]
    header = ("method", *(name for _, name in _TABLE_METRICS), "MASE", "median MASE")
    rows = [
        (
            name.replace("_", " "),
            *(_number(_mean(summary[name], key)) for key, _ in _TABLE_METRICS),
            _number(_mean(summary[name], "mase")),
            _number((summary[name].get("mase") or {}).get("median")),
        )
        for name in methods
    ]
    blocks += [
        ("heading", "Accuracy"),
        ("text", "Mean over series (lower is better); MASE also as the median over series."),
        ("table", header, rows, True),
    ]
    if len(methods) > 1:
        rows = [
            (name.replace("_", " "), *(_skill_text(skill[name][key]) for key in _SKILL_METRICS))
            for name in methods[1:]
        ]
        blocks += [
            ("text", "Skill of the model against each baseline: 1 − model mean / baseline mean."),
            ("table", ("baseline", "MAE", "RMSE", "sMAPE", "MASE"), rows, True),
        ]
        for key, (name, note) in _RELATIVE.items():
            relative = {k: _number(v) for k, v in (document.get(key) or {}).items()}
            if relative:
                blocks.append(
                    (
                        "text",
                        f"Relative to {name} (below 1 is better): sMAPE {relative['smape']}, "
                        f"MASE {relative['mase']}, OWA {relative['owa']}.{note}",
                    )
                )
    blocks += _interval_blocks(evaluation, summary["model"], document.get("calibration"))
    counts = document["counts"]
    notes = [
        f"{counts[key]:,} {many if counts[key] != 1 else one} "
        + tail.format(them="them" if counts[key] != 1 else "it")
        for key, (one, many, tail) in _NOTES.items()
        if counts.get(key)
    ]
    if notes:
        blocks += [("heading", "Notes"), ("list", notes)]
    if document["plotted_series"]:
        rows = [(item["unique_id"], item["label"]) for item in document["plotted_series"]]
        blocks += [("heading", "Series shown"), ("table", ("series", "why"), rows, False)]
    if images:
        blocks.append(("heading", "Figures"))
        blocks += [("image", _FIGURES.get(name, name), png) for name, png in images.items()]
    return blocks


def _interval_blocks(
    evaluation: Evaluation, summary: dict, calibration: dict | None = None
) -> list[tuple]:
    levels = interval_levels(summary)
    keys = [(f"{q:g}", f"pinball_{quantile_name(q)}") for q in evaluation.quantiles]
    keys += [("mean", "pinball"), ("scaled (mean)", "scaled_pinball")]
    pinballs = [(name, _number(_mean(summary, key))) for name, key in keys if key in summary]
    if not levels and not pinballs:
        return []
    blocks: list[tuple] = [("heading", "Intervals and quantiles")]
    if levels:
        rows = [
            (
                f"{level}%",
                _percent(_mean(summary, f"coverage_{level}")),
                _number(_mean(summary, f"width_{level}")),
                _number(_mean(summary, f"msis_{level}")),
            )
            for level in levels
        ]
        header: tuple[str, ...] = ("nominal", "empirical coverage", "mean width", "MSIS")
        if calibration is not None:
            before = calibration["before"]["summary"]
            header += ("coverage before calibration",)
            rows = [(*row, _percent(before.get(f"coverage_{level}")))
                    for row, level in zip(rows, levels, strict=True)]  # fmt: skip
        blocks.append(("table", header, rows, True))
    if pinballs:
        blocks.append(("table", ("quantile", "pinball loss"), pinballs, True))
    return blocks


def _data_facts(evaluation: Evaluation) -> dict[str, Any]:
    n_series, n_origins = evaluation.cuts.shape
    first_steps = evaluation.times[:, :, 0].reshape(-1).astype(np.int64)
    # An origin is the last step its forecast saw: one step before the first forecast step.
    origins = shift_times(first_steps, np.full(first_steps.shape, -1, np.int64), evaluation.freq)
    format_time = evaluation.history.format_time
    return {
        "series": n_series,
        "frequency": evaluation.freq.alias,
        "time_zone": evaluation.tz,
        "season_length": evaluation.season,
        "horizon": evaluation.horizon,
        "quantiles": list(evaluation.quantiles),
        "origins_per_series": n_origins,
        "first_origin": format_time(int(origins.min())) if origins.size else None,
        "last_origin": format_time(int(origins.max())) if origins.size else None,
    }


def _model_facts(model: dict[str, Any] | None) -> dict[str, Any] | None:
    if model is None:
        return None
    config, history = model.get("model") or {}, model.get("history") or {}
    return {
        **{key: config.get(key) for key in ("cell", "hidden", "layers", "horizon")},
        "quantiles": list(config.get("quantiles") or []),
        "loss": config.get("loss"),
        "strategy": (model.get("training") or {}).get("strategy"),
        "parameters": (model.get("network") or {}).get("parameters"),
        "epochs": len(history.get("epochs") or []),
        "best_epoch": history.get("best_epoch"),
        "stopped": history.get("stopped"),
        "train_seconds": _training_seconds(history),
        # Networks whose median the forecasts are (nn/ensemble.py); 1 for older models.
        "members": config.get("members") or 1,
        # The safety net (fitting.py): the base forecast validation chose and the
        # network's share of the blend at the first and the last step; null for a
        # network used alone.
        "base_forecast": (model.get("combination") or {}).get("base"),
        "network_share_first_step": _share(model, 0),
        "network_share_last_step": _share(model, -1),
        **_covariate_roles(model.get("data") or {}),
    }


def _covariate_roles(data: dict[str, Any]) -> dict[str, Any]:
    """The covariates the model reads, by role (issue 14)."""
    inputs = data.get("inputs") or {}
    statics = inputs.get("static_covariates") or {"numbers": [], "categories": []}
    holidays = inputs.get("holidays")
    return {
        "covariates": list(data.get("covariates") or []),
        "future_covariates": list(data.get("future_covariates") or []),
        "static_covariates": [n["name"] for n in statics["numbers"]]
        + [c["name"] for c in statics["categories"]],
        "holidays": (
            list(holidays["countries"])
            + ([f"column {holidays['column']}"] if holidays["column"] else [])
            if holidays
            else []
        ),
    }


def _training_seconds(history: dict[str, Any]) -> float | None:
    """Seconds of training of every member, the first member's alone for a model
    whose history lists none."""
    members = history.get("members") or []
    if members:
        return round(sum(float(member.get("seconds") or 0.0) for member in members), 3)
    return history.get("seconds")


def _share(model: dict[str, Any], step: int) -> float | None:
    weights = (model.get("combination") or {}).get("weights") or []
    return float(weights[step]) if weights else None


def _relative(scores: dict, baseline: str) -> dict[str, float | None]:
    """The model's mean sMAPE and MASE over the baseline's, and OWA, their average."""
    ratios = {key: _ratio(scores, baseline, key) for key in ("smape", "mase")}
    owa = None if None in ratios.values() else (ratios["smape"] + ratios["mase"]) / 2
    return {**ratios, "owa": owa}


def _ratio(scores: dict, baseline: str, metric: str) -> float | None:
    """The model's mean over the baseline's; None where either is undefined or it is 0."""
    if baseline not in scores:
        return None
    ours = _mean(scores["model"].summary, metric)
    theirs = _mean(scores[baseline].summary, metric)
    return None if ours is None or not theirs else ours / theirs


def _mean(summary: dict, metric: str) -> float | None:
    value = (summary.get(metric) or {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def _json_ready(value: Any) -> Any:
    """Plain JSON values: numpy and tuples converted, non-finite floats None, 6 digits."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":  # the bulk of the document: per series and per step
            return [float(f"{v:.6g}") if math.isfinite(v) else None for v in value.tolist()]
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return str(value)  # numpy str_ ids become plain str
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return str(value)  # paths and other settings are printed as they are


def _number(value: float | None) -> str:
    """3 significant digits, without exponents between 0.0001 and 10^15."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) < 1e-4 or abs(value) >= 1e15:
        return f"{value:.2e}"
    return f"{value:,.{max(2 - math.floor(math.log10(abs(value))), 0)}f}"


def _percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f}%"


def _skill_text(skill: float | None) -> str:
    return "–" if skill is None else f"{100 * skill:+.1f}%"


def _text(value: Any) -> str:
    """A fact for a key-value table: numbers formatted, lists joined, None as "–"."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value) or "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _html_row(cells: tuple[str, ...], tag: str, numeric: bool) -> str:
    """One table row, every cell escaped; cells after the first right-aligned if numeric."""
    rest_class = ' class="num"' if numeric else ""
    rest = "".join(f"<{tag}{rest_class}>{html.escape(cell)}</{tag}>" for cell in cells[1:])
    return f"<tr><{tag}>{html.escape(cells[0])}</{tag}>{rest}</tr>"


def _md(text: str) -> str:
    """User text made inert in Markdown: HTML escaped, table pipes and newlines removed."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
