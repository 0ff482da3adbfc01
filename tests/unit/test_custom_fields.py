"""custom_fields.py: typed custom-field columns (FieldCatalog)."""

from __future__ import annotations

from typing import Any, Dict, List

import dlt
import pytest

from zendesk.tables.custom_fields import FIELD_TYPES, FieldCatalog, _coerce

# One ticket field of every custom type Zendesk has, plus system fields to skip.
TICKET_FIELDS: List[Dict[str, Any]] = [
    {"id": 1, "type": "subject", "title": "Subject"},
    {"id": 2, "type": "status", "title": "Status"},
    {"id": 101, "type": "text", "title": "Short Note"},
    {"id": 102, "type": "textarea", "title": "Long Note"},
    {"id": 103, "type": "regexp", "title": "Serial"},
    {"id": 104, "type": "partialcreditcard", "title": "Card"},
    {"id": 105, "type": "tagger", "title": "Region"},
    {"id": 106, "type": "checkbox", "title": "Is VIP"},
    {"id": 107, "type": "integer", "title": "Order Number"},
    {"id": 108, "type": "decimal", "title": "Amount"},
    {"id": 109, "type": "date", "title": "Due Date"},
    {"id": 110, "type": "multiselect", "title": "Products"},
    {"id": 111, "type": "lookup", "title": "Linked Order"},
]


def ticket_catalog(state: Dict[str, str] | None = None, fields: List[Dict[str, Any]] = TICKET_FIELDS) -> FieldCatalog:
    return FieldCatalog("ticket", fields, {} if state is None else state)


@pytest.mark.parametrize(
    "zendesk_type, dlt_type",
    [
        pytest.param("text", "text", id="text"),
        pytest.param("textarea", "text", id="textarea"),
        pytest.param("regexp", "text", id="regexp"),
        pytest.param("partialcreditcard", "text", id="partialcreditcard"),
        pytest.param("tagger", "text", id="tagger"),
        pytest.param("dropdown", "text", id="dropdown"),
        pytest.param("checkbox", "bool", id="checkbox"),
        pytest.param("integer", "bigint", id="integer"),
        pytest.param("lookup", "bigint", id="lookup"),
        pytest.param("decimal", "double", id="decimal"),
        pytest.param("date", "date", id="date"),
        pytest.param("multiselect", "json", id="multiselect"),
    ],
)
def test_field_type_maps_to_dlt_type(zendesk_type: str, dlt_type: str) -> None:
    assert FIELD_TYPES[zendesk_type] == dlt_type
    catalog = ticket_catalog(fields=[{"id": 7, "type": zendesk_type, "title": "F"}])
    assert catalog.column_for(7) == ("custom_f", dlt_type)
    assert catalog.column_hints()["custom_f"]["data_type"] == dlt_type


@pytest.mark.parametrize(
    "field_id, raw, expected",
    [
        pytest.param(107, "745", 745, id="integer-string"),
        pytest.param(107, 745, 745, id="integer-int"),
        pytest.param(107, 745.0, 745, id="integer-whole-float"),
        pytest.param(108, "12.50", 12.5, id="decimal-string"),
        pytest.param(108, 3, 3.0, id="decimal-int"),
        pytest.param(106, "true", True, id="checkbox-true-string"),
        pytest.param(106, True, True, id="checkbox-true"),
        pytest.param(106, "false", False, id="checkbox-false-string"),
        pytest.param(106, False, False, id="checkbox-false"),
        pytest.param(109, "2024-03-01", "2024-03-01", id="date-stays-date-string"),
        pytest.param(109, "2024-03-01T00:00:00Z", "2024-03-01", id="date-from-datetime"),
        pytest.param(110, ["a", "b"], ["a", "b"], id="multiselect-list"),
        pytest.param(110, "a", ["a"], id="multiselect-scalar-wrapped"),
        pytest.param(111, "123", 123, id="lookup-string"),
        pytest.param(101, "hello", "hello", id="text"),
        pytest.param(101, 42, "42", id="text-from-number"),
        pytest.param(105, "emea", "emea", id="tagger"),
        pytest.param(107, None, None, id="null-integer"),
        pytest.param(106, None, None, id="null-checkbox"),
        pytest.param(101, "", None, id="empty-text-is-null"),
    ],
)
def test_pivot_coerces_values(field_id: int, raw: Any, expected: Any) -> None:
    catalog = ticket_catalog()
    column, _ = catalog.column_for(field_id)
    row = catalog.pivot({"id": 1, "custom_fields": [{"id": field_id, "value": raw}]})
    assert row[column] == expected
    assert type(row[column]) is type(expected)


@pytest.mark.parametrize(
    "data_type, raw",
    [
        pytest.param("bigint", "abc", id="integer-letters"),
        pytest.param("bigint", "12.5", id="integer-fraction"),
        pytest.param("double", "n/a", id="decimal-letters"),
        pytest.param("bool", "maybe", id="checkbox-word"),
        pytest.param("date", "someday soon", id="date-words"),
        pytest.param("date", "not-a-date-value", id="date-long-garbage"),
    ],
)
def test_unparseable_value_is_kept_as_sent(data_type: str, raw: Any) -> None:
    # Documented contract (custom_fields._coerce): "A value that does not fit is kept as sent".
    assert _coerce(raw, data_type) == raw


