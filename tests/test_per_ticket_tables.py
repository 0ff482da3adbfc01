"""The tables read per ticket (side conversations, conversation logs), end to end over
HTTP from the fake Zendesk through the plain `pipeline.run(zendesk_support(tables=...))`
on DuckDB and PostgreSQL: row-exact after the first run and after a day of changes and a
deleted ticket; one request per changed ticket that needs it, none for the others; a plan
without them skips them with one warning. Their list comes from the registry."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

import dlt
import pytest

from tests.helpers import DESTINATIONS, destination_for, query, source_args
from tests.helpers.truth import assert_row_exact
from zendesk import zendesk_support
from zendesk.resources import PER_TICKET_WORKERS
from zendesk.run import progress
from zendesk.tables.registry import TABLES, needs_conversation_log, per_ticket_only

#: Every table read only per ticket.
PER_TICKET = [spec.name for spec in TABLES if per_ticket_only(spec.name)]
SIDE = "/api/v2/tickets/{id}/side_conversations"
LOG = "/api/v2/tickets/{id}/conversation_log"


def _delete_ticket_with_rows(fake: Any) -> int:
    """Delete a ticket that has a side conversation and a conversation log, as Zendesk
    does (status deleted, a new export timestamp): the test of their deletion needs one."""
    truth = fake.ground_truth()
    both = {r["ticket_id"] for r in truth["side_conversations"]} & {r["ticket_id"] for r in truth["ticket_conversation_logs"]}
    chosen = min(both) if both else truth["side_conversations"][0]["ticket_id"]
    ticket = fake.account.tickets[chosen - 1]
    stamp = fake.account.next_stamp()
    ticket.update(status="deleted", generated_timestamp=stamp)
    fake.refresh()
    return int(chosen)


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_per_ticket_tables_load_row_exact_then_after_changes_and_deletions(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], tmp_path: Any, kind: str
) -> None:
    assert PER_TICKET == ["side_conversations", "ticket_conversation_logs"]
    dataset = f"per_ticket_{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline("pt", destination=destination_for(kind, tmp_path, "pt"), dataset=dataset)
    try:
        pipeline.run(zendesk_support(**source_args(fake, tables=PER_TICKET))).raise_on_failed_jobs()
        assert_row_exact(pipeline, fake.ground_truth(), PER_TICKET)

        before = fake.ground_truth()
        fake.mutate(seed=5)
        gone = _delete_ticket_with_rows(fake)
        after = fake.ground_truth()
        for table in PER_TICKET:
            assert {r["ticket_id"] for r in before[table]} - {r["ticket_id"] for r in after[table]} == {gone} or (
                table == "ticket_conversation_logs" and gone not in {r["ticket_id"] for r in before[table]}
            ), table
            assert {r["id"] for r in after[table]} - {r["id"] for r in before[table]}, f"no new {table} row"
        closed = [r for r in after["side_conversations"] if r["state"] == "closed"]
        assert {r["id"] for r in closed} - {r["id"] for r in before["side_conversations"] if r["state"] == "closed"}

        pipeline.run(zendesk_support(**source_args(fake, tables=PER_TICKET))).raise_on_failed_jobs()
        assert_row_exact(pipeline, after, PER_TICKET)
        assert query(pipeline, "select count(*) from {t:side_conversations} where id = ''") == [(0,)]
    finally:
        with pipeline.sql_client() as client:
            client.drop_dataset()


def test_one_request_per_changed_ticket_that_needs_it(fake: Any, make_pipeline: Callable[..., dlt.Pipeline]) -> None:
    """A full run asks each live ticket for its side conversations and each chat ticket
    for its log; after a day of changes, only the tickets the export resends."""
    pipeline = make_pipeline("pt_count")
    tickets = fake.account.tickets
    live = [t for t in tickets if t["status"] != "deleted"]
    messaging = [t for t in live if needs_conversation_log(t)]
    assert 0 < len(messaging) < len(live)
    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake, tables=PER_TICKET))).raise_on_failed_jobs()
    counts = fake.request_counts()
    assert counts[SIDE] == len(live) == fake.minimum_requests(PER_TICKET)[SIDE]
    assert counts[LOG] == len(messaging) == fake.minimum_requests(PER_TICKET)[LOG]

    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake, tables=PER_TICKET))).raise_on_failed_jobs()
    assert SIDE not in fake.request_counts() and LOG not in fake.request_counts()

    summary = fake.mutate(seed=7)
    changed = {t["id"] for t in tickets if t["generated_timestamp"] == summary["stamp"] and t["status"] != "deleted"}
    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake, tables=PER_TICKET))).raise_on_failed_jobs()
    counts = fake.request_counts()
    assert counts[SIDE] == len(changed)
    assert counts.get(LOG, 0) == sum(1 for tid in changed if needs_conversation_log(tickets[tid - 1])) > 0


@pytest.mark.parametrize("status", [403, 404])
def test_a_plan_without_them_skips_them_with_one_warning(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake.configure(plan_gated={"side_conversations": status})
    pipeline = make_pipeline(f"pt_gated_{status}")
    with caplog.at_level(logging.WARNING):
        pipeline.run(zendesk_support(**source_args(fake, tables=["side_conversations"]))).raise_on_failed_jobs()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "side_conversations" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    if status == 403:  # skipped: only the tickets in flight when the plan said no were asked
        assert fake.request_counts()[SIDE] <= PER_TICKET_WORKERS
    assert query(pipeline, "select count(*) from {t:tickets}")[0][0] == len(fake.account.tickets)


def test_the_progress_log_counts_the_tickets_that_need_a_request(
    fake: Any, make_pipeline: Callable[..., dlt.Pipeline], caplog: pytest.LogCaptureFixture
) -> None:
    """The conversation log's progress line counts the chat and messaging tickets only."""
    progress.reset()
    needing = sum(1 for t in fake.account.tickets if t["status"] != "deleted" and needs_conversation_log(t))
    with caplog.at_level(logging.INFO, logger="zendesk.progress"):
        pipeline = make_pipeline("pt_progress")
        pipeline.run(zendesk_support(**source_args(fake, tables=["ticket_conversation_logs"]))).raise_on_failed_jobs()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ticket_conversation_logs: ")]
    assert lines and f"({needing:,} this run so far)" in lines[-1], lines
    assert "at the current pace of" in lines[-1]
