"""Zendesk's own payloads (tests/fixtures/real, see PROVENANCE.md), not the fake's, through
the real `pipeline.run(zendesk_support(...))` into DuckDB: every top-level field of every
table lands as a column of the right type, or as the nested table its list makes, and
nothing is dropped but what docs/tables.md lists as dropped by design."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

import dlt
import pytest

from tests.contract.fixture_server import run_recorded
from tests.helpers import POSTGRES_URL, column_types, query
from tests.contract.fixture_server import FixtureZendesk, fixture_name, load
from zendesk.tables.rows import with_sideloads
from zendesk.tables.registry import TABLES, TableSpec

TABLES_DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def table_section(table: str) -> str:
    """The section of docs/tables.md about `table`."""
    return TABLES_DOC.read_text(encoding="utf-8").split(f"\n## {table}\n", 1)[1].split("\n## ", 1)[0]

#: dlt type name -> DuckDB's name for it.
DUCKDB_TYPES = {
    "bool": "BOOLEAN",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "date": "DATE",
    "json": "JSON",
}

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

Row = Dict[str, Any]


#: Fields each custom-field kind's pivot takes off a record by design (its values become
#: typed columns; tickets also lose Zendesk's duplicate `fields` list).
PIVOTED: Dict[str, Set[str]] = {
    "ticket": {"custom_fields", "fields"},
    "user": {"user_fields"},
    "organization": {"organization_fields"},
}


def recorded_rows(spec: TableSpec) -> List[Row]:
    """The table's rows as the source makes them from its endpoint's recorded payload,
    without tombstones (a negative key deletes, it is never stored: rows.ticket_metrics)."""
    payload = load(fixture_name(spec.endpoint))
    records = with_sideloads(payload[spec.endpoint.data_key], payload, spec.endpoint.sideloads)
    rows = spec.rows(records) if spec.rows else records
    return [row for row in rows if not (isinstance(row[spec.primary_key], int) and row[spec.primary_key] < 0)]


def dropped(spec: TableSpec) -> Set[str]:
    return PIVOTED[spec.custom_fields] if spec.custom_fields else set()


def distinct_keys(spec: TableSpec) -> int:
    return len({json.dumps(row[spec.primary_key]) for row in recorded_rows(spec)})


#: Custom-field columns the recorded field definitions type, per table.
CUSTOM_COLUMNS = {
    "tickets": {"custom_order_number": "bigint", "custom_contract": "text"},
    "users": {
        "custom_custom_field_1": "text",
        "custom_user_date": "date",
        "custom_user_decimal": "double",
        "custom_user_dropdown": "text",
    },
    "organizations": {
        "custom_datepudding": "date",
        "custom_org_field_1": "text",
        "custom_org_field_2": "text",
    },
}


def expected_kind(values: Iterable[Any]) -> Optional[str]:
    """What dlt must make of a field with these values: a dlt type, "object", "list", or
    None when no row carries a value (dlt makes a column when the first value arrives)."""
    present = [v for v in values if v is not None and v != [] and v != {}]
    if not present:
        return None
    if all(isinstance(v, dict) for v in present):
        return "object"
    if all(isinstance(v, list) for v in present):
        return "list"
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "bigint"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "double"
    if all(isinstance(v, str) and _ISO_DATETIME.match(v) for v in present):
        return "timestamp"
    if all(isinstance(v, str) for v in present):
        return "text"
    return "json"


def _fields(rows: List[Row]) -> Dict[str, List[Any]]:
    fields: Dict[str, List[Any]] = {}
    for row in rows:
        for key, value in row.items():
            fields.setdefault(key, []).append(value)
    return fields


@pytest.fixture
def loaded(recorded: FixtureZendesk, make_pipeline: Callable[..., Any]) -> Any:
    pipeline = make_pipeline("recorded")
    run_recorded(pipeline, recorded, tables=[spec.name for spec in TABLES])
    return pipeline


def test_every_recorded_field_lands_as_a_typed_column(loaded: Any) -> None:
    tables = column_types(loaded)
    for spec in TABLES:
        table, rows = spec.name, recorded_rows(spec)
        assert rows, f"no recorded rows for {table}"
        columns = tables.get(table)
        assert columns, f"{table} was not loaded"
        count = query(loaded, f"select count(*) from {{t:{table}}}")[0][0]
        assert count == distinct_keys(spec), table
        for field, values in _fields(rows).items():
            if field in dropped(spec):
                continue
            kind = expected_kind(values)
            name = field
            if kind is None:
                continue
            if kind == "object":
                flattened = any(c.startswith(f"{name}__") for c in columns)
                nested = any(t.startswith(f"{table}__{name}__") for t in tables)
                assert name in columns or flattened or nested, (table, field)
            elif kind == "list":
                assert f"{table}__{name}" in tables or columns.get(name) == "JSON", (table, field)
            else:
                assert columns.get(name) == DUCKDB_TYPES[kind], (table, field, columns.get(name), kind)


def test_custom_fields_land_typed(loaded: Any) -> None:
    tables = column_types(loaded)
    for table, expected in CUSTOM_COLUMNS.items():
        for column, data_type in expected.items():
            assert tables[table].get(column) == DUCKDB_TYPES[data_type], (table, column, tables[table].get(column))
    assert query(loaded, "select custom_order_number, custom_contract from {t:tickets} where id = 35436") == [
        (745, "yes")
    ]


def test_native_custom_prefixed_columns_keep_zendesk_values(loaded: Any) -> None:
    assert query(loaded, "select custom_status_id from {t:tickets} where id = 28") == [(6130830355738,)]
    assert query(loaded, "select custom_role_id from {t:users} where id = 6130907993114") == [(6130869137434,)]


def test_dropped_fields_are_the_documented_ones(loaded: Any) -> None:
    """Each field dropped by design is named in docs/tables.md's section for its table."""
    for spec in TABLES:
        for field in dropped(spec):
            assert f"`{field}`" in table_section(spec.name), (spec.name, field)