def test_system_ticket_fields_get_no_column() -> None:
    catalog = ticket_catalog()
    hints = catalog.column_hints()
    assert "custom_subject" not in hints
    assert "custom_status" not in hints
    assert len(hints) == 11


def test_column_names_are_custom_snake_title() -> None:
    state: Dict[str, str] = {}
    ticket_catalog(state)
    assert state["107"] == "custom_order_number"
    assert state["106"] == "custom_is_vip"
    assert state["109"] == "custom_due_date"
    assert state["111"] == "custom_linked_order"


def test_same_title_gets_distinct_columns_second_with_id() -> None:
    fields = [
        {"id": 500, "type": "text", "title": "Reason"},
        {"id": 501, "type": "integer", "title": "Reason"},
    ]
    state: Dict[str, str] = {}
    catalog = ticket_catalog(state, fields)
    assert state == {"500": "custom_reason", "501": "custom_reason_501"}
    row = catalog.pivot({"custom_fields": [{"id": 500, "value": "x"}, {"id": 501, "value": "9"}]})
    assert row["custom_reason"] == "x"
    assert row["custom_reason_501"] == 9


def test_suffixed_column_never_collides_with_an_existing_one() -> None:
    # "Foo 2" takes custom_foo_2; the second "Foo" (id 2) must not take custom_foo_2 too.
    fields = [
        {"id": 1, "type": "text", "title": "Foo"},
        {"id": 3, "type": "text", "title": "Foo 2"},
        {"id": 2, "type": "integer", "title": "Foo"},
    ]
    state: Dict[str, str] = {}
    ticket_catalog(state, fields)
    assert len(set(state.values())) == 3, state


def test_renamed_field_keeps_its_column_with_same_state() -> None:
    state: Dict[str, str] = {}
    ticket_catalog(state, [{"id": 900, "type": "integer", "title": "Old Name"}])
    renamed = ticket_catalog(state, [{"id": 900, "type": "integer", "title": "New Name"}])
    assert renamed.column_for(900) == ("custom_old_name", "bigint")
    assert state == {"900": "custom_old_name"}
    row = renamed.pivot({"custom_fields": [{"id": 900, "value": "5"}]})
    assert row == {"custom_old_name": 5}


def test_new_field_with_a_renamed_fields_old_title_gets_another_column() -> None:
    state: Dict[str, str] = {}
    ticket_catalog(state, [{"id": 900, "type": "text", "title": "Topic"}])
    catalog = ticket_catalog(
        state,
        [{"id": 900, "type": "text", "title": "Old Topic"}, {"id": 901, "type": "text", "title": "Topic"}],
    )
    assert catalog.column_for(900)[0] == "custom_topic"
    assert catalog.column_for(901)[0] == "custom_topic_901"


def test_ticket_pivot_drops_fields_duplicate_and_custom_fields() -> None:
    catalog = ticket_catalog()
    row = catalog.pivot(
        {
            "id": 1,
            "subject": "Hi",
            "custom_fields": [{"id": 107, "value": "1"}],
            "fields": [{"id": 107, "value": "1"}],
        }
    )
    assert row == {"id": 1, "subject": "Hi", "custom_order_number": 1}


def test_field_unknown_to_catalog_gets_its_own_untyped_column() -> None:
    catalog = ticket_catalog()
    assert catalog.column_for(424242) == ("custom_424242", None)
    row = catalog.pivot({"custom_fields": [{"id": 424242, "value": "017"}]})
    assert row["custom_424242"] == "017"
    assert "custom_424242" not in catalog.column_hints()


def test_missing_or_null_custom_fields_leave_record_unchanged() -> None:
    catalog = ticket_catalog()
    assert catalog.pivot({"id": 1}) == {"id": 1}
    assert catalog.pivot({"id": 2, "custom_fields": None}) == {"id": 2}


def test_user_fields_keyed_by_key() -> None:
    definitions = [
        {"id": 9001, "key": "favorite_color", "type": "dropdown", "title": "Favorite Color!"},
        {"id": 9002, "key": "seats", "type": "integer", "title": "Seats"},
        {"id": 9003, "key": "vip", "type": "checkbox", "title": "VIP"},
        {"id": 9004, "key": "geo", "type": "geo_point", "title": "Location"},
    ]
    state: Dict[str, str] = {}
    catalog = FieldCatalog("user", definitions, state)
    assert state == {
        "favorite_color": "custom_favorite_color",
        "seats": "custom_seats",
        "vip": "custom_vip",
        "geo": "custom_geo",
    }
    row = catalog.pivot(
        {"id": 5, "user_fields": {"favorite_color": "blue", "seats": "12", "vip": "true", "geo": [1, 2]}}
    )
    assert row == {
        "id": 5,
        "custom_favorite_color": "blue",
        "custom_seats": 12,
        "custom_vip": True,
        "custom_geo": [1, 2],
    }


