"""The real pipeline, over HTTP, against the fake Zendesk, into a DuckDB file: every table
must hold exactly the fake's ground truth, after a first run, after changes, and after a run
with nothing to do."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from tests.conftest import query, sync
from zendesk import TABLE_NAMES

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
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_matches_truth(
    pipeline: Any, truth: Dict[str, List[Dict[str, Any]]], tables: Optional[Sequence[str]] = None
) -> None:
    """Every table (or `tables`) holds exactly the fake's rows, column by column."""
    assert set(COMPARED) == set(TABLE_NAMES)
    for table, (pk, columns) in COMPARED.items():
        if tables is not None and table not in tables:
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
                assert _plain(value) == source.get(column), (table, row[0], column, value, source.get(column))


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
            assert _plain(stored) == expected, (ticket["id"], field_types[field_id], stored, expected)
            compared += expected is not None
    assert compared > 100


def table_counts(pipeline: Any) -> Dict[str, int]:
    return {t: query(pipeline, f"select count(*) from {{t:{t}}}")[0][0] for t in TABLE_NAMES}


def test_full_then_incremental_then_idle_runs_equal_ground_truth(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    assert_ticket_custom_fields(pipeline, fake)

    changes = fake.mutate(seed=11, fraction=0.05)
    assert changes
    fake.reset_counts()
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    assert_ticket_custom_fields(pipeline, fake)

    before = table_counts(pipeline)
    fake.reset_counts()
    sync(pipeline, fake)
    assert table_counts(pipeline) == before
    assert_matches_truth(pipeline, fake.ground_truth())
    idle_requests = fake.total_requests()
    assert idle_requests <= 25, fake.request_counts()


def test_new_custom_field_becomes_a_column_without_reset(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["tickets", "users", "organizations"])
    created = {kind: fake.add_custom_field(kind, "integer") for kind in ("ticket", "user", "organization")}
    sync(pipeline, fake, tables=["tickets", "users", "organizations"])
    ticket_column = ticket_custom_columns(pipeline)[str(created["ticket"]["id"])]
    for table, column in (
        ("tickets", ticket_column),
        ("users", f"custom_{created['user']['key']}"),
        ("organizations", f"custom_{created['organization']['key']}"),
    ):
        columns = pipeline.default_schema.get_table_columns(table)
        assert columns[column]["data_type"] == "bigint", (table, column)
        filled = query(pipeline, f"select count({column}) from {{t:{table}}}")[0][0]
        assert filled > 0, (table, column)


@pytest.mark.parametrize("table", ["tickets", "ticket_comments", "groups", "tags"])
def test_selecting_one_table_loads_it_and_its_siblings_only(fake: Any, make_pipeline: Any, table: str) -> None:
    from zendesk.settings import siblings

    pipeline = make_pipeline()
    sync(pipeline, fake, tables=[table])
    loaded = {t for t in pipeline.default_schema.data_table_names() if not t.startswith("_dlt")}
    top_level = {t for t in loaded if "__" not in t}
    assert top_level == set(siblings(table))


def test_full_refresh_reloads_everything_from_the_start(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    first_loads = {row[0] for row in query(pipeline, "select load_id from {t:_dlt_loads}")}
    sync(pipeline, fake, refresh="drop_resources")
    assert_matches_truth(pipeline, fake.ground_truth())
    # Every row was fetched and loaded again, the hidden export readers' cursors included.
    for table in ("tickets", "ticket_metrics", "ticket_audits", "users", "groups", "ticket_fields"):
        loads = {row[0] for row in query(pipeline, f"select distinct _dlt_load_id from {{t:{table}}}")}
        assert loads and not loads & first_loads, table


def test_per_ticket_audits_mode_loads_full_audits_of_changed_tickets_only(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["tickets"], audits_mode="per_ticket")
    truth = fake.ground_truth()
    live = {t["id"] for t in truth["tickets"] if t["status"] != "deleted"}
    expected = {a["id"] for a in truth["ticket_audits"] if a["ticket_id"] in live}
    rows = query(pipeline, "select id from {t:ticket_audits}")
    assert sorted(r[0] for r in rows) == sorted(expected)  # no duplicates, none missing
    assert fake.request_counts()["/api/v2/tickets/{id}/audits"] == len(live)

    changes = fake.mutate(seed=61, fraction=0.05)
    fake.reset_counts()
    sync(pipeline, fake, tables=["tickets"], audits_mode="per_ticket")
    changed_live = {t for t in changes["tickets_updated"] + changes["tickets_created"]} & {
        t["id"] for t in fake.ground_truth()["tickets"] if t["status"] != "deleted"
    }
    assert fake.request_counts()["/api/v2/tickets/{id}/audits"] == len(changed_live)
    truth = fake.ground_truth()
    ids = [r[0] for r in query(pipeline, "select id from {t:ticket_audits}")]
    assert len(ids) == len(set(ids)), "an audit was appended twice"
    expected = {a["id"] for a in truth["ticket_audits"] if a["ticket_id"] in live | changed_live}
    assert set(ids) == expected
