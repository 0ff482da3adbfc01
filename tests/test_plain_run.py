"""The source is the product: every guarantee through a plain `pipeline.run(zendesk_support())`,
the call `dlt init` users and orchestrators make, with no helper of ours around it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace
from typing import Any, Iterator, Optional

import dlt
import pytest

from tests.helpers import DESTINATIONS, POSTGRES_URL, destination_for, lock_held_elsewhere, query, source_args
from tests.helpers.truth import assert_matches_truth
from zendesk import select_tables, zendesk_support
from zendesk.run import run_until_drained
from zendesk.run.lock import lock_path
from zendesk.tables.registry import TABLES

REPO_ROOT = __file__.rsplit("/tests/", 1)[0]
EXPORT_PREFIX = "/api/v2/incremental/"

@pytest.fixture
def big_fake(fake: Any) -> Iterator[Any]:
    """An account whose exports span several pages each (1000 rows a page)."""
    server = type(fake)(seed=9, tickets=1500)
    server.start()
    try:
        yield server
    finally:
        server.stop()



def plain_pipeline(tmp_path: Any, kind: str, name: str = "zd_plain", dataset: Optional[str] = None) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=destination_for(kind, tmp_path, name),
        dataset_name=dataset or f"zendesk_{uuid.uuid4().hex[:8]}",
    )


def drop_dataset(pipeline: dlt.Pipeline) -> None:
    if pipeline.destination.destination_type.endswith("postgres"):
        with pipeline.sql_client() as client:
            client.drop_dataset()


def export_pages(fake: Any) -> int:
    return sum(n for path, n in fake.request_counts().items() if path.startswith(EXPORT_PREFIX))


def assert_no_key_twice(pipeline: dlt.Pipeline) -> None:
    loaded = select_tables(None)
    for spec in TABLES:
        table, pk = spec.name, spec.primary_key
        if table not in loaded:
            continue
        duplicated = query(pipeline, f"select {pk} from {{t:{table}}} group by {pk} having count(*) > 1")
        assert duplicated == [], f"{table}: {pk}s loaded twice: {duplicated[:5]}"


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_one_plain_run_drains_every_export_and_equals_the_truth(big_fake: Any, tmp_path: Any, kind: str) -> None:
    pipeline = plain_pipeline(tmp_path, kind)
    try:
        pipeline.run(zendesk_support(**source_args(big_fake)))
        truth = big_fake.ground_truth()
        # Several pages per export, all read in the one run.
        expected_minimum = sum(
            -(-len(truth[table]) // 1000) for table in ("tickets", "ticket_metric_events", "users", "organizations")
        )
        assert export_pages(big_fake) > expected_minimum
        assert_matches_truth(pipeline, truth)
        resources = pipeline.state["sources"]["zendesk"]["resources"]
        drained = {name: state["drained"] for name, state in resources.items() if "drained" in state}
        assert drained and all(drained.values()), drained

        big_fake.mutate(seed=61, fraction=0.05)
        pipeline.run(zendesk_support(**source_args(big_fake)))
        assert_matches_truth(pipeline, big_fake.ground_truth())
    finally:
        drop_dataset(pipeline)


def test_a_bounded_plain_run_says_it_is_partial_and_the_next_run_continues(
    big_fake: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = plain_pipeline(tmp_path, "duckdb")
    args = source_args(big_fake, batch_pages=2)
    with caplog.at_level(logging.WARNING, logger="zendesk"):
        pipeline.run(zendesk_support(**args).with_resources("ticket_metric_events"))
    assert export_pages(big_fake) == 2
    assert any("not complete yet" in r.getMessage() and "batch_pages" in r.getMessage() for r in caplog.records)
    truth = big_fake.ground_truth()
    pending = len(truth["ticket_metric_events"]) - query(pipeline, "select count(*) from {t:ticket_metric_events}")[0][0]
    assert pending > 0

    pipeline.run(zendesk_support(**source_args(big_fake)).with_resources("ticket_metric_events"))
    assert_matches_truth(pipeline, truth, tables=["ticket_metric_events"])


def test_a_source_built_once_gives_each_run_its_own_page_budget(big_fake: Any, tmp_path: Any) -> None:
    # Orchestrators build the source when they parse a DAG and run it later, maybe twice.
    source = zendesk_support(**source_args(big_fake, batch_pages=2)).with_resources("ticket_metric_events")
    pipeline = plain_pipeline(tmp_path, "duckdb")
    pipeline.run(source)
    first = export_pages(big_fake)
    pipeline.run(source)
    assert (first, export_pages(big_fake) - first) == (2, 2)


def test_a_cloned_source_keeps_its_state_under_its_own_name(big_fake: Any, tmp_path: Any) -> None:
    pipeline = plain_pipeline(tmp_path, "duckdb")
    tables = select_tables(["ticket_metric_events", "users"])
    result = run_until_drained(
        pipeline,
        lambda batch: zendesk_support(**source_args(big_fake, batch_pages=2))
        .clone(with_name="zendesk_eu")
        .with_resources(*batch),
        tables,
    )
    assert result.batches > 1
    assert "zendesk_eu" in pipeline.state["sources"]
    assert_matches_truth(pipeline, big_fake.ground_truth(), tables=tables)


def test_an_external_scheduler_interval_cannot_cut_the_change_streams(
    fake: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow's data interval (or these variables) must not window an export: the export
    # cursor would move past rows outside the window and later runs would miss them.
    monkeypatch.setenv("DLT_ALLOW_EXTERNAL_SCHEDULERS", "true")
    monkeypatch.setenv("DLT_INTERVAL_START", "2001-01-01T00:00:00Z")
    monkeypatch.setenv("DLT_INTERVAL_END", "2001-01-02T00:00:00Z")
    pipeline = plain_pipeline(tmp_path, "duckdb")
    pipeline.run(zendesk_support(**source_args(fake)))
    assert_matches_truth(pipeline, fake.ground_truth())


def test_an_audit_read_again_by_another_pipeline_is_never_appended_twice(fake: Any, tmp_path: Any) -> None:
    # Two pipelines (two machines, or a lost working folder) loading one dataset both read
    # every ticket event: ticket_audits is insert-only on its id, so each audit lands once.
    first = plain_pipeline(tmp_path, "duckdb", name="zd_a", dataset="shared")
    first.run(zendesk_support(**source_args(fake)))
    second = dlt.pipeline(
        pipeline_name="zd_b",
        pipelines_dir=str(tmp_path / "pipelines_b"),
        destination=dlt.destinations.duckdb(str(tmp_path / "zd_a.duckdb")),
        dataset_name="shared",
    )
    second.run(zendesk_support(**source_args(fake)))
    assert_no_key_twice(second)
    assert_matches_truth(second, fake.ground_truth())



def _child(fake: Any, tmp_path: Any, destination: str, dataset: str, slow: bool) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "tests.plain_run_child",
        "--pipelines-dir", str(tmp_path / "pipelines"),
        "--destination", destination,
        "--dataset", dataset,
        "--base-url", fake.base_url,
        "--subdomain", fake.subdomain,
        "--token", fake.oauth_token,
    ]
    if slow:
        # Two export requests per "minute" of one second: the run lasts a few seconds.
        command += ["--export-rpm", "2", "--window", "1"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lock(path: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not lock_held_elsewhere(path):
        assert process.poll() is None, f"the first run ended before taking the lock: {process.communicate()}"
        assert time.monotonic() < deadline, "the first run never took the pipeline lock"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_a_second_run_started_during_the_first_is_refused_at_once(fake: Any, tmp_path: Any, kind: str) -> None:
    dataset = f"zendesk_{uuid.uuid4().hex[:8]}"
    destination = POSTGRES_URL if kind == "postgres" else str(tmp_path / "overlap.duckdb")
    path = lock_path(SimpleNamespace(pipelines_dir=str(tmp_path / "pipelines"), pipeline_name="zd_overlap"))
    first = _child(fake, tmp_path, destination, dataset, slow=True)
    _wait_for_lock(path, first)
    second = _child(fake, tmp_path, destination, dataset, slow=False)
    _, second_err = second.communicate(timeout=120)
    assert second.returncode == 3, second_err
    assert "Another run of pipeline 'zd_overlap' is in progress" in second_err
    assert first.poll() is None, "the refusal must come while the first run is still going"
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err[-2000:]

    pipeline = dlt.pipeline(
        pipeline_name="zd_overlap",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.postgres(POSTGRES_URL) if kind == "postgres" else dlt.destinations.duckdb(destination),
        dataset_name=dataset,
    )
    try:
        assert_no_key_twice(pipeline)
        assert_matches_truth(pipeline, fake.ground_truth())
        fake.mutate(seed=71, fraction=0.05)
        pipeline.run(zendesk_support(**source_args(fake)))
        assert_no_key_twice(pipeline)
        assert_matches_truth(pipeline, fake.ground_truth())
    finally:
        drop_dataset(pipeline)


def test_a_killed_run_leaves_no_stale_lock_and_the_next_run_is_exact(fake: Any, tmp_path: Any) -> None:
    destination = str(tmp_path / "killed.duckdb")
    path = lock_path(SimpleNamespace(pipelines_dir=str(tmp_path / "pipelines"), pipeline_name="zd_overlap"))
    first = _child(fake, tmp_path, destination, "zendesk_data", slow=True)
    _wait_for_lock(path, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert not lock_held_elsewhere(path)

    pipeline = dlt.pipeline(
        pipeline_name="zd_overlap",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(destination),
        dataset_name="zendesk_data",
    )
    pipeline.run(zendesk_support(**source_args(fake)))
    assert_no_key_twice(pipeline)
    assert_matches_truth(pipeline, fake.ground_truth())


def test_two_runs_of_one_pipeline_in_one_process_are_not_blocked_by_the_first(fake: Any, tmp_path: Any) -> None:
    # The lock is released when a run finishes, not when the process ends: an application
    # (an Airflow worker) runs the same pipeline again and again in one process.
    pipeline = plain_pipeline(tmp_path, "duckdb")
    for _ in range(3):
        pipeline.run(zendesk_support(**source_args(fake)))
    assert_matches_truth(pipeline, fake.ground_truth())


def test_a_subset_chosen_with_tables_brings_the_siblings_that_share_its_export(fake: Any, tmp_path: Any) -> None:
    # with_resources("tickets") would move the shared ticket export cursor past changes that
    # ticket_metrics then never gets; the source's own table choice adds the sibling.
    pipeline = plain_pipeline(tmp_path, "duckdb")
    pipeline.run(zendesk_support(**source_args(fake), tables=["tickets"]))
    loaded = set(pipeline.default_schema.data_table_names())
    assert {"tickets", "ticket_metrics"} <= loaded
    assert not loaded & {"users", "ticket_audits", "groups"}
    assert_matches_truth(pipeline, fake.ground_truth(), tables=["tickets", "ticket_metrics"])
