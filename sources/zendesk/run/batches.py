"""Running the source to completion in committed batches, for long first syncs.

A plain `pipeline.run(zendesk_support())` reads every export to its end, but dlt saves
resource state only when a whole extract succeeds, so a crash hours into a first sync
would cost all of it. Here each `pipeline.run` extracts at most `batch_pages` export
pages, all exports together (see `resources._export_pages`), loads them and commits the
cursors; the loop repeats until every export reports that it is drained. A crash costs
at most the batch in flight, and the next run resumes from the last committed cursor.
Our command-line script and the Airflow task use this; its result is the same data as
the plain call's.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource
from dlt.pipeline.pipeline import Pipeline

from . import progress
from ..tables.registry import state_holder
from .defaults import apply_run_defaults

logger = logging.getLogger(__name__)


@dataclass
class SyncResult:
    """What a whole sync did: batches run, rows per table over all batches, and the last
    batch's LoadInfo (not all of them: a LoadInfo holds its package's schema and jobs, and
    a large account runs hundreds of batches in one process)."""

    batches: int = 0
    row_counts: Counter = field(default_factory=Counter)
    last_load_info: Optional[LoadInfo] = None

    def add(self, pipeline: Pipeline, info: LoadInfo) -> None:
        self.last_load_info = info
        trace = pipeline.last_trace
        if trace is not None and trace.last_normalize_info is not None:
            for table, rows in trace.last_normalize_info.row_counts.items():
                if not table.startswith("_dlt"):
                    self.row_counts[table] += rows


def pending_readers(
    pipeline: Pipeline, source_name: str, tables: Sequence[str], audits_mode: str = "events"
) -> List[str]:
    """Export readers of `tables` whose last batch stopped before the end of the export."""
    resources: Dict[str, Any] = (
        pipeline.state.get("sources", {}).get(source_name, {}).get("resources", {})
    )
    holders = {holder for table in tables if (holder := state_holder(table, audits_mode))}
    return sorted(h for h in holders if resources.get(h, {}).get("drained") is False)


def finish_pending_loads(pipeline: Pipeline) -> Optional[LoadInfo]:
    """Load the packages a crashed run extracted but never loaded, before extracting anew
    (a partly loaded one was aborted when the source was built: see `recovery.py`)."""
    if not pipeline.has_pending_data:
        return None
    logger.info("Loading the data a previous, interrupted run had already extracted")
    return pipeline.run()


def run_until_drained(
    pipeline: Pipeline,
    make_source: Callable[[Sequence[str]], DltSource],
    tables: Sequence[str],
    max_batches: int = 10_000,
    audits_mode: str = "events",
    tuned: bool = False,
    **run_kwargs: Any,
) -> SyncResult:
    """Run batches until every selected export is drained: the one way a whole sync runs
    (our script, the many-accounts driver, the benchmark and the tests call it).

    `pipeline` must be created with its destination (`dlt.pipeline(destination=...)`), so
    packages a crashed run left are loaded, or aborted, where they belong; a `destination`
    given here instead is refused. `make_source(tables)` must return the source with
    exactly those tables selected; give it a `batch_pages` bound, or the first batch
    drains everything in one run. The first batch runs all `tables`; later batches only
    the exports that have more to fetch. Building the first source takes the run lock
    before any pending package is touched. `tuned` applies `RUN_DEFAULTS` (environment
    variables: for a process that runs syncs only, such as our script).
    """
    if "destination" in run_kwargs:
        raise ValueError(
            "run_until_drained: create the pipeline with its destination (dlt.pipeline(destination=...));"
            " a destination given per run would load packages a crashed run left into the wrong one."
        )
    if tuned:
        apply_run_defaults()
    result = SyncResult()
    pipeline.activate()
    batch_tables = list(tables)
    source = make_source(batch_tables)
    finished = finish_pending_loads(pipeline)
    if finished is not None:
        result.add(pipeline, finished)
    for batch in range(1, max_batches + 1):
        if batch > 1:
            source = make_source(batch_tables)
        result.add(pipeline, pipeline.run(source, **run_kwargs))
        result.batches = batch
        # Later batches only continue the exports: full-refresh options apply once.
        run_kwargs.pop("refresh", None)
        waiting = pending_readers(pipeline, source.name, batch_tables, audits_mode)
        if not waiting:
            logger.info("All exports drained after %d batch(es)", batch)
            return result
        batch_tables = [t for t in batch_tables if state_holder(t, audits_mode) in waiting]
        logger.info(
            "Batch %d loaded; exports with more to fetch: %s", batch, "; ".join(map(progress.tables_of, waiting))
        )
    raise RuntimeError(f"Exports still not drained after {max_batches} batches")
