"""What the end-to-end tests compare a destination with: the fake's ground truth, column
by column, and the typed custom-field columns of tickets.

The tables and their keys come from the registry, the columns from the truth's rows: a
new table needs nothing here."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence

import dlt

from tests.helpers import query
from zendesk import select_tables
from zendesk.tables.registry import TABLES, TABLES_BY_NAME

def plain(value: Any) -> Any:
    """A destination value as the API's JSON has it: ISO-8601 text for timestamps, floats
    for decimals."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


SCALARS = (str, int, float, bool)


def compared_columns(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """The top-level fields of `rows` that hold a scalar in every row that has one, and a
    value in at least one row: each must land as a column holding exactly that value.
    Objects and lists become nested tables or JSON and are checked by the contract tests."""
    fields: Dict[str, bool] = {}
    for row in rows:
        for key, value in row.items():
            if value is None:
                fields.setdefault(key, False)
            elif isinstance(value, SCALARS) and fields.get(key, True) is not None:
                fields[key] = True
            else:
                fields[key] = None  # type: ignore[assignment]
    return sorted(key for key, has_value in fields.items() if has_value)


def assert_matches_truth(
    pipeline: Any, truth: Dict[str, List[Dict[str, Any]]], tables: Optional[Sequence[str]] = None
) -> None:
    """Every table a default run loads (or `tables`) holds exactly the fake's rows, every
    scalar field of the truth compared value by value."""
    tables = select_tables(None) if tables is None else tables
    for spec in TABLES:
        table, pk = spec.name, spec.primary_key
        if table not in tables:
            continue
        expected = {row[pk]: row for row in truth[table]}
        assert expected, f"the fake's {table} is empty; the test would prove nothing"
        columns = [c for c in compared_columns(truth[table]) if c != pk]
        selected = ", ".join(f'"{name}"' for name in (pk, *columns))  # quoted: `default` is a keyword
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


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return float(value)
    return value


def assert_row_exact(pipeline: dlt.Pipeline, truth: Dict[str, List[Dict[str, Any]]], tables: Sequence[str]) -> None:
    """Each table holds exactly the fake's rows (by key), and every scalar field of every
    row as the fake serves it."""
    for table in tables:
        key = TABLES_BY_NAME[table].primary_key
        expected = {row[key]: row for row in truth[table]}
        assert expected, f"the fake's {table} is empty; the test would prove nothing"
        loaded = pipeline.default_schema.get_table_columns(table)
        fields = sorted(
            {f for row in expected.values() for f, v in row.items() if not isinstance(v, (dict, list))} & set(loaded)
        )
        assert key in fields and len(fields) > 3, (table, fields)
        quoted = ", ".join(f'"{f}"' for f in fields)  # `primary` is a reserved word
        rows = query(pipeline, f"select {quoted} from {{t:{table}}}")
        got = {row[fields.index(key)]: dict(zip(fields, map(_plain, row))) for row in rows}
        assert len(got) == len(rows), f"{table}: duplicate keys"
        assert set(got) == set(expected), (table, sorted(set(expected) ^ set(got))[:5])
        for row_key, row in got.items():
            want = {f: expected[row_key].get(f) for f in fields}
            assert row == want, (table, row_key)
