"""ticket_field_history and ticket_tag_history from Zendesk's own ticket events payload
(tests/fixtures/real/incremental_ticket_events.json) through the plain
`pipeline.run(zendesk_support(...))` into DuckDB: the exact rows, every column typed."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from tests.contract.fixture_server import FixtureZendesk, run_recorded
from tests.helpers import column_types, query
from zendesk.tables.rows import ticket_field_history, ticket_tag_history

WHEN_1 = datetime(2009, 6, 25, 10, 15, 18, tzinfo=timezone.utc)
WHEN_2 = datetime(2013, 11, 28, 4, 53, 10, tzinfo=timezone.utc)

SHARED_TYPES = {
    "id": "VARCHAR",
    "event_id": "BIGINT",
    "audit_id": "BIGINT",
    "ticket_id": "BIGINT",
    "updater_id": "BIGINT",
    "via": "VARCHAR",
    "created_at": "TIMESTAMP WITH TIME ZONE",
}


@pytest.fixture
def loaded(recorded: FixtureZendesk, make_pipeline: Callable[..., Any]) -> Any:
    pipeline = make_pipeline("recorded_history")
    run_recorded(pipeline, recorded, tables=["ticket_field_history"])
    return pipeline


def test_field_history_rows_and_types(loaded: Any) -> None:
    types = column_types(loaded)["ticket_field_history"]
    expected_types = {
        **SHARED_TYPES,
        "field": "VARCHAR",
        "event_type": "VARCHAR",
        "value": "VARCHAR",
        "previous_value": "VARCHAR",
    }
    assert {c: t for c, t in types.items() if not c.startswith("_dlt")} == expected_types
    rows = query(
        loaded,
        "select id, event_id, audit_id, ticket_id, updater_id, via, created_at, field, event_type, value,"
        " previous_value from {t:ticket_field_history} order by id",
    )
    assert rows == [
        ("1718:status", 1718, 1717, 27, -1, "Email", WHEN_2, "status", "Change", "solved", "open"),
        ("1719:27648", 1719, 1717, 27, -1, "Email", WHEN_2, "27648", "Change", "true", "false"),
        ("1720:27642", 1720, 1717, 27, -1, "Email", WHEN_2, "27642", "Change", "509974", None),
        ("91048994508:tags", 91048994508, 91048994468, 35436, 5031726587, "Web form", WHEN_1, "tags", "Change",
         '["sample","support","zendesk"]', "[]"),
        ("91048994528:assignee_id", 91048994528, 91048994468, 35436, 5031726587, "Web form", WHEN_1, "assignee_id",
         "Change", "235323", None),
    ]


def test_tag_history_rows_and_types(loaded: Any) -> None:
    types = column_types(loaded)["ticket_tag_history"]
    assert {c: t for c, t in types.items() if not c.startswith("_dlt")} == {
        **SHARED_TYPES, "tag": "VARCHAR", "change": "VARCHAR"
    }
    rows = query(loaded, "select id, event_id, ticket_id, tag, change, updater_id, created_at from {t:ticket_tag_history}")
    assert sorted(rows) == [
        (f"91048994508:{tag}", 91048994508, 35436, tag, "added", 5031726587, WHEN_1)
        for tag in ("sample", "support", "zendesk")
    ]


# --- the other shapes a change child event comes in --------------------------------------

EVENT = {"id": 1717, "ticket_id": 27, "timestamp": 1385614390, "updater_id": -1, "via": "Email"}


def test_a_change_named_by_its_key_is_read_like_field_name() -> None:
    """zenpy's recorded ticket event names the field by its key (`"status": "solved"`)."""
    child = {"id": 1718, "via": "Email", "via_reference_id": 2, "status": "solved", "event_type": "Change",
             "previous_value": "open"}
    [row] = ticket_field_history([{**EVENT, "child_events": [child]}])
    assert (row["id"], row["field"], row["value"], row["previous_value"]) == ("1718:status", "status", "solved", "open")
    assert row["created_at"] == "2013-11-28T04:53:10Z"


def test_custom_ticket_fields_change_gives_one_row_per_field() -> None:
    child = {"id": 9, "event_type": "Change", "custom_ticket_fields": {"11": "gold", "12": 7},
             "previous_value": {"11": "silver"}}
    rows = ticket_field_history([{**EVENT, "child_events": [child]}])
    assert sorted((r["id"], r["value"], r["previous_value"]) for r in rows) == [
        ("9:11", "gold", "silver"), ("9:12", "7", None)
    ]


def test_tags_without_added_and_removed_lists_are_the_difference() -> None:
    """Several tags changed by one event: one row each, keyed by event and tag."""
    child = {"id": 5, "event_type": "Change", "field_name": "tags", "value": "vip new",
             "previous_value": "new old"}
    rows = ticket_tag_history([{**EVENT, "child_events": [child, {"id": 6, "event_type": "Comment", "body": "x"}]}])
    assert [(r["id"], r["tag"], r["change"]) for r in rows] == [("5:vip", "vip", "added"), ("5:old", "old", "removed")]
