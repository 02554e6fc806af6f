"""The layout is the architecture: stages import only earlier stages (STYLE.md §1, §5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rnncast"

# Each stage may import the stages before it, plus config and errors.
STAGES = [
    "errors",
    "config",
    "frequency",
    # A panel's times to and from the wall clock of the data's zone; times shown to people.
    "timezones",
    # Calendar arithmetic on int64 ns times (grids, shifts, inferred steps), calendar features.
    "time_axis",
    # Public holidays per country (the holidays package, imported lazily) as step features.
    "holiday_features",
    # Reading: text timestamps, which column plays which part, which files a source
    # names and whether they agree; then io reads them.
    "timeparse",
    "columns",
    "sources",
    # On a read's error path: the row and value of a column that cannot be read.
    "bad_values",
    "io",
    "grid",
    # Steps filled where a series has no value: warnings for mostly-filled series.
    "gaps",
    # Future rows (known-ahead covariates after each series' last value) and static
    # covariates (one value per series), read and checked.
    "ahead",
    "statics",
    # From a settled table to a Panel's arrays: the steps above, in order, and the
    # report of what they found (for rnncast check).
    "assembly",
    # Outputs written whole or not at all, and one writer per output (locks).
    "writing",
    "panel",
    # One run over many processes under torchrun: who this process is, what they
    # agree on (sums, maxima, rank 0's values, failures).
    "distributed",
    # A training's Panel dealt out among those processes, a consecutive share each, and
    # what choices need of the whole, agreed from every share.
    "panel_shares",
    "scaling",
    # What training chooses from the data before it builds a network (sizes, the long
    # season, validation's hold-out, loss weights); pure numpy over the Panel.
    "data_choices",
    # The inputs a model reads beside target and covariates: static covariates encoded
    # as training fitted them, holiday features of every step.
    "inputs",
    # M4's seasonality test and decomposition, vectorised; the simple forecasts every
    # report compares with (Naive2 among them); then the base forecasts (naive,
    # seasonal naive, drift, SES, Theta) that the network's forecasts are blended with.
    # Pure numpy.
    "seasons",
    "baselines",
    "bases",
    "batches",
    "nn",
    # Untrusted JSON read as data: within limits, then checked against types.
    "json_checks",
    # The format version and the files that record a run (manifest, series, history).
    "model_records",
    # config.json, the settings a model is rebuilt from, checked as untrusted data.
    "model_schema",
    # Which files a model directory holds, and reading them: digests, regular files only.
    "model_files",
    # The encoder's states at the end of the training series, kept with the model, and
    # whether a forecast's history begins with what they read.
    "warm",
    # The model directory's format: it rebuilds networks (nn) and scalers; train
    # writes checkpoints and forecast loads models through it.
    "artifact",
    # Named for the activity so that rnncast.train and rnncast.forecast, the public
    # functions, are never shadowed by submodules of the same name once imported.
    # The optimizer and the learning-rate schedules; the steps the processes of a run
    # under torchrun take together (DDP, and what they agree on before each step).
    "optimization",
    "lockstep",
    # The weights kept from epoch to epoch (best, last, averaged) and their checkpoint form.
    "snapshots",
    # A training batch shared out among the CPU cores, a thread a share.
    "batch_shares",
    # The loss a network is trained and validated on, scoring a batch's forecasts.
    "loss_function",
    # A run's training batches (TBPTT chunks or windows), each with its loss.
    "losses",
    # A run's validation pass: the loss summed over every validation origin.
    "validation_losses",
    # One run epoch by epoch (the steps, early stopping, the schedule, averaged weights).
    "loop",
    # A run's state as its checkpoint holds it (tensor names, state keys), and back.
    "loop_state",
    "training",
    # What data a model reads, and whether new data fits it.
    "model_data",
    "forecasting",
    # Members trained side by side, one a CPU core, where each trains on one thread.
    "lanes",
    # The members of an ensemble, trained in turn or side by side within one budget.
    "ensembles",
    # What validation chooses: the members kept, the base, the blend, the calibration
    # (rank 0 alone under torchrun).
    "selection",
    # The whole fit: the network (training), the choices of selection, then the refit.
    "fitting",
    # Rows of forecasts to a file in batches (replaced whole) or to stdout.
    "sinks",
    # A dataset's reads, each of whole series in the whole read's order, and one read's table.
    "reads",
    # The frequency of data read in several reads, checked as the whole data would show it.
    "read_frequency",
    # Forecasts over datasets too large to hold at once: reads, forecasts and writes
    # a batch of series at a time.
    "streaming",
    # Under torchrun, the data of a training read in shares, or by rank 0 alone and
    # dealt out; a forecast's one read, read by rank 0 alone and held by every process.
    "shared_read",
    # Forecasts shared among the processes of a run under torchrun: parts, then one output.
    "parts",
    # Pure numpy over arrays: error measures.
    "metrics",
    # Forecasts scored against what followed and against the baselines: an Evaluation;
    # under torchrun, each process's share measured where it lies.
    "assessment",
    # Named for the activity, like training and forecasting: rnncast.evaluate is a function.
    "evaluation",
    "plots",
    # metrics.json's content: an Evaluation as plain JSON values, its keys an interface.
    "report_document",
    "report",
    "scorebook",
    # Log lines on stderr, text or JSON; rendering and the command line log through it.
    "logs",
    "terminal",
    # Where a command's settings come from: flags, the --config file, defaults.
    "settings",
    # The options several commands share, declared once.
    "options",
    # The options only rnncast train takes.
    "train_options",
    # Command lines Click refuses, reported like every other error.
    "usage",
    # Every command's errors mapped to one line and an exit code, in one place.
    "command_errors",
    # What a command run holds around its work (its output's lock, signals), and the
    # reports the commands leave.
    "runs",
    "command_reports",
    # The work of each command around its library call, named for the activity: cli.py
    # parses the options and hands them to these.
    "describing_run",
    "training_run",
    "forecasting_run",
    "evaluation_run",
    "scoring_run",
    # How the command's process ends: at once, after its exit handlers (os._exit).
    "process_exit",
    "cli",
]
ALWAYS_ALLOWED = {"errors", "config"}
TORCH_ALLOWED = {
    "nn",
    "warm",
    "distributed",
    "panel_shares",
    "optimization",
    "lockstep",
    "batches",
    "snapshots",
    "batch_shares",
    "loss_function",
    "losses",
    "validation_losses",
    "loop",
    "loop_state",
    "training",
    # What data a model reads, and whether new data fits it.
    "model_data",
    "forecasting",
    "artifact",
    "lanes",
}


def module_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name not in {"__init__.py", "__main__.py"})


def stage_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", module_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stages_import_only_earlier_stages(path: Path) -> None:
    stage = stage_of(path)
    assert stage in STAGES, f"{stage} is not in the stage list; add it where it belongs"
    earlier = set(STAGES[: STAGES.index(stage)]) | ALWAYS_ALLOWED | {stage}
    for name in imported_modules(path):
        if name.startswith("rnncast.") or name == "rnncast":
            target = name.split(".")[1] if "." in name else "rnncast"
            if target == "rnncast":
                continue  # the package root only carries __version__
            assert target in earlier, f"{stage} imports later stage {target}"


@pytest.mark.parametrize("path", module_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_torch_only_where_allowed(path: Path) -> None:
    uses_torch = any(name.split(".")[0] == "torch" for name in imported_modules(path))
    assert not uses_torch or stage_of(path) in TORCH_ALLOWED


@pytest.mark.parametrize("statement", ["import rnncast", "import rnncast.cli"])
def test_startup_does_not_load_heavy_libraries(statement: str) -> None:
    """Cron jobs pay for start-up on every run; data libraries load only when used."""
    heavy = ("pandas", "pyarrow", "torch", "matplotlib")
    code = f"{statement}; import sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_public_api_is_reachable_from_the_package() -> None:
    import rnncast

    assert callable(rnncast.read_panel)
    assert rnncast.DataConfig().layout == "long"
    with pytest.raises(AttributeError):
        rnncast.no_such_name  # noqa: B018
