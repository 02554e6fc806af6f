"""The evaluation report: metrics.json, report.md and report.html, and the summary table.

metrics.json holds the metrics document (rnncast.report_document); the Markdown and
HTML reports render it and the figures of ``rnncast.plots``. Both embed their figures
as base64 data URLs and refer to nothing outside themselves, so either file can be
mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from rnncast.assessment import Evaluation
from rnncast.metrics import quantile_name
from rnncast.plots import (
    choose_series,
    coverage_figure,
    forecast_figure,
    horizon_figure,
    interval_levels,
    loss_figure,
)
from rnncast.report_document import SKILL_METRICS, document_text, metrics_document, summary_mean
from rnncast.writing import replace_files

REPORT_FILES = ("metrics.json", "report.md", "report.html")
SUMMARY_HEADER = ("method", "MAE", "RMSE", "sMAPE", "MASE", "coverage")

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


def summary_rows(document: dict) -> list[tuple[str, ...]]:
    """Rows for a terminal table under ``SUMMARY_HEADER``: one per method, plain strings.

    Means over series with 3 significant digits, "–" where undefined; the model's
    row ends with the coverage of its widest interval (e.g. "78.5% of 80%").
    """
    rows = []
    for method in document["methods"]:
        summary = document["summary"][method]
        levels = interval_levels(summary) if method == "model" else []
        coverage = _percent(summary_mean(summary, f"coverage_{levels[-1]}")) if levels else ""
        if levels and coverage != "–":
            coverage += f" of {levels[-1]}%"
        means = (
            _number(summary_mean(summary, metric)) for metric in ("mae", "rmse", "smape", "mase")
        )
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
            *(_number(summary_mean(summary[name], key)) for key, _ in _TABLE_METRICS),
            _number(summary_mean(summary[name], "mase")),
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
            (name.replace("_", " "), *(_skill_text(skill[name][key]) for key in SKILL_METRICS))
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
    pinballs = [(name, _number(summary_mean(summary, key))) for name, key in keys if key in summary]
    if not levels and not pinballs:
        return []
    blocks: list[tuple] = [("heading", "Intervals and quantiles")]
    if levels:
        rows = [
            (
                f"{level}%",
                _percent(summary_mean(summary, f"coverage_{level}")),
                _number(summary_mean(summary, f"width_{level}")),
                _number(summary_mean(summary, f"msis_{level}")),
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
