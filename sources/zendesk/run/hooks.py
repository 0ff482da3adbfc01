"""What every run of the source does for itself, with no wrapper around `pipeline.run`.

`dlt init` users and orchestrators (Airflow, Dagster) call `pipeline.run(zendesk_support())`
and nothing else, so the run's guarantees live in the source:

- when the source is built for the active pipeline (`before_run`): if the pipeline has
  pending packages, take its run lock now (`pipeline.run` loads them before it extracts)
  and abort a package a crash left partly loaded (`recovery.py`); otherwise refuse at once
  if another process runs the pipeline;
- when its run starts extracting (`start_of_run`, first request): hold the run lock
  until the run has finished;
- the load file format is chosen per table for the destination (`apply_file_formats`), as
  a table hint that travels with the source.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Optional

import dlt
from dlt.common.destination import Destination
from dlt.common.pipeline import current_pipeline

from ..version import __version__
from . import lock, recovery

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


def carries_whole_list(write_disposition: Any) -> bool:
    """Whether every load of a table carries its whole list (replace, scd2): such a load
    is an empty file when the list is empty, and DuckDB reads an empty jsonl file as one
    column named "json" and refuses it. These tables are small lists, so they keep the
    destination's default format, which loads an empty file as no rows."""
    if isinstance(write_disposition, dict):
        return write_disposition.get("disposition") == "replace" or write_disposition.get("strategy") == "scd2"
    return write_disposition == "replace"


def apply_file_formats(resources: Iterable[Any], table_names: Iterable[str], destination: Any) -> None:
    """Set the fast load format on the tables that take it (see `carries_whole_list`)."""
    file_format = loader_file_format(destination)
    if not file_format:
        return
    tables = set(table_names)
    for resource in resources:
        if resource.name in tables and not carries_whole_list(resource.write_disposition):
            resource.apply_hints(file_format=file_format)


def active_pipeline() -> Any:
    """The pipeline the source is being built for, if one is active (else None, without
    creating dlt's default pipeline)."""
    return current_pipeline()


def before_run(pipeline: Any) -> None:
    """Made when the source is built for `pipeline`, before `pipeline.run` acts on any
    pending package."""
    if not pipeline.has_pending_data and not pipeline.list_normalized_load_packages():
        lock.raise_if_running(pipeline)
        return
    lock.hold_for_run(pipeline)
    if recovery.recover(pipeline):
        # the abort ran a load of its own: the lock now covers the run that follows
        lock.hold_for_run(pipeline)


def start_of_run() -> None:
    """Called once per run, before its first request, in the running pipeline's context:
    takes the run lock and stamps the release that writes the state."""
    lock.hold_for_run(dlt.current.pipeline())
    dlt.current.source_state()["package_version"] = __version__
