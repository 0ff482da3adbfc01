"""ticket_field_history and ticket_tag_history over HTTP from the fake, through the plain
`pipeline.run(zendesk_support())`, into DuckDB and Postgres: row-exact, every column, after a
first run and after changes, at no request beyond the ticket events export's own."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Tuple

import dlt
import pytest

from tests.helpers import DESTINATIONS, POSTGRES_URL, query, source_args
from zendesk import zendesk_support
from zendesk.tables.registry import TABLES_BY_NAME

HISTORY_TABLES = ("ticket_field_history", "ticket_tag_history")
EVENTS_PATH = "/api/v2/incremental/ticket_events"

def _as_loaded(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def assert_history_is_truth(pipeline: dlt.Pipeline, truth: Dict[str, List[Dict[str, Any]]]) -> None:
    for table in HISTORY_TABLES:
        columns = list(TABLES_BY_NAME[table].columns)
        expected = sorted(tuple(row[c] for c in columns) for row in truth[table])
        assert expected, f"the fake's {table} is empty; the test would prove nothing"
        loaded: List[Tuple[Any, ...]] = sorted(
            tuple(_as_loaded(v) for v in row) for row in query(pipeline, f"select {', '.join(columns)} from {{t:{table}}}")
        )
        assert loaded == expected, table


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_history_tables_hold_every_change_after_changes(
    fake: Any, make_pipeline: Any, destination: str
) -> None:
    dataset = f"zendesk_{uuid.uuid4().hex[:8]}"
    target = dlt.destinations.postgres(POSTGRES_URL) if destination == "postgres" else None
    pipeline = make_pipeline(name=f"history_{destination}", destination=target, dataset=dataset)
    try:
        fake.reset_counts()
        pipeline.run(zendesk_support(**source_args(fake))).raise_on_failed_jobs()
        assert_history_is_truth(pipeline, fake.ground_truth())
        # One pass over the export feeds every table made from it: no request of their own.
        assert fake.request_counts()[EVENTS_PATH] == fake.minimum_requests()[EVENTS_PATH]

        changes = fake.mutate(seed=23, fraction=0.1)
        assert changes["audits_created"]
        fake.add_custom_field("ticket", "integer")
        pipeline.run(zendesk_support(**source_args(fake))).raise_on_failed_jobs()
        truth = fake.ground_truth()
        assert_history_is_truth(pipeline, truth)
        kinds = {row["field"] for row in truth["ticket_field_history"]}
        assert {"status", "priority", "tags", "assignee_id"} <= kinds
        assert any(field.isdigit() for field in kinds), "custom fields are named by their id"
        assert {row["change"] for row in truth["ticket_tag_history"]} >= {"added"}
    finally:
        if destination == "postgres":
            with pipeline.sql_client() as client:
                client.drop_dataset()
