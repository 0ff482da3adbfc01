"""Exactly-once loading after a crash in the middle of dlt's load step.

dlt (1.31) commits a load job's rows in the destination, and only afterwards records on
local disk that the job finished. A crash between the two (tens of milliseconds per job,
and a package has dozens of jobs) makes dlt run the job again when the package is
resumed: merge tables with nested tables get every row of that job twice (their staging
copy is not cleared on resume). The copies are exact: same
`_dlt_id`, same `_dlt_load_id`.

So before a pending package is resumed, the packages that may hold such a job are noted
durably (with their tables), and after the resumed load commits, rows sharing a `_dlt_id`
in those tables are collapsed to one. A crash during the cleanup simply repeats it on the
next run; the note is removed only after the cleanup has committed.

Both steps run from the source itself (`run_safety.py`), so a plain `pipeline.run` gets
them: the note when the source is built (before `run` resumes the package), the cleanup
when the next extraction starts. `sync.run_until_drained` cleans up at once after
resuming.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Set

from dlt.pipeline.pipeline import Pipeline

logger = logging.getLogger(__name__)

NOTE_FILE = "zendesk_in_doubt_loads.json"


def _note_path(pipeline: Pipeline) -> str:
    return os.path.join(pipeline.working_dir, NOTE_FILE)


def in_doubt_packages(pipeline: Pipeline) -> Dict[str, List[str]]:
    """Normalized packages with jobs started but not finished, and those jobs' tables: only
    a job that may already have committed can write its rows twice."""
    found: Dict[str, List[str]] = {}
    for load_id in pipeline.list_normalized_load_packages():
        started = pipeline.get_load_package_info(load_id).jobs.get("started_jobs", [])
        if started:
            found[load_id] = sorted({job.job_file_info.table_name for job in started})
    return found


def _write_note(path: str, note: Dict[str, List[str]]) -> None:
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(note, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def note_in_doubt(pipeline: Pipeline) -> Dict[str, List[str]]:
    """Durably remember in-doubt packages BEFORE dlt re-runs their jobs."""
    path = _note_path(pipeline)
    note: Dict[str, List[str]] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            note = json.load(handle)
    fresh = {k: v for k, v in in_doubt_packages(pipeline).items() if k not in note}
    if fresh:
        note.update(fresh)
        _write_note(path, note)
    return note


def collapse_replayed_rows(pipeline: Pipeline, note: Dict[str, List[str]]) -> Dict[str, int]:
    """Keep one row per `_dlt_id` in the noted tables; return the groups collapsed per table."""
    tables: Set[str] = {table for names in note.values() for table in names}
    schema = pipeline.default_schema
    collapsed: Dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in sorted(tables):
            columns = list(schema.tables.get(table, {}).get("columns", {}))
            if "_dlt_id" not in columns or not client.has_dataset():
                continue
            name = client.make_qualified_table_name(table)
            keep = client.make_qualified_table_name(f"{table}__zd_replay")
            cols = ", ".join(client.escape_column_name(c) for c in columns)
            try:
                duplicated = client.execute_sql(
                    f"SELECT _dlt_id FROM {name} GROUP BY _dlt_id HAVING COUNT(*) > 1"
                )
            except Exception:  # the table was never created: nothing to collapse
                continue
            if not duplicated:
                continue
            with client.begin_transaction():
                client.execute_sql(f"DROP TABLE IF EXISTS {keep}")
                client.execute_sql(
                    f"CREATE TABLE {keep} AS SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER"
                    f" (PARTITION BY _dlt_id ORDER BY _dlt_id) AS zd_rn FROM {name} WHERE _dlt_id IN"
                    f" (SELECT _dlt_id FROM {name} GROUP BY _dlt_id HAVING COUNT(*) > 1)) AS d"
                    " WHERE zd_rn = 1"
                )
                client.execute_sql(f"DELETE FROM {name} WHERE _dlt_id IN (SELECT _dlt_id FROM {keep})")
                client.execute_sql(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {keep}")
                client.execute_sql(f"DROP TABLE {keep}")
            collapsed[table] = len(duplicated)
    if collapsed:
        logger.warning("Removed rows a crashed load had written twice: %s", collapsed)
    return collapsed


def forget(pipeline: Pipeline, load_ids: Optional[Set[str]] = None) -> None:
    """Drop the note (or only `load_ids` from it) once their cleanup has committed."""
    path = _note_path(pipeline)
    if not os.path.exists(path):
        return
    if load_ids is None:
        os.remove(path)
        return
    with open(path, encoding="utf-8") as handle:
        note = {k: v for k, v in json.load(handle).items() if k not in load_ids}
    if note:
        _write_note(path, note)
    else:
        os.remove(path)


def collapse_resumed(pipeline: Pipeline) -> Dict[str, int]:
    """Clean up after noted packages that have been loaded since (by any run, ours or a
    plain `pipeline.run` that resumed them before extracting) and forget them."""
    path = _note_path(pipeline)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        note: Dict[str, List[str]] = json.load(handle)
    pending = set(pipeline.list_normalized_load_packages())
    done = {load_id: tables for load_id, tables in note.items() if load_id not in pending}
    if not done:
        return {}
    collapsed = collapse_replayed_rows(pipeline, done)
    forget(pipeline, set(done))
    return collapsed
