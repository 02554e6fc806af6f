"""The reports the commands leave: train's test part, scored on the model that never
saw it and saved with the model; the report folder of evaluate and score; the test
scores inspect shows from beside a model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rnncast import logs
from rnncast.errors import RnncastError


class Holdout:
    """The test part of ``rnncast train``: scored on the model that never saw it (before
    any refit), then saved with the final model and its settings in one step."""

    def __init__(self, panel: Any, season: int | None, device: str, data: str, out: str,
                 writes: bool = True):  # fmt: skip
        self.panel, self.season, self.device, self.data, self.out = panel, season, device, data, out
        # Under torchrun every process forecasts its share of the test part; rank 0
        # alone scores it and writes the model and report.
        self.writes = writes
        self.document: dict | None = None
        self.report: dict[str, bytes] = {}

    def score(self, trained: Any) -> None:
        if not trained.training.test_size:
            return
        from rnncast.evaluation import holdout
        from rnncast.nn.device import resolve_device
        from rnncast.report import render_report

        evaluation = holdout(trained, self.panel, season=self.season,
                             device=resolve_device(self.device))  # fmt: skip
        if evaluation is None or not self.writes:
            return
        saved = ("refit on every step, the test part included, after this test"
                 if trained.training.refit else "the model scored here")  # fmt: skip
        settings = {"source": self.data, "model": self.out, "saved_model": saved}
        evaluation = replace(evaluation, settings={**evaluation.settings, **settings})
        title = f"rnncast holdout: {self.out}"
        self.document, self.report = render_report(
            evaluation, model=trained.describe(), title=title
        )

    def save(self, trained: Any, settings: str) -> dict | None:
        """Write the model with its settings and report; the metrics document, or None
        without a test part."""
        from rnncast.artifact import save_model
        from rnncast.model_files import SETTINGS_FILE

        if not self.writes:
            return None
        save_model(trained, self.out, extra_files={SETTINGS_FILE: settings.encode(), **self.report})
        return self.document


def holdout_scores(directory: str) -> dict[str, Any] | None:
    """The holdout scores train left beside the model, if any: a report, not part of
    the model, so a missing or unreadable one is no error."""
    import stat
    from pathlib import Path

    from rnncast.json_checks import parse_json

    path = Path(directory) / "metrics.json"
    try:
        # Never open a FIFO or a device: inspect would wait on it, or read forever.
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        return holdout_summary(parse_json(path.read_bytes(), path))
    except (OSError, ValueError, KeyError, TypeError, RnncastError):
        return None


def holdout_summary(document: dict[str, Any]) -> dict[str, Any]:
    """The mean scores of a holdout metrics document, per method."""
    summary = document["summary"]
    return {
        "test_size": document["settings"].get("test_size"),
        "mean": {method: {metric: summary[method][metric]["mean"] for metric in
                          ("mae", "rmse", "smape", "mase")} for method in summary},
        "relative_to_seasonal_naive": document["relative_to_seasonal_naive"],
        # Absent from the metrics.json of models trained before Naive2 (issue 12).
        "relative_to_naive2": document.get("relative_to_naive2"),
    }  # fmt: skip


def write_command_report(
    out: str, evaluation: Any, trained: Any, quiet: bool, **settings: str
) -> dict:
    """Write the report files into ``out``, show the summary table; the document."""
    from rnncast.report import write_report
    from rnncast.terminal import render_metrics

    evaluation = replace(evaluation, settings={**evaluation.settings, **settings})
    title = f"rnncast {evaluation.kind}: {settings.get('model', out)}"
    document = write_report(out, evaluation, model=trained.describe(), title=title)
    if not quiet:
        render_metrics(document, title=title)
    logs.note("report_written", f"metrics and report written to {out}", out=out)
    return document
