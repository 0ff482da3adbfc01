"""Custom-field columns never take a native column's name, with Zendesk's real-shaped
ticket and user: their own `custom_status_id` and `custom_role_id` keep Zendesk's values
whatever the account's custom fields are called, across runs and renames."""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict

from tests.contract.fixture_server import run_recorded
from tests.helpers import column_types, query
from tests.contract.fixture_server import FixtureZendesk, load
from zendesk.tables.registry import NATIVE_COLUMNS

STATUS_ID_FIELD = 5
TICKET = 28  # recorded with custom_status_id 6130830355738
ADMIN = 6130907993114  # recorded with custom_role_id 6130869137434


def _payloads(status_title: str = "Status ID", changed: bool = False) -> Dict[str, Dict[str, Any]]:
    """The recorded payloads plus a ticket field titled "Status ID" and a user field keyed
    `role_id`, with values on the recorded ticket and admin. `changed`: the export has
    moved on since the last run (a new cursor), so its tickets come again."""
    ticket_fields = load("ticket_fields")
    field = copy.deepcopy(ticket_fields["ticket_fields"][1])
    field.update({"id": STATUS_ID_FIELD, "title": status_title, "raw_title": status_title, "type": "integer"})
    ticket_fields["ticket_fields"].append(field)
    tickets = load("incremental_tickets_cursor")
    if changed:
        tickets["after_cursor"] += "2"
    for ticket in tickets["tickets"]:
        if ticket["id"] == TICKET:
            ticket["custom_fields"] = [{"id": STATUS_ID_FIELD, "value": "5"}]
            ticket["fields"] = ticket["custom_fields"]
    user_fields = load("user_fields")
    role = copy.deepcopy(user_fields["user_fields"][0])
    role.update({"id": 11, "key": "role_id", "title": "Role ID", "type": "integer"})
    user_fields["user_fields"].append(role)
    users = load("incremental_users_cursor")
    for user in users["users"]:
        if user["id"] == ADMIN:
            user["user_fields"] = {"role_id": "77"}
    return {
        "/ticket_fields": ticket_fields,
        "/incremental/tickets/cursor": tickets,
        "/user_fields": user_fields,
        "/incremental/users/cursor": users,
    }


def _run(make_pipeline: Callable[..., Any], payloads: Dict[str, Dict[str, Any]], pipeline: Any = None) -> Any:
    server = FixtureZendesk(payloads).start()
    try:
        pipeline = pipeline or make_pipeline("custom_columns")
        run_recorded(pipeline, server)
        return pipeline
    finally:
        server.stop()


def _custom(pipeline: Any, kind: str) -> Dict[str, str]:
    columns: Dict[str, str] = pipeline.state["sources"]["zendesk"]["custom_field_columns"][kind]
    return columns


def test_native_columns_keep_zendesk_values_next_to_colliding_custom_fields(make_pipeline: Callable[..., Any]) -> None:
    pipeline = _run(make_pipeline, _payloads())

    status_column = _custom(pipeline, "ticket")[str(STATUS_ID_FIELD)]
    role_column = _custom(pipeline, "user")["role_id"]
    assert status_column not in ("custom_status_id",) and status_column.startswith("custom_status_id")
    assert role_column != "custom_role_id" and role_column.startswith("custom_role_id")
    assert query(pipeline, f"select custom_status_id, {status_column} from {{t:tickets}} where id = {TICKET}") == [
        (6130830355738, 5)
    ]
    assert query(pipeline, f"select custom_role_id, {role_column} from {{t:users}} where id = {ADMIN}") == [
        (6130869137434, 77)
    ]
    types = column_types(pipeline)
    assert types["tickets"]["custom_status_id"] == types["tickets"][status_column] == "BIGINT"


def test_a_renamed_field_keeps_its_column_and_never_takes_a_native_name(make_pipeline: Callable[..., Any]) -> None:
    pipeline = _run(make_pipeline, _payloads("Status ID"))
    first = _custom(pipeline, "ticket")[str(STATUS_ID_FIELD)]

    _run(make_pipeline, _payloads("Brand ID", changed=True), pipeline)  # renamed to another native's name

    assert _custom(pipeline, "ticket")[str(STATUS_ID_FIELD)] == first
    row = query(
        pipeline, f"select custom_status_id, brand_id, {first}, _dlt_load_id from {{t:tickets}} where id = {TICKET}"
    )[0]
    assert row[:3] == (6130830355738, 6130830354842, 5)
    loads = query(pipeline, "select load_id from {t:_dlt_loads} order by load_id")
    assert len(loads) == 2 and row[3] == loads[-1][0], "the second run must have loaded the ticket again"


def test_the_reserved_native_names_cover_every_recorded_field() -> None:
    """settings.NATIVE_COLUMNS is the documented list; the recordings must not hold a
    native field it lacks (the source reserves such fields as they arrive, but a first run
    would then name a custom column before seeing them)."""
    recorded = {
        "ticket": (load("incremental_tickets_cursor")["tickets"], {"custom_fields", "fields", "metric_set"}),
        "user": (load("incremental_users_cursor")["users"], {"user_fields"}),
        "organization": (load("incremental_organizations")["organizations"], {"organization_fields"}),
    }
    for kind, (rows, attributes) in recorded.items():
        fields = {key for row in rows for key in row} - attributes
        assert fields <= NATIVE_COLUMNS[kind], (kind, sorted(fields - NATIVE_COLUMNS[kind]))