def test_organization_fields_keyed_by_key() -> None:
    catalog = FieldCatalog(
        "organization", [{"id": 1, "key": "tier", "type": "decimal", "title": "Tier"}], {}
    )
    row = catalog.pivot({"id": 8, "organization_fields": {"tier": "2.5"}, "user_fields": {"x": 1}})
    assert row["custom_tier"] == 2.5
    assert "organization_fields" not in row
    assert row["user_fields"] == {"x": 1}


def test_column_hints_only_typed_columns() -> None:
    catalog = FieldCatalog(
        "user",
        [
            {"key": "seats", "type": "integer"},
            {"key": "geo", "type": "geo_point"},
        ],
        {},
    )
    assert catalog.column_hints() == {
        "custom_seats": {"name": "custom_seats", "data_type": "bigint", "nullable": True}
    }


def test_column_types_in_duckdb(tmp_path: Any) -> None:
    catalog = ticket_catalog()
    records = [
        {
            "id": 1,
            "custom_fields": [
                {"id": 106, "value": "true"},
                {"id": 107, "value": "745"},
                {"id": 108, "value": "12.50"},
                {"id": 109, "value": "2024-03-01"},
                {"id": 110, "value": ["red", "blue"]},
                {"id": 111, "value": "123"},
                {"id": 101, "value": "note"},
            ],
        },
        # all nulls on the second row: the typed columns must still exist with their types
        {"id": 2, "custom_fields": [{"id": 106, "value": None}, {"id": 110, "value": None}]},
    ]

    @dlt.resource(name="tickets", primary_key="id")
    def tickets() -> Any:
        rows = [catalog.pivot(dict(r)) for r in records]
        yield dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=catalog.column_hints()))

    pipeline = dlt.pipeline(
        pipeline_name="cf_types",
        destination=dlt.destinations.duckdb(str(tmp_path / "x.duckdb")),
        pipelines_dir=str(tmp_path),
        dataset_name="cf",
    )
    pipeline.run(tickets())

    columns = pipeline.default_schema.get_table_columns("tickets")
    assert {name: columns[name]["data_type"] for name in columns if name.startswith("custom_")} == {
        "custom_is_vip": "bool",
        "custom_order_number": "bigint",
        "custom_amount": "double",
        "custom_due_date": "date",
        "custom_products": "json",
        "custom_linked_order": "bigint",
        "custom_short_note": "text",
        "custom_long_note": "text",
        "custom_serial": "text",
        "custom_card": "text",
        "custom_region": "text",
    }
    with pipeline.sql_client() as client:
        db_types = dict(
            client.execute_sql(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'cf' and table_name = 'tickets'"
            )
        )
        assert db_types["custom_is_vip"] == "BOOLEAN"
        assert db_types["custom_order_number"] == "BIGINT"
        assert db_types["custom_amount"] == "DOUBLE"
        assert db_types["custom_due_date"] == "DATE"
        assert db_types["custom_products"] == "JSON"
        values = client.execute_sql(
            "select custom_is_vip, custom_order_number, custom_amount, cast(custom_due_date as varchar),"
            " custom_linked_order from cf.tickets where id = 1"
        )
    assert values == [(True, 745, 12.5, "2024-03-01", 123)]


def test_custom_columns_never_take_a_native_name() -> None:
    """A field titled "Status ID" would be `custom_status_id`, a native ticket column."""
    fields = [{"id": 5, "type": "integer", "title": "Status ID"}, {"id": 6, "type": "text", "title": "Status"}]
    catalog = FieldCatalog("ticket", fields, {}, native_columns={"custom_status_id", "status"})
    ticket = {"id": 28, "custom_status_id": 6130830355738, "custom_fields": [{"id": 5, "value": "5"}]}
    assert catalog.pivot(ticket) == {"id": 28, "custom_status_id": 6130830355738, "custom_status_id_5": 5}


def test_a_stored_native_name_is_given_back_to_the_native_column() -> None:
    """State left by a version that let a user field keyed `role_id` take `custom_role_id`."""
    state = {"role_id": "custom_role_id"}
    fields = [{"id": 11, "type": "integer", "key": "role_id"}]
    catalog = FieldCatalog("user", fields, state, native_columns={"custom_role_id"})
    user = {"id": 1, "custom_role_id": 6130869137434, "user_fields": {"role_id": 77}}
    assert catalog.pivot(user) == {"id": 1, "custom_role_id": 6130869137434, "custom_role_id_role_id": 77}
    assert state == {"role_id": "custom_role_id_role_id"}


def test_an_undefined_field_never_takes_a_native_name() -> None:
    catalog = FieldCatalog("user", [], {}, native_columns={"custom_role_id"})
    assert catalog.column_for("role_id") == ("custom_role_id_role_id", None)
