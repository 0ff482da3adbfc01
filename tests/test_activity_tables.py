"""The tables of the groups (activity, Help Center, Talk), end to end over HTTP
from the fake Zendesk through the plain `pipeline.run(zendesk_support(tables=...))`, on
DuckDB and PostgreSQL: row-exact after the first run, and again after a day of changes
and deletions. Their list comes from the registry, so a new table in a group is tested
here without an edit."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import dlt
import pytest

from tests.helpers import DESTINATIONS, destination_for, query, source_args
from tests.helpers.truth import assert_row_exact
from zendesk import zendesk_support
from zendesk.tables.registry import GROUPS, TABLES, TABLES_BY_NAME

#: Every table of a group: the activity tables and the add-on products' tables.
GROUPED = [spec.name for spec in TABLES if spec.group]




@pytest.mark.parametrize("kind", DESTINATIONS)
def test_grouped_tables_load_row_exact_then_after_changes_and_deletions(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], tmp_path: Any, kind: str
) -> None:
    dataset = f"activity_{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline("act", destination=destination_for(kind, tmp_path, "act"), dataset=dataset)
    try:
        pipeline.run(zendesk_support(**source_args(fake, tables=GROUPED))).raise_on_failed_jobs()
        assert_row_exact(pipeline, fake.ground_truth(), GROUPED)
        before = fake.ground_truth()
        fake.mutate(seed=5)
        after = fake.ground_truth()
        for table in ("user_identities", "suspended_tickets", "help_center_sections", "community_posts"):
            vanished = {r["id"] for r in before[table]} - {r["id"] for r in after[table]}
            assert vanished, f"the fake deleted no {table} row; the test would prove nothing"
        pipeline.run(zendesk_support(**source_args(fake, tables=GROUPED))).raise_on_failed_jobs()
        assert_row_exact(pipeline, after, GROUPED)
    finally:
        if "postgres" in str(pipeline.destination.destination_name):
            with pipeline.sql_client() as client:
                client.drop_dataset()


def test_no_change_run_asks_each_list_once_and_each_export_once(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline]
) -> None:
    """What a run costs when nothing changed: the lists that filter on creation one
    request each (the skips, read newest first, one page), the exports one each."""
    pipeline = make_pipeline("act_quiet")
    tables = [*GROUPS["activity"], *GROUPS["talk"], "help_center_articles"]
    pipeline.run(zendesk_support(**source_args(fake, tables=tables))).raise_on_failed_jobs()
    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake, tables=tables))).raise_on_failed_jobs()
    counts = fake.request_counts()
    for name in tables:
        template = "/api/v2" + TABLES_BY_NAME[name].endpoint.path
        assert counts.get(template) == 1, (name, counts.get(template))


@pytest.mark.parametrize("status", [403, 404])
@pytest.mark.parametrize("group", ["help_center", "talk"])
def test_product_the_account_lacks_is_skipped_with_one_warning(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], caplog: pytest.LogCaptureFixture, group: str, status: int
) -> None:
    """No Help Center / no Talk: every table of the group is skipped with one warning each,
    the other tables of the run load, and the run does not fail."""
    fake.configure(plan_gated={name: status for name in GROUPS[group]})
    pipeline = make_pipeline(f"gated_{group}_{status}")
    with caplog.at_level(logging.WARNING):
        pipeline.run(zendesk_support(**source_args(fake, tables=[group, "groups"]))).raise_on_failed_jobs()
    for name in GROUPS[group]:
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and f"'{name}'" in r.getMessage()]
        assert len(warnings) == 1, (name, [r.getMessage() for r in warnings])
        assert str(status) in warnings[0].getMessage()
    assert query(pipeline, "select count(*) from {t:groups}")[0][0] == len(fake.ground_truth()["groups"])


def test_audit_logs_without_enterprise_are_skipped_with_one_warning(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    fake.configure(plan_gated={"audit_logs": 403})
    pipeline = make_pipeline("gated_audit")
    with caplog.at_level(logging.WARNING):
        pipeline.run(zendesk_support(**source_args(fake, tables=["activity"]))).raise_on_failed_jobs()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "'audit_logs'" in r.getMessage()]
    assert len(warnings) == 1
    assert_row_exact(pipeline, fake.ground_truth(), [t for t in GROUPS["activity"] if t != "audit_logs"])