def test_the_docs_say_what_the_tags_table_holds() -> None:
    """/tags is Zendesk's popularity list, not every tag: the table docs must say so."""
    text = " ".join(table_section("tags").split())
    assert "up to the 20,000 most popular tags in the last 60 days" in text
    assert "tickets__tags" in text


#: Values whose JSON type varies from row to row: (table, rows) -> every value as JSON text.
JSON_VALUES = [
    pytest.param(
        "macros__actions",
        "_dlt_parent_id = (select _dlt_id from {t:macros} where id = 166717989)",
        {'"open"', "false", "6130852536346", '["tier2","escalated"]', "true"},
        id="macro-actions",
    ),
    pytest.param(
        "sla_policies__filter__all",
        "field in ('via_id', 'organization_id', 'type')",
        {"4", "509974", '"incident"'},
        id="sla-filter-all",
    ),
    pytest.param(
        "sla_policies__filter__any",
        "true",
        {'["vip","enterprise"]', "true"},
        id="sla-filter-any",
    ),
    pytest.param(
        "ticket_audits__events",
        "value is not null",
        {'["sample","support","zendesk"]', '"235323"', '"solved"', "true", "509974"},
        id="audit-event-values",
    ),
]


@pytest.mark.parametrize("table, where, expected", JSON_VALUES)
def test_mixed_type_values_keep_their_json_form(loaded: Any, table: str, where: str, expected: Set[str]) -> None:
    types = column_types(loaded)
    assert [c for c in types[table] if c.startswith("value")] == ["value"], "one column, no variants"
    assert types[table]["value"] == "VARCHAR"
    assert not any(t.startswith(f"{table}__value") for t in types), "list values must not move to a child table"
    values = {v for (v,) in query(loaded, f"select value from {{t:{table}}} where {where}")}
    assert values == expected
    assert all(json.loads(v) is not None for v in values)


def test_audits_from_events_keep_every_export_field(loaded: Any) -> None:
    rows = query(
        loaded,
        "select id, timestamp, event_type, via_reference_id, comment_present, comment_public, via__channel"
        " from {t:ticket_audits} order by id",
    )
    assert rows == [
        (1717, 1385614390, "Audit", 2, False, False, "Email"),
        (91048994468, 1245924918, "Audit", None, True, True, "Web form"),
    ]


def _as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def test_ids_and_timestamps_round_trip(loaded: Any) -> None:
    """Values, not only types: a 13-digit id and an ISO time come back as Zendesk sent them."""
    (created, requester), = query(loaded, "select created_at, requester_id from {t:tickets} where id = 28")
    assert (_as_text(created), requester) == ("2023-09-18T15:57:42+00:00", 6130907993114)



@pytest.mark.postgres
def test_recorded_payloads_load_into_postgres(recorded: FixtureZendesk, make_pipeline: Callable[..., Any]) -> None:
    """The same payloads into Postgres: JSON-text values and merges work there too."""
    dataset = f"zendesk_{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline(name="recorded_pg", destination=dlt.destinations.postgres(POSTGRES_URL), dataset=dataset)
    try:
        run_recorded(pipeline, recorded, tables=[spec.name for spec in TABLES])
        values = {v for (v,) in query(pipeline, "select value from {t:sla_policies__filter__any}")}
        assert values == {'["vip","enterprise"]', "true"}
        for spec in TABLES:
            assert query(pipeline, f"select count(*) from {{t:{spec.name}}}") == [(distinct_keys(spec),)], spec.name
    finally:
        with pipeline.sql_client() as client:
            client.drop_dataset()
