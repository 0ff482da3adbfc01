"""recovery.py: packages left in doubt by a crash are found, and replayed rows collapsed."""

from __future__ import annotations

import os
from typing import Any, Iterator, List

import dlt
import pytest

from zendesk import recovery


@dlt.resource(name="events", primary_key="id", write_disposition="append")
def events() -> Iterator[List[dict]]:
    yield [{"id": i, "tags": ["a", "b"]} for i in range(5)]


@pytest.fixture
def pipeline(tmp_path: Any) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="recovery",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "r.duckdb")),
        dataset_name="data",
    )


def _count(pipeline: dlt.Pipeline, table: str) -> tuple:
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        return tuple(client.execute_sql(f"select count(*), count(distinct _dlt_id) from {name}")[0])


def test_a_started_job_without_a_finish_record_marks_its_package_in_doubt(pipeline: dlt.Pipeline) -> None:
    pipeline.extract(events())
    pipeline.normalize()
    assert recovery.in_doubt_packages(pipeline) == {}
    storage = pipeline._get_load_storage()
    load_id = storage.list_normalized_packages()[0]
    packages = storage.normalized_packages
    job = next(f for f in packages.list_new_jobs(load_id) if os.path.basename(f).startswith("events."))
    packages.start_job(load_id, os.path.basename(job))  # as the loader does, then "crash"
    assert recovery.in_doubt_packages(pipeline) == {load_id: ["events"]}


def test_replayed_rows_are_collapsed_in_noted_tables_only(pipeline: dlt.Pipeline) -> None:
    pipeline.run(events())
    with pipeline.sql_client() as client:
        for table in ("events", "events__tags"):
            name = client.make_qualified_table_name(table)
            client.execute_sql(f"insert into {name} select * from {name}")  # a re-run job
    assert _count(pipeline, "events") == (10, 5)
    collapsed = recovery.collapse_replayed_rows(pipeline, {"123.4": ["events"]})
    assert collapsed == {"events": 5}
    assert _count(pipeline, "events") == (5, 5)
    assert _count(pipeline, "events__tags") == (20, 10)  # not noted: left alone


def test_note_survives_until_forgotten(pipeline: dlt.Pipeline) -> None:
    pipeline.extract(events())
    pipeline.normalize()
    storage = pipeline._get_load_storage()
    load_id = storage.list_normalized_packages()[0]
    job = os.path.basename(storage.normalized_packages.list_new_jobs(load_id)[0])
    storage.normalized_packages.start_job(load_id, job)
    note = recovery.note_in_doubt(pipeline)
    assert load_id in note
    assert os.path.exists(os.path.join(pipeline.working_dir, recovery.NOTE_FILE))
    recovery.forget(pipeline)
    assert not os.path.exists(os.path.join(pipeline.working_dir, recovery.NOTE_FILE))
