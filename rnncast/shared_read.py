"""Under torchrun, the data of a training is read in shares: each process reads some
of the files and keeps their series, its share of the Panel (panel_shares.py).

Reading costs many times the Panel it leaves: a 2,048-series Parquet file of 1,000
hours each makes a Panel of 8 MB, and its read takes about 190 MB more at its peak.
When every process read all the data, every one paid that, for the whole data, and
the data's folder (often on a network file system) was read as many times. Where
every file holds whole series (a dataset partitioned by series), each process now
reads about 1 / N of the files, grouped as the forecast's reads group them
(reads.plan_reads), and pays about 1 / N of the reading's time and memory. Every
choice made from the data later (sizes, scalers, the blend) is made from facts of
every share (panel_shares.py), as one process makes it from the whole.

Otherwise rank 0 reads the whole data and deals it out (``panel_shares.deal``): the
others pay nothing for reading, and rank 0 keeps its own share only. That is the way
for what cannot be split by files (CSV, data without an id column, one Parquet file,
files that share series: a read by id decodes every file whole to keep some series'
rows, so each process would pay what the whole read costs), and the way out where
the shares cannot stand for the whole:

- a share that fails to read (bad data, or a check that only the whole data may
  answer, e.g. "no series is long enough"): the whole read then fails or not, with
  the message one process gives;
- a process without a series of its own (fewer files than processes);
- shares whose reads differ in what they infer for all series (the frequency, when
  one share's series all skip steps the others take), so that the Panel is always
  the one a single process reads.

A forecast's one read is dealt out the same way (``read_dealt``, parts.py). The
arrays travel through torch's own collectives (panel_shares.py); the rest (ids,
series bounds, statics, the ingest report) is small and goes as objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnncast import distributed
from rnncast.errors import RnncastError

if TYPE_CHECKING:
    from rnncast.config import DataConfig
    from rnncast.panel import Panel
    from rnncast.reads import Read


def read_for_training(location: str | Path, config: DataConfig) -> Panel:
    """The Panel of ``location``, as ``read_panel`` reads it; under torchrun this
    process's consecutive share of it (panel_shares.py), read in shares among the
    processes or by rank 0 alone and dealt out (see the module's docstring). A
    collective: every process calls it."""
    from rnncast.panel import hand_back_read_memory, read_panel
    from rnncast.panel_shares import concatenated

    current = distributed.world()
    if not current.is_distributed:
        return read_panel(location, config)
    plan = _plan(location, config, current)
    if plan is None:
        return _read_whole_dealt(location, config)
    source, reads = plan
    share = _read_share(source, _dealt(reads, current), config)
    signatures = distributed.gather_to_all(None if share is None else share.signatures())
    found = [signature for each in signatures if each is not None for signature in each]
    # A process without a series of its own gets a share of one whole read instead.
    if None in signatures or not all(signatures) or any(s != found[0] for s in found):
        return _read_whole_dealt(location, config)
    assert share is not None
    panel = concatenated(share.panels, _joined_ingest(share, source.label))
    hand_back_read_memory()
    return panel


def read_dealt(read: Callable[[], Panel], *, empty_shares: bool = False) -> Panel | None:
    """``read()`` on rank 0 alone, dealt out (panel_shares.deal): this process's
    consecutive share; ``read()`` itself in one process. A collective."""
    from rnncast.panel_shares import deal

    if not distributed.world().is_distributed:
        return read()
    return deal(_read_by_main(read), empty_shares=empty_shares)


def _read_whole_dealt(location: str | Path, config: DataConfig) -> Panel:
    from rnncast.panel import read_panel

    panel = read_dealt(lambda: read_panel(location, config))
    assert panel is not None  # deal refuses fewer series than processes
    return panel


def _read_by_main(read: Callable[[], Panel]) -> Panel | None:
    """``read()`` on rank 0 alone: its Panel there, None on the others; every process
    stops together when it fails. A collective."""
    panel, failure = None, None
    if distributed.world().is_main:
        try:
            panel = read()
        except RnncastError as exc:
            failure = exc
    distributed.raise_together(failure)
    return panel


def _plan(
    location: str | Path, config: DataConfig, current: distributed.World
) -> tuple[Any, list[Read]] | None:
    """Rank 0's plan of the shares, on every process: the source and its reads of
    whole files of whole series, in the whole read's order; None where the data is
    one read, its series share files, or the plan could not read it."""
    from rnncast.reads import plan_reads
    from rnncast.sources import resolve_source

    plan = None
    if current.is_main:
        # Data the plan cannot read goes to the whole read, which says what is wrong
        # with it as a single process does.
        with contextlib.suppress(RnncastError):
            source = resolve_source(location)
            reads = plan_reads(source, config, 0, shares=current.size)
            # A read by id decodes every file whole and keeps its series' rows: each
            # process would pay what rank 0 alone pays for the whole read.
            plan = (source, reads) if len(reads) > 1 and not any(r.by_id for r in reads) else None
    return distributed.from_main(plan)


def _dealt(reads: list[Read], current: distributed.World) -> list[Read]:
    """This process's reads: consecutive ones, about 1 / N of the series; each read
    goes to the process whose 1 / N of the series holds its middle."""
    import numpy as np

    counts = np.array([len(read.ids) for read in reads])
    middles = 2 * (np.cumsum(counts) - counts) + counts  # twice the middle series
    total = 2 * max(int(counts.sum()), 1)
    owners = np.minimum(middles * current.size // total, current.size - 1)
    return [read for read, owner in zip(reads, owners, strict=True) if owner == current.rank]


class _Share:
    """The Panels of this process's reads, each in its read's order of series, and
    the series that had no value at all."""

    def __init__(self, panels: list[Panel], skipped: list[tuple[str, str]]) -> None:
        self.panels = panels
        self.skipped = skipped

    def signatures(self) -> list[tuple[Any, ...]]:
        """What each read inferred or found for all its series, which every read of
        the whole data must share."""
        return [
            (panel.freq, panel.tz, panel.covariate_names, panel.future_covariates,
             panel.target_name, None if panel.statics is None else panel.statics.names,
             panel.ingest.layout, panel.ingest.columns,
             None if panel.ahead is None else panel.ahead.shape[1:])
            for panel in self.panels
        ]  # fmt: skip


def _read_share(source: Any, reads: list[Read], config: DataConfig) -> _Share | None:
    """This process's reads as Panels; None when one of them failed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from rnncast.panel import build_panel
    from rnncast.reads import has_values, read_part

    panels, skipped = [], []
    try:
        for read in reads:
            table = read_part(source, read, config)
            if not has_values(table):
                skipped += [(str(name), "no values") for name in read.ids.to_pylist()]
                continue
            panel = build_panel(table)
            place = pc.index_in(pa.array(panel.ids.astype(str)), value_set=read.ids).to_numpy()
            panels.append(panel.take(np.argsort(place, kind="stable")))
    except RnncastError:
        return None
    return _Share(panels, skipped)


def _joined_ingest(share: _Share, label: str) -> Any:
    """One report of every process's reads, as the whole read would report, on every
    process. A collective."""
    outlines = distributed.gather_to_all(
        {"ingest": [p.ingest for p in share.panels], "skipped": share.skipped}
    )
    return _ingest(outlines, label)


def _ingest(outlines: list[dict[str, Any]], label: str | None) -> Any:
    """One report of every read's, as the whole read would report."""
    from rnncast.assembly import IngestReport

    reports = [report for outline in outlines for report in outline["ingest"]]
    empty = [entry for outline in outlines for entry in outline["skipped"]]

    def total(name: str) -> int:
        return sum(getattr(report, name) for report in reports)

    return IngestReport(
        source=label or reports[0].source, layout=reports[0].layout, columns=reports[0].columns,
        rows_read=total("rows_read"), was_sorted=all(r.was_sorted for r in reports),
        duplicates_combined=total("duplicates_combined"),
        missing_timestamps=total("missing_timestamps"), missing_values=total("missing_values"),
        trimmed_rows=total("trimmed_rows"), future_rows=total("future_rows"),
        skipped=tuple(empty) + tuple(s for report in reports for s in report.skipped),
        warnings=tuple(f"series {name!r} skipped: {why}" for name, why in empty)
        + tuple(w for report in reports for w in report.warnings),
    )  # fmt: skip
