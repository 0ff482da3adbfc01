"""What the end-to-end tests compare a destination with: the fake's ground truth, column
by column, and the typed custom-field columns of tickets."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.helpers import query
from zendesk import TABLE_NAMES, select_tables

#: Per table: primary key and scalar columns whose every value is compared with the truth.
COMPARED: Dict[str, Tuple[str, Sequence[str]]] = {
    "tickets": ("id", ("status", "subject", "priority", "requester_id", "generated_timestamp")),
    "ticket_metrics": ("id", ("ticket_id", "replies", "reopens")),
    "ticket_comments": ("id", ("ticket_id", "author_id", "public", "body")),
    "ticket_audits": ("id", ("ticket_id", "author_id")),
    "ticket_metric_events": ("id", ("ticket_id", "metric", "type", "instance_id")),
    "users": ("id", ("name", "email", "role", "active")),
    "organizations": ("id", ("name", "external_id")),
    "groups": ("id", ("name", "deleted")),
    "group_memberships": ("id", ("user_id", "group_id")),
    "macros": ("id", ("title", "active")),
    "ticket_fields": ("id", ("type", "title", "active")),
    "ticket_forms": ("id", ("name", "active")),
    "satisfaction_ratings": ("id", ("ticket_id", "score")),
    "sla_policies": ("id", ("title", "position")),
    "tags": ("name", ("count",)),
    "talk_phone_numbers": ("id", ("number", "name")),
    "user_identities": ("id", ("user_id", "type", "value", "verified")),
    "suspended_tickets": ("id", ("subject", "cause", "cause_id")),
    "ticket_skips": ("id", ("ticket_id", "user_id", "reason")),
    "ticket_activities": ("id", ("verb", "title", "user_id", "actor_id")),
    "audit_logs": ("id", ("action", "source_type", "source_id", "actor_id")),
    "side_conversation_events": ("id", ("side_conversation_id", "ticket_id", "type")),
    "help_center_articles": ("id", ("title", "section_id", "draft")),
    "help_center_sections": ("id", ("name", "category_id")),
    "help_center_categories": ("id", ("name", "position")),
    "community_posts": ("id", ("title", "topic_id", "status")),
    "community_topics": ("id", ("name", "position")),
    "talk_calls": ("id", ("direction", "duration", "agent_id", "completion_status")),
    "talk_legs": ("id", ("call_id", "type", "agent_id", "duration")),
}


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_matches_truth(
    pipeline: Any, truth: Dict[str, List[Dict[str, Any]]], tables: Optional[Sequence[str]] = None
) -> None:
    """Every table a default run loads (or `tables`) holds exactly the fake's rows, column by column."""
    assert set(COMPARED) == set(TABLE_NAMES)
    tables = select_tables(None) if tables is None else tables
    for table, (pk, columns) in COMPARED.items():
        if table not in tables:
            continue
        expected = {row[pk]: row for row in truth[table]}
        assert expected, f"the fake's {table} is empty; the test would prove nothing"
        selected = ", ".join([pk, *columns])
        rows = query(pipeline, f"select {selected} from {{t:{table}}}")
        keys = [row[0] for row in rows]
        assert len(keys) == len(set(keys)), f"{table}: duplicate {pk}s"
        assert set(keys) == set(expected), (
            f"{table}: missing {sorted(set(expected) - set(keys))[:5]},"
            f" unexpected {sorted(set(keys) - set(expected))[:5]}"
        )
        for row in rows:
            source = expected[row[0]]
            for column, value in zip(columns, row[1:]):
                assert plain(value) == source.get(column), (table, row[0], column, value, source.get(column))


def ticket_custom_columns(pipeline: Any) -> Dict[str, str]:
    state = pipeline.state["sources"]["zendesk"]
    return state["custom_field_columns"]["ticket"]


def expected_custom_value(field_type: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    return {
        "checkbox": lambda v: bool(v),
        "integer": int,
        "lookup": int,
        "decimal": float,
        "date": lambda v: dt.date.fromisoformat(str(v)[:10]),
        "multiselect": lambda v: list(v),
    }.get(field_type, lambda v: v)(value)


def assert_ticket_custom_fields(pipeline: Any, fake: Any) -> None:
    """Every custom field is a typed column holding the ticket's value."""
    truth = fake.ground_truth()
    field_types = {str(f["id"]): f["type"] for f in truth["ticket_fields"]}
    columns = ticket_custom_columns(pipeline)
    assert {"checkbox", "integer", "decimal", "date", "multiselect", "lookup", "tagger", "text"} <= {
        field_types[i] for i in columns
    }
    schema_columns = pipeline.default_schema.get_table_columns("tickets")
    expected_types = {
        "checkbox": "bool", "integer": "bigint", "lookup": "bigint", "decimal": "double",
        "date": "date", "multiselect": "json", "text": "text", "tagger": "text",
    }
    for field_id, column in columns.items():
        if field_types[field_id] in expected_types and column in schema_columns:
            assert schema_columns[column]["data_type"] == expected_types[field_types[field_id]], column
    order = sorted(columns)
    selected = ", ".join(columns[i] if columns[i] in schema_columns else "NULL" for i in order)
    rows = {r[0]: r[1:] for r in query(pipeline, f"select id, {selected} from {{t:tickets}}")}
    compared = 0
    for ticket in truth["tickets"]:
        values = {str(cf["id"]): cf["value"] for cf in ticket.get("custom_fields") or []}
        for field_id, stored in zip(order, rows[ticket["id"]]):
            expected = expected_custom_value(field_types[field_id], values.get(field_id))
            if isinstance(stored, str) and field_types[field_id] == "multiselect":
                stored = json.loads(stored)
            assert plain(stored) == expected, (ticket["id"], field_types[field_id], stored, expected)
            compared += expected is not None
    assert compared > 100
