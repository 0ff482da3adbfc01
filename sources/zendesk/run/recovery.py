"""After a crash in the middle of a load: never replay a partly loaded package.

dlt (1.31) commits each load job in the destination on its own and records the outcome
on local disk afterwards. When a run dies while loading, the next `pipeline.run` resumes
the package and runs its unrecorded jobs again: a job that had committed writes its rows
a second time, which breaks dlt's unique `_dlt_id` index on Postgres (every later run
then fails on the same job) and leaves duplicate rows on DuckDB.

So a package any job of which started, completed or failed is not resumed. It is aborted
with dlt's own `Pipeline.abort_packages()`: the package is closed with an "aborted"
record (no load id committed, so the destination's state is not taken from it), newer
pending packages are deleted, and the local state and schemas rewind to where the
aborted package started. The run then extracts again from those cursors; every table
merges on its key (ticket_audits is insert-only on it, the small lists are replaced), so
re-loading rows that had partly committed leaves each key once. A package no job of
which started is left to dlt, which loads it as it is.

A package a job of which failed terminally (the destination refused its rows) is aborted
the same way: the failure may come from the rows as an older release of this source
wrote them. If the package read again fails too, it is not aborted again: the run logs
which package, why, and the command that clears it, and dlt retries it, so the run after
the cause is fixed loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any, Optional

from dlt.common.storages.load_package import PackageStorage, ParsedLoadJobFileName


logger = logging.getLogger(__name__)


def partially_loaded(pipeline: Any) -> Optional[str]:
    """The oldest pending normalized package (the one dlt loads next) when any of its
    jobs started, completed or failed, else None. A package already flagged for abort is
    dlt's to finish."""
    load_ids = pipeline.list_normalized_load_packages()
    if not load_ids:
        return None
    load_id = load_ids[0]
    if pipeline.get_load_package_state(load_id).get("abort_requested"):
        return None
    info = pipeline.get_load_package_info(load_id)
    jobs = info.jobs
    touched = jobs.get("started_jobs") or jobs.get("completed_jobs") or jobs.get("failed_jobs")
    if touched or PackageStorage.is_package_partially_loaded(info):
        return load_id
    return None


def abort_partially_loaded(pipeline: Any, force: bool = False) -> Optional[str]:
    """Abort the partly loaded package, if there is one, and rewind the local state to
    its start; return its load id.

    With no usable destination yet (it, or its credentials, are passed to `run()`), the
    abort is only requested with dlt's abort flag (what `abort_packages` itself sets; the
    flag is not public API, so `_get_load_storage` is used): the `run()` that follows
    finishes the abort when it loads and drops what it extracted meanwhile, and the run
    after it reads those changes again. One run's requests are spent; nothing is loaded
    twice."""
    load_id = partially_loaded(pipeline)
    if load_id is None and force:
        load_id = pipeline.list_normalized_load_packages()[0]
    if load_id is None:
        return None
    if pipeline.destination is None:
        pipeline._get_load_storage().normalized_packages.set_abort_flag(load_id)
    else:
        try:
            pipeline.abort_packages()
        except Exception:
            # `abort_packages` flags the package, then loads to finish the abort; a
            # destination not usable yet (credentials passed to `run()`) fails the load
            # and leaves the flag for `run()` to finish, as above
            if not pipeline.get_load_package_state(load_id).get("abort_requested"):
                raise
        else:
            logger.warning(
                "Pipeline '%s': load package %s was interrupted in the middle of its load; it was"
                " aborted and its changes are read again from Zendesk in this run, so no row is"
                " loaded twice",
                pipeline.pipeline_name,
                load_id,
            )
            return load_id
    logger.warning(
        "Pipeline '%s': load package %s was interrupted in the middle of its load; it is aborted"
        " when this run loads (its destination is not usable before), and its changes are read"
        " again from Zendesk by the next run, so no row is loaded twice",
        pipeline.pipeline_name,
        load_id,
    )
    return load_id


#: The message dlt gives a job that never committed when its package is aborted.
INTERRUPTED = "job interrupted by package abort"


def _terminal_failure(pipeline: Any, load_id: str) -> Optional[str]:
    """Why the pending package `load_id` failed terminally before (a job the destination
    refused), or None when no job of it did."""
    plan = pipeline.abort_packages(load_id, dry_run=True)
    package = plan and plan["package_to_abort"]
    if not package or not package["terminal_jobs"]:
        return None
    storage = pipeline._get_load_storage().normalized_packages
    for job_file in package["terminal_jobs"]:
        job = ParsedLoadJobFileName.parse(os.path.basename(job_file))
        with contextlib.suppress(FileNotFoundError):
            _, message = storage.get_last_job_exception(load_id, job)
            if message:
                return f"table {job.table_name}: {_last_error_line(message)}"
    return f"table {ParsedLoadJobFileName.parse(os.path.basename(package['terminal_jobs'][0])).table_name}"


def _last_error_line(message: str) -> str:
    """The line of a recorded job failure (a formatted traceback) that says what failed."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", line)]
    line = errors[-1] if errors else lines[-1]
    return line.split(": ", 1)[1] if ": " in line and "." in line.split(": ", 1)[0] else line


def _aborted_for_a_failure(pipeline: Any) -> bool:
    """Whether the newest finished package was aborted after a job of it failed terminally."""
    finished = sorted(pipeline.list_completed_load_packages())
    if not finished:
        return False
    info = pipeline.get_load_package_info(finished[-1])
    if info.state != "aborted":
        return False
    return any((job.failed_message or INTERRUPTED) != INTERRUPTED for job in info.jobs.get("failed_jobs", []))


def recover(pipeline: Any) -> Optional[str]:
    """Before `pipeline.run` touches its pending packages: abort a partly loaded package
    (see the module docstring) unless it failed the same way after the package before it
    was aborted, which one more abort cannot mend. Such a package is left for dlt to
    retry, after an error line that says which package, why, and how to clear it: the
    run after the cause is fixed loads it. Returns the aborted load id, if any."""
    load_ids = pipeline.list_normalized_load_packages()
    if not load_ids:
        return None
    reason = _terminal_failure(pipeline, load_ids[0])
    if reason is not None and _aborted_for_a_failure(pipeline):
        logger.error(
            "Pipeline '%s': load package %s cannot be loaded (%s); it failed again after the"
            " package before it was aborted. dlt retries it now: fix the cause in the"
            " destination, or drop the package with `dlt pipeline %s abort-packages` (the next"
            " run then reads its changes again from Zendesk).",
            pipeline.pipeline_name,
            load_ids[0],
            reason,
            pipeline.pipeline_name,
        )
        return None
    if reason is not None:
        logger.warning("Pipeline '%s': load package %s failed (%s)", pipeline.pipeline_name, load_ids[0], reason)
    return abort_partially_loaded(pipeline, force=reason is not None)
