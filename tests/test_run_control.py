"""Never wedged, never twice (issue 17): after a kill at any point, two runs at once, or an
account whose lists empty, the next plain `pipeline.run(zendesk_support())` completes and
every table holds each key once. End to end over HTTP, into DuckDB and Postgres."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import dlt
import pytest

from tests.helpers import DESTINATIONS, POSTGRES_URL, lock_held_elsewhere, query, source_args
from tests.helpers.cli import SCRIPT, cli_env
from tests.helpers.kill import NOT_KILLED, REFUSED, Target, keys_twice
from tests.helpers.truth import assert_matches_truth
from zendesk import TABLE_NAMES, select_tables, zendesk_support
from zendesk import resources
from zendesk.run import hooks
from zendesk.run.lock import POLL_SECONDS, held_here, hold_for_run, lock_path
from zendesk.tables.registry import TABLES, ChangeDetection

#: Tables whose every run reads the whole list: a row gone from Zendesk goes from them.
WHOLE_LIST_TABLES = [
    spec.name for spec in TABLES if spec.change_detection in (ChangeDetection.FINGERPRINT, ChangeDetection.REPLACE)
]


def kill_run(target: Target, fake: Any, kill_at: str) -> None:
    done = target.run(fake, kill_at)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr[-2000:])


def assert_exact(pipeline: dlt.Pipeline, fake: Any) -> None:
    assert keys_twice(pipeline) == []
    assert_matches_truth(pipeline, fake.ground_truth())


# One kill point per destination; `python -m benchmark.kill_matrix` kills at every step
# (the 3rd answer, normalize, load, each of 40 load jobs) on both.
@pytest.mark.parametrize(
    "kind, kill_at",
    [
        pytest.param(*DESTINATIONS[0].values, "committed:2", id="duckdb-after-2nd-job-committed"),
        pytest.param(*DESTINATIONS[1].values, "recorded:5", marks=DESTINATIONS[1].marks, id="postgres-after-5th-job-recorded"),
    ],
)
def test_a_run_killed_while_loading_is_never_replayed_and_the_next_run_is_exact(
    fake: Any, tmp_path: Path, kind: str, kill_at: str
) -> None:
    # Cases 2 and 4: a resumed package replayed committed jobs (UniqueViolation on
    # Postgres's _dlt_id index in every later run; duplicates on DuckDB after the run).
    target = Target(kind, tmp_path)
    pipeline = target.pipeline()
    try:
        pipeline.run(zendesk_support(**source_args(fake)))
        fake.mutate(seed=11, fraction=0.05)
        kill_run(target, fake, kill_at)
        for _ in range(2):
            pipeline = target.pipeline()
            pipeline.run(zendesk_support(**source_args(fake)))
            assert_exact(pipeline, fake)
    finally:
        target.drop()


def test_a_partly_loaded_package_is_aborted_with_one_warning_and_read_again(
    fake: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = Target("duckdb", tmp_path)
    target.pipeline().run(zendesk_support(**source_args(fake)))
    fake.mutate(seed=11, fraction=0.05)
    kill_run(target, fake, "committed:3")
    pipeline = target.pipeline()
    [pending] = pipeline.list_normalized_load_packages()
    fake.reset_counts()
    with caplog.at_level(logging.WARNING, logger="zendesk"):
        pipeline.run(zendesk_support(**source_args(fake)))
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("zendesk.run")]
    assert len(warnings) == 1 and pending in warnings[0] and "read again" in warnings[0], warnings
    assert pipeline.get_load_package_info(pending).state == "aborted"
    assert fake.request_counts(), "the run after the abort extracts the changes again"
    assert_exact(pipeline, fake)


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_with_the_destination_given_to_run_the_partly_loaded_package_is_aborted_too(
    fake: Any, tmp_path: Path, kind: str
) -> None:
    # The pipeline is created without a destination and gets it (with its credentials)
    # from run(): on Postgres the abort cannot load when the source is built, so it is
    # left to dlt's abort flag, which that run() finishes.
    target = Target(kind, tmp_path)
    try:
        target.pipeline().run(zendesk_support(**source_args(fake)))
        fake.mutate(seed=11, fraction=0.05)
        kill_run(target, fake, "committed:3")
        destination = target.pipeline().destination
        for _ in range(2):
            pipeline = dlt.pipeline(pipeline_name=target.name, pipelines_dir=target.pipelines_dir, dataset_name=target.dataset)
            pipeline.run(zendesk_support(**source_args(fake)), destination=destination)
            assert keys_twice(pipeline) == []
        assert_matches_truth(pipeline, fake.ground_truth())
    finally:
        target.drop()


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_two_runs_started_together_after_a_crash_one_is_refused_one_completes(
    fake: Any, tmp_path: Path, kind: str
) -> None:
    # Case 3: the lock was taken at the first request, after `pipeline.run` had started
    # loading the pending package: both runs loaded it.
    target = Target(kind, tmp_path)
    try:
        target.pipeline().run(zendesk_support(**source_args(fake)))
        fake.mutate(seed=11, fraction=0.05)
        kill_run(target, fake, "committed:2")
        runs = [target.start(fake, slow=True) for _ in range(2)]
        outcomes = sorted((run.wait(timeout=300), run.stderr.read() if run.stderr else "") for run in runs)
        assert [code for code, _ in outcomes] == [0, REFUSED], outcomes
        assert f"Another run of pipeline '{target.name}' is in progress" in outcomes[1][1]
        for _ in range(2):
            pipeline = target.pipeline()
            pipeline.run(zendesk_support(**source_args(fake)))
            assert_exact(pipeline, fake)
    finally:
        target.drop()


def test_the_lock_never_refuses_its_own_process(fake: Any, tmp_path: Path) -> None:
    # Case 6: dlt's Airflow helper drops the pipeline's working folder and runs again in
    # the same task process; the earlier run's lock refused it ("pid N" being its own).
    pipeline = Target("duckdb", tmp_path).pipeline()
    hold_for_run(pipeline, finished=lambda: False)  # a run of this process, never seen to end
    pipeline.run(zendesk_support(**source_args(fake), tables=["tickets"]))
    pipeline = pipeline.drop()
    pipeline.run(zendesk_support(**source_args(fake), tables=["users"]))
    assert {"tickets", "users"} <= set(pipeline.default_schema.data_table_names())


def test_the_lock_refuses_another_process_while_held(fake: Any, tmp_path: Path) -> None:
    target = Target("duckdb", tmp_path)
    hold_for_run(target.pipeline(), finished=lambda: False)
    done = target.run(fake)
    assert done.returncode == REFUSED, done.stderr[-2000:]
    assert f"Another run of pipeline '{target.name}' is in progress (pid" in done.stderr


def test_extract_normalize_and_load_called_one_by_one_are_one_locked_run(fake: Any, tmp_path: Path) -> None:
    # Each step has a trace of its own: the lock stays held from the extract up to the
    # load of what it made, so another process cannot load the same package meanwhile.
    target = Target("duckdb", tmp_path)
    pipeline = target.pipeline()
    path = lock_path(pipeline)
    pipeline.extract(zendesk_support(**source_args(fake), tables=["groups"]))
    time.sleep(POLL_SECONDS * 3)
    assert held_here(pipeline) and lock_held_elsewhere(path), "released after the extract"
    pipeline.normalize()
    time.sleep(POLL_SECONDS * 3)
    assert held_here(pipeline) and lock_held_elsewhere(path), "released after the normalize"
    pipeline.load()
    deadline = time.monotonic() + 10
    while lock_held_elsewhere(path):
        assert time.monotonic() < deadline, "still held after the load"
        time.sleep(POLL_SECONDS)
    assert query(pipeline, "select count(*) from {t:groups}")[0][0] == len(fake.ground_truth()["groups"])



def _empty_the_account(fake: Any) -> Dict[str, list]:
    """Every list the fake serves, emptied (the fake's own table map names them); returns
    their rows, to put back."""
    from zendesk_fake.tables import ENDPOINT_TABLES, stored_rows

    saved = {}
    for table in ENDPOINT_TABLES:
        rows = stored_rows(fake.account, table)
        if rows is not None:
            saved[table.name] = list(rows)
            rows.clear()
    fake.refresh()
    return saved


def _refill_the_account(fake: Any, saved: Dict[str, list]) -> None:
    from zendesk_fake.tables import ENDPOINT_TABLES, stored_rows

    for table in ENDPOINT_TABLES:
        if table.name in saved:
            stored_rows(fake.account, table).extend(saved[table.name])  # type: ignore[union-attr]
    fake.refresh()


def _whole_list_counts(pipeline: dlt.Pipeline) -> Dict[str, int]:
    """Rows held by each whole-list table and its nested tables."""
    schema = pipeline.default_schema
    counts = {}
    for table in schema.data_table_names():
        root = table.split("__")[0]
        if root in WHOLE_LIST_TABLES:
            counts[table] = query(pipeline, f"select count(*) from {{t:{table}}}")[0][0]
    return counts


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_every_table_takes_an_empty_list_and_a_list_that_empties(fake: Any, tmp_path: Path, kind: str) -> None:
    # Case 1: an empty list of a replaced table was an empty jsonl file, which DuckDB reads
    # as one column named "json": the load failed, in every later run too.
    assert WHOLE_LIST_TABLES, "the registry has no whole-list table: the test would prove nothing"
    target = Target(kind, tmp_path)
    every = {"tables": TABLE_NAMES}  # the add-on products too: every table of the registry
    try:
        saved = _empty_the_account(fake)
        pipeline = target.pipeline()
        pipeline.run(zendesk_support(**source_args(fake), **every))  # empty from the start
        assert set(_whole_list_counts(pipeline).values()) <= {0}

        _refill_the_account(fake, saved)
        pipeline.run(zendesk_support(**source_args(fake), **every))
        assert_matches_truth(pipeline, fake.ground_truth(), TABLE_NAMES)
        held = _whole_list_counts(pipeline)
        assert all(held.get(table) for table in WHOLE_LIST_TABLES), held
        assert any("__" in table and n for table, n in held.items()), "no nested table of a list was loaded"

        _empty_the_account(fake)  # every list empties after holding rows
        pipeline.run(zendesk_support(**source_args(fake), **every))
        held = _whole_list_counts(pipeline)
        assert set(WHOLE_LIST_TABLES) <= set(held) and set(held.values()) == {0}, held
        pipeline.run(zendesk_support(**source_args(fake), **every))  # and the run after it
    finally:
        target.drop()


def test_a_duckdb_pipeline_wedged_by_an_empty_jsonl_list_recovers_on_the_next_run(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Target("duckdb", tmp_path).pipeline()
    pipeline.run(zendesk_support(**source_args(fake)))
    fake.account.sla_policies.clear()
    fake.refresh()
    with monkeypatch.context() as old_release:  # what the source did before this fix
        old_release.setattr(hooks, "carries_whole_list", lambda disposition: False)
        old_release.setattr(resources, "emptied_list", lambda: [])
        with pytest.raises(Exception, match='does not have a column with name "json"'):
            pipeline.run(zendesk_support(**source_args(fake)))
    pipeline.run(zendesk_support(**source_args(fake)))
    assert keys_twice(pipeline) == []
    assert _whole_list_counts(pipeline)["sla_policies"] == 0
    others = [table for table in select_tables(None) if table != "sla_policies"]
    assert_matches_truth(pipeline, fake.ground_truth(), tables=others)


def test_a_package_that_cannot_load_says_which_why_and_how_and_loads_after_a_fix(
    fake: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Target("duckdb", tmp_path).pipeline()
    pipeline.run(zendesk_support(**source_args(fake)))

    def set_count_type(sql_type: str) -> None:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name("tags")
            client.execute_sql(f"ALTER TABLE {table} DROP COLUMN count")
            client.execute_sql(f"ALTER TABLE {table} ADD COLUMN count {sql_type}")

    set_count_type("DATE")  # the destination now refuses every row of tags
    for _ in range(2):  # the first failure, then the package read again after one abort
        with pytest.raises(Exception, match="tags"):
            pipeline.run(zendesk_support(**source_args(fake)))
    [blocked] = pipeline.list_normalized_load_packages()
    with caplog.at_level(logging.ERROR, logger="zendesk"), pytest.raises(Exception, match="tags"):
        pipeline.run(zendesk_support(**source_args(fake)))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("zendesk")]
    assert len(errors) == 1, errors
    assert blocked in errors[0] and "table tags" in errors[0]
    assert f"dlt pipeline {pipeline.pipeline_name} abort-packages" in errors[0]

    set_count_type("BIGINT")  # the fix
    pipeline.run(zendesk_support(**source_args(fake)))
    pipeline.run(zendesk_support(**source_args(fake)))
    assert_exact(pipeline, fake)


@pytest.mark.postgres
def test_the_script_resumes_a_crashed_postgres_run_on_postgres(fake: Any, tmp_path: Path) -> None:
    # Case 5: `--destination postgres` after a crash finished the pending load on the
    # default DuckDB; dlt then dropped the package and reset the state (a full re-read).
    env = cli_env(tmp_path, fake, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_URL)
    target = Target("postgres", tmp_path, name="zendesk")
    target.pipelines_dir = str(tmp_path / "dlt_data" / "pipelines")
    try:
        first = subprocess.run(
            [sys.executable, str(SCRIPT), "--destination", "postgres", "--dataset", target.dataset],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert first.returncode == 0, first.stderr[-2000:]
        fake.mutate(seed=11, fraction=0.05)
        kill_run(target, fake, "load")  # extracted and normalized, nothing loaded
        fake.reset_counts()
        second = subprocess.run(
            [sys.executable, str(SCRIPT), "--destination", "postgres", "--dataset", target.dataset],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert second.returncode == 0, second.stderr[-2000:]
        assert not (tmp_path / "zendesk.duckdb").exists()
        exports = sum(n for path, n in fake.request_counts().items() if "/incremental/" in path)
        assert exports <= 12, f"the pending package was dropped and everything read again: {exports} export requests"
        assert_exact(target.pipeline(), fake)
    finally:
        target.drop()


def test_the_kill_points_of_the_child_are_reached(fake: Any, tmp_path: Path) -> None:
    # A kill point past the end of the run: the child says so (the kill tests above would
    # otherwise pass without killing anything).
    target = Target("duckdb", tmp_path)
    done = target.run(fake, "committed:100000")
    assert done.returncode == NOT_KILLED and "killed-never" in done.stdout
    assert target.pipeline().list_completed_load_packages()
