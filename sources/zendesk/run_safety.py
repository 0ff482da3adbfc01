"""What every run of the source does for itself, with no wrapper around `pipeline.run`.

`dlt init` users and orchestrators (Airflow, Dagster) call `pipeline.run(zendesk_support())`
and nothing else, so the guarantees that used to live in our command-line script live here,
in the source:

- when the source is built for the active pipeline: refuse at once if another run of that
  pipeline is in progress, and note the packages a crashed load left in doubt, before
  `pipeline.run` resumes them (`recovery.py`);
- when its run starts extracting (first request): hold the pipeline's run lock until the
  run has finished, and clean up after in-doubt packages that have been loaded since;
- the load file format is chosen for the destination (`loader_file_format`), as a table
  hint that travels with the source.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import dlt
from dlt.common.destination import Destination
from dlt.common.pipeline import current_pipeline

from . import pipeline_lock, recovery

logger = logging.getLogger(__name__)

#: Loaded far faster than dlt's INSERT-statement files wherever the destination takes it
#: (DuckDB, BigQuery, Snowflake, filesystem): DuckDB parsing INSERT statements was most of a
#: plain run's CPU and memory. Destinations without it (Postgres) keep their own default.
FAST_FORMAT = "jsonl"


def loader_file_format(destination: Any) -> Optional[str]:
    """`jsonl` where `destination` loads it, None (its own default) where it does not;
    `jsonl` while the destination is not known yet (dlt falls back where unsupported)."""
    if destination is None:
        return FAST_FORMAT
    if isinstance(destination, str):
        destination = Destination.from_reference(destination)
    formats = destination.capabilities().supported_loader_file_formats or []
    return FAST_FORMAT if FAST_FORMAT in formats else None


def active_pipeline() -> Any:
    """The pipeline the source is being built for, if one is active (else None, without
    creating dlt's default pipeline)."""
    return current_pipeline()


def before_run(pipeline: Any) -> None:
    """Checks made when the source is built for `pipeline`, before `pipeline.run` acts."""
    pipeline_lock.raise_if_running(pipeline)
    noted = recovery.note_in_doubt(pipeline)
    if noted:
        logger.warning(
            "An earlier load of pipeline '%s' was interrupted; rows it may write twice when"
            " dlt resumes it are removed when the next extraction starts",
            pipeline.pipeline_name,
        )


def start_of_run() -> None:
    """Called once per run, before its first request, in the running pipeline's context."""
    pipeline = dlt.current.pipeline()
    pipeline_lock.hold_for_run(pipeline)
    recovery.collapse_resumed(pipeline)
