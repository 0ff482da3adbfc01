"""Nothing lost, nothing duplicated: transient faults, crashes, batches, deletions, plan limits."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import dlt
import pytest

from tests.helpers import query, source_args, sync
from tests.helpers.cli import SCRIPT, cli_env
from tests.helpers.truth import assert_matches_truth
from zendesk import select_tables, zendesk_support
from zendesk.run import run_until_drained

def test_transient_faults_full_and_incremental_runs_end_with_ground_truth(
    fake: Any, make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small account makes few requests, so the fault rates are high enough that every
    # kind happens: 15% of answers 500/503, 5% of connections cut mid-body, and 429 with a
    # multi-valued Retry-After whenever more than 8 requests land within half a second.
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "12")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "1")
    fake.configure(
        error_rate=0.15,
        drop_rate=0.05,
        rate_limit_per_minute=8,
        rate_window_seconds=0.5,
        retry_after_format="multi",
    )
    pipeline = make_pipeline()
    sync(pipeline, fake)
    fake.mutate(seed=21, fraction=0.05)
    sync(pipeline, fake)

    statuses = fake.status_counts()
    faults = {kind: sum(n for key, n in statuses.items() if key.startswith(kind)) for kind in ("429", "500", "503", "dropped")}
    assert all(faults.values()), f"every kind of fault must have happened: {faults}"
    fake.configure(error_rate=0.0, drop_rate=0.0, rate_limit_per_minute=None)
    assert_matches_truth(pipeline, fake.ground_truth())


def test_rerun_after_crash_in_later_batch_fetches_only_what_was_left(fake: Any, make_pipeline: Any) -> None:
    big = type(fake)(seed=5, tickets=1200)
    big.start()
    try:
        tables = select_tables(["ticket_metric_events"])
        args = source_args(big, batch_pages=2)
        full_pages = -(-len(big.ground_truth()["ticket_metric_events"]) // 1000)
        assert full_pages >= 6, "the export must span several batches for this test to mean anything"

        batches = {"n": 0}

        def crashing_source(batch_tables: Any) -> Any:
            batches["n"] += 1
            if batches["n"] == 3:
                raise RuntimeError("simulated crash before the third batch")
            return zendesk_support(**args).with_resources(*batch_tables)

        pipeline = make_pipeline()
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_until_drained(pipeline, crashing_source, tables)
        done_requests = big.request_counts()["/api/v2/incremental/ticket_metric_events"]
        assert done_requests == 4  # two committed batches of two pages

        big.reset_counts()
        run_until_drained(pipeline, lambda t: zendesk_support(**args).with_resources(*t), tables)
        rerun_requests = big.request_counts()["/api/v2/incremental/ticket_metric_events"]
        # The rerun starts at the committed cursor: it re-reads at most the boundary page,
        # and this export ends on an empty page (after the page finishing the last second).
        assert rerun_requests <= full_pages - done_requests + 3
        ids = [r[0] for r in query(pipeline, "select id from {t:ticket_metric_events}")]
        assert len(ids) == len(set(ids))
        assert set(ids) == {e["id"] for e in big.ground_truth()["ticket_metric_events"]}
    finally:
        big.stop()


def test_a_batch_holds_batch_pages_export_pages_across_all_exports(fake: Any, make_pipeline: Any) -> None:
    big = type(fake)(seed=5, tickets=1200)
    big.start()
    try:
        tables = select_tables(["tickets", "users", "organizations", "ticket_metric_events", "ticket_comments"])
        args = source_args(big, batch_pages=3)
        batch_requests = []

        def counting_source(batch_tables: Any) -> Any:
            batch_requests.append(sum(n for path, n in big.request_counts().items() if "/incremental/" in path))
            return zendesk_support(**args).with_resources(*batch_tables)

        pipeline = make_pipeline()
        result = run_until_drained(pipeline, counting_source, tables)
        total = sum(n for path, n in big.request_counts().items() if "/incremental/" in path)
        per_batch = [after - before for before, after in zip(batch_requests, batch_requests[1:] + [total])]
        assert len(per_batch) == result.batches >= 4
        # Five exports, three pages per batch between them: a batch's size does not grow
        # with the number of exports running.
        assert max(per_batch) == 3
        assert_matches_truth(pipeline, big.ground_truth(), tables=tables)
    finally:
        big.stop()


def test_failed_load_step_is_finished_by_the_next_run_without_duplicates(
    fake: Any, make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline()
    original_load = dlt.Pipeline.load

    def crash_once(self: dlt.Pipeline, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(dlt.Pipeline, "load", original_load)
        raise RuntimeError("simulated crash between normalize and load")

    monkeypatch.setattr(dlt.Pipeline, "load", crash_once)
    with pytest.raises(Exception, match="simulated crash"):
        sync(pipeline, fake)
    assert pipeline.has_pending_data
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())


def _run_cli_sync(fake: Any, workdir: Path) -> "subprocess.Popen[str]":
    """zendesk_pipeline.py as a user runs it, committing a batch after every page."""
    env = cli_env(workdir, fake, SOURCES__ZENDESK__BATCH_PAGES="1")
    return subprocess.Popen(
        [sys.executable, str(SCRIPT)], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_runs_killed_at_random_points_then_rerun_end_with_exact_ground_truth(fake: Any, tmp_path: Path) -> None:
    """SIGKILL a whole sync process at random moments (extract, normalize, load), several
    times, changing the account in between; one clean run then holds exactly the truth."""
    rng = random.Random(7)
    for attempt in range(4):
        process = _run_cli_sync(fake, tmp_path)
        time.sleep(rng.uniform(0.5, 4.0))
        process.kill()
        process.communicate()
        if attempt == 1:
            fake.mutate(seed=31, fraction=0.05)
    finished = _run_cli_sync(fake, tmp_path)
    out, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err[-2000:]
    pipeline = dlt.attach(
        "zendesk",
        pipelines_dir=str(tmp_path / "dlt_data" / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "zendesk.duckdb")),
    )
    assert_matches_truth(pipeline, fake.ground_truth())


def test_deleted_ticket_keeps_its_row_and_loses_its_metrics_and_vanished_rows_are_deleted(
    fake: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    changes = fake.mutate(seed=41, fraction=0.02)
    sync(pipeline, fake)
    deleted_ticket = changes["tickets_deleted"][0]
    assert query(pipeline, f"select status from {{t:tickets}} where id = {deleted_ticket}") == [("deleted",)]
    assert query(pipeline, f"select count(*) from {{t:ticket_metrics}} where ticket_id = {deleted_ticket}") == [(0,)]
    # Comments and audits are history: they stay, and the ticket's status says it is deleted.
    assert query(pipeline, f"select count(*) from {{t:ticket_audits}} where ticket_id = {deleted_ticket}")[0][0] > 0
    removed = changes["group_memberships_removed"][0]
    assert query(pipeline, f"select count(*) from {{t:group_memberships}} where id = {removed}") == [(0,)]
    deleted_user = changes["users_deleted"][0]
    assert query(pipeline, f"select active from {{t:users}} where id = {deleted_user}") == [(False,)]


def test_soft_deletion_mode_keeps_vanished_rows_with_a_closed_validity(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["group_memberships"], deletions="soft")
    changes = fake.mutate(seed=43, fraction=0.02)
    sync(pipeline, fake, tables=["group_memberships"], deletions="soft")
    removed = changes["group_memberships_removed"][0]
    rows = query(pipeline, f"select _dlt_valid_to from {{t:group_memberships}} where id = {removed}")
    assert len(rows) == 1 and rows[0][0] is not None
    current = query(pipeline, "select count(*) from {t:group_memberships} where _dlt_valid_to is null")[0][0]
    assert current == len(fake.ground_truth()["group_memberships"])


def test_plan_gated_tables_are_skipped_with_a_warning_and_the_rest_loads(
    fake: Any, make_pipeline: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gated: Dict[str, int] = {"sla_policies": 403, "ticket_forms": 403, "talk_phone_numbers": 404, "satisfaction_ratings": 403}
    fake.configure(plan_gated=gated)
    pipeline = make_pipeline()
    with caplog.at_level("WARNING"):
        sync(pipeline, fake)
    loaded = set(pipeline.default_schema.data_table_names())
    assert not loaded & set(gated)
    truth = fake.ground_truth()
    for table in ("tickets", "users", "groups", "tags"):
        assert query(pipeline, f"select count(*) from {{t:{table}}}")[0][0] == len(truth[table])
    report = pipeline.state["sources"]["zendesk"]["run_report"]["skipped_tables"]
    assert {t: r["status"] for t, r in report.items()} == gated
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "plan" in r.getMessage()]
    assert sorted(w.split("'")[1] for w in warnings) == sorted(gated)
