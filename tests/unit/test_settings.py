"""tables/registry.py (the table registry) and the registry-facing helpers of zendesk/__init__.py."""

from __future__ import annotations

from typing import Optional, Tuple

import pytest

from zendesk import TABLE_NAMES, marketplace_headers, select_tables
from zendesk.errors import ZendeskConfigError
from zendesk.tables.registry import (
    EXPORT_PAGE_SIZE,
    LIST_PAGE_SIZE,
    TABLES,
    TABLES_BY_NAME,
    FIELD_DEFINITIONS,
    GROUPS,
    ChangeDetection,
    Pagination,
    dlt_write_disposition,
    needs_conversation_log,
    reader_of,
    siblings,
    state_holder,
)

HISTORY = {"ticket_field_history", "ticket_tag_history"}
#: The tables made from the ticket events export, in registry order.
EVENT_TABLES = ("ticket_comments", "ticket_audits", "ticket_field_history", "ticket_tag_history")
EXPORTS = (Pagination.CURSOR_EXPORT, Pagination.TIME_EXPORT)
SPECS = [pytest.param(spec, id=spec.name) for spec in TABLES]

#: The write dispositions each way of detecting changes allows.
DISPOSITIONS = {
    ChangeDetection.EXPORT_CURSOR: {"merge", "insert-only"},
    ChangeDetection.SERVER_START_TIME: {"merge"},
    ChangeDetection.FINGERPRINT: {"merge"},
    ChangeDetection.REPLACE: {"replace"},
    ChangeDetection.CREATED_SINCE: {"insert-only"},
}


def test_table_names_are_unique_and_public() -> None:
    """The public list (README, docs/tables.md) is checked against the registry by
    tests/test_docs.py; here: one entry per name, in registry order."""
    names = [spec.name for spec in TABLES]
    assert len(names) == len(set(names))
    assert list(TABLES_BY_NAME) == names
    assert TABLE_NAMES == names


@pytest.mark.parametrize("spec", SPECS)
def test_write_disposition_fits_change_detection(spec) -> None:  # type: ignore[no-untyped-def]
    assert spec.write_disposition in DISPOSITIONS[spec.change_detection]


def test_write_dispositions_of_the_special_tables() -> None:
    assert TABLES_BY_NAME["ticket_audits"].write_disposition == "insert-only"
    assert {s.name for s in TABLES if s.write_disposition == "insert-only"} >= {"ticket_audits", *HISTORY}


@pytest.mark.parametrize(
    "table, hint",
    [
        pytest.param("groups", "merge", id="merge"),
        pytest.param("tags", "replace", id="replace"),
        pytest.param("ticket_audits", {"disposition": "merge", "strategy": "insert-only"}, id="insert-only"),
        pytest.param(
            "ticket_metrics",
            {
                "disposition": "merge",
                "strategy": "delete-insert",
                "destination_scope": "ticket_id IN (SELECT ticket_id FROM {staging_table})",
                "source_filter": "id > 0",
            },
            id="merge-hints",
        ),
    ],
)
def test_dlt_write_disposition(table: str, hint: object) -> None:
    assert dlt_write_disposition(TABLES_BY_NAME[table]) == hint


def test_per_ticket_mode_moves_audits_to_the_ticket_export() -> None:
    assert reader_of("ticket_audits") == "ticket_events"
    assert reader_of("ticket_audits", "per_ticket") == "ticket_export"
    assert siblings("ticket_audits", "per_ticket") == ("tickets", "ticket_metrics", "ticket_audits")
    assert reader_of("ticket_comments", "per_ticket") == "ticket_events"


def test_ticket_fields_table_is_the_ticket_field_definitions() -> None:
    spec = TABLES_BY_NAME["ticket_fields"]
    assert FIELD_DEFINITIONS["ticket"] == (spec.endpoint, spec.plan_gated)
    assert FIELD_DEFINITIONS["user"][1] and FIELD_DEFINITIONS["organization"][1]
    assert {s.custom_fields for s in TABLES if s.custom_fields} == set(FIELD_DEFINITIONS)


@pytest.mark.parametrize("spec", SPECS)
def test_primary_key(spec) -> None:  # type: ignore[no-untyped-def]
    assert spec.primary_key == ("name" if spec.name == "tags" else "id")


@pytest.mark.parametrize(
    "table, cursor",
    [
        pytest.param("tickets", "generated_timestamp", id="tickets"),
        pytest.param("ticket_metric_events", "time", id="ticket_metric_events"),
        pytest.param("ticket_audits", "created_at", id="ticket_audits"),
        pytest.param("ticket_comments", "created_at", id="ticket_comments"),
        pytest.param("users", "updated_at", id="users"),
        pytest.param("organizations", "updated_at", id="organizations"),
        pytest.param("satisfaction_ratings", "updated_at", id="satisfaction_ratings"),
    ],
)
def test_cursor_fields(table: str, cursor: str) -> None:
    assert TABLES_BY_NAME[table].cursor == cursor


def test_replace_tables_use_replace_change_detection() -> None:
    replaced = {s.name for s in TABLES if s.write_disposition == "replace"}
    assert replaced == {s.name for s in TABLES if s.change_detection is ChangeDetection.REPLACE}


@pytest.mark.parametrize("spec", SPECS)
def test_page_sizes_1000_for_exports_100_for_lists(spec) -> None:  # type: ignore[no-untyped-def]
    expected = 1000 if spec.endpoint.pagination in EXPORTS else 100
    assert spec.endpoint.page_size == expected


def test_page_size_constants_are_zendesk_maximums() -> None:
    assert EXPORT_PAGE_SIZE == 1000
    assert LIST_PAGE_SIZE == 100


def test_export_tables_are_the_incremental_ones() -> None:
    exports = {s.name for s in TABLES if s.endpoint.pagination in EXPORTS}
    assert exports == {
        "tickets",
        "ticket_metrics",
        "ticket_comments",
        "ticket_audits",
        "ticket_metric_events",
        "users",
        "user_identities",
        "organizations",
        *HISTORY,
        "help_center_articles",
        "talk_calls",
        "talk_legs",
        "side_conversation_events",
    }
    for name in exports:
        assert "/incremental/" in TABLES_BY_NAME[name].endpoint.path or name == "side_conversation_events"


def test_plan_gated_tables() -> None:
    gated = {s.name for s in TABLES if s.plan_gated}
    assert {"sla_policies", "ticket_forms", "satisfaction_ratings", "talk_phone_numbers", "audit_logs"} <= gated
    assert {s.name for s in TABLES if s.group in ("help_center", "talk")} <= gated
    assert not any(s.endpoint.pagination in EXPORTS for s in TABLES if s.plan_gated and s.default and s.group is None), (
        "every plan has the exports a default run reads"
    )


@pytest.mark.parametrize(
    "table, expected",
    [
        pytest.param("tickets", ("tickets", "ticket_metrics"), id="tickets"),
        pytest.param("ticket_metrics", ("tickets", "ticket_metrics"), id="ticket_metrics"),
        pytest.param("ticket_comments", EVENT_TABLES, id="ticket_comments"),
        pytest.param("ticket_audits", EVENT_TABLES, id="ticket_audits"),
        pytest.param("ticket_tag_history", EVENT_TABLES, id="ticket_tag_history"),
        pytest.param("users", ("users", "user_identities"), id="users-with-identities"),
        pytest.param("groups", ("groups",), id="groups-alone"),
    ],
)
def test_siblings(table: str, expected: Tuple[str, ...]) -> None:
    assert siblings(table) == expected


@pytest.mark.parametrize(
    "table, holder",
    [
        pytest.param("tickets", "ticket_export", id="tickets"),
        pytest.param("ticket_metrics", "ticket_export", id="ticket_metrics"),
        pytest.param("ticket_audits", "ticket_events", id="ticket_audits"),
        pytest.param("ticket_metric_events", "ticket_metric_events", id="metric-events"),
        pytest.param("organizations", "organizations", id="organizations"),
        pytest.param("groups", None, id="groups-not-export"),
        pytest.param("tags", None, id="tags-not-export"),
    ],
)
def test_state_holder(table: str, holder: Optional[str]) -> None:
    assert state_holder(table) == holder


# --- zendesk/__init__.py: select_tables, marketplace_headers -----------------------------


@pytest.mark.parametrize("requested", [pytest.param(None, id="none"), pytest.param([], id="empty")])
def test_select_tables_default_is_every_default_table(requested: object) -> None:
    assert select_tables(requested) == [spec.name for spec in TABLES if spec.default]  # type: ignore[arg-type]
    assert "help_center_articles" not in select_tables(requested)  # type: ignore[arg-type]


def test_add_on_products_are_off_by_default_and_grouped() -> None:
    for spec in TABLES:
        if spec.group in ("help_center", "talk") and spec.name != "talk_phone_numbers":
            assert not spec.default and spec.plan_gated, spec.name
    assert set(GROUPS) == {"activity", "help_center", "talk"}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_select_tables_by_group(group: str) -> None:
    """A group selects its tables, and the siblings they share an export with."""
    selected = select_tables([group])
    assert [t for t in selected if t in GROUPS[group]] == [spec.name for spec in TABLES if spec.group == group]
    assert set(selected) - set(GROUPS[group]) == {s for t in GROUPS[group] for s in siblings(t)} - set(GROUPS[group])


def test_select_tables_mixes_groups_and_tables() -> None:
    assert select_tables(["groups", "talk", "talk_calls"]) == ["groups", *GROUPS["talk"]]


def test_unknown_name_lists_the_groups_too() -> None:
    with pytest.raises(ZendeskConfigError) as info:
        select_tables(["helpcenter"])
    message = str(info.value)
    assert "\n" not in message
    assert "helpcenter" in message and "help_center_articles" in message
    assert f"groups: {', '.join(GROUPS)}." in message


def test_select_tables_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ZendeskConfigError) as info:
        select_tables(["tickets", "tikets", "agents"])
    message = str(info.value)
    assert "tikets, agents" in message
    for name in TABLE_NAMES:
        assert name in message


@pytest.mark.parametrize(
    "requested, expected",
    [
        pytest.param(["ticket_metrics"], ["tickets", "ticket_metrics"], id="metrics-adds-tickets"),
        pytest.param(["tickets"], ["tickets", "ticket_metrics"], id="tickets-adds-metrics"),
        pytest.param(["ticket_audits"], list(EVENT_TABLES), id="audits-adds-comments-and-history"),
        pytest.param(["groups", "tags"], ["groups", "tags"], id="plain-tables"),
        pytest.param(["tickets", "ticket_metrics", "tickets"], ["tickets", "ticket_metrics"], id="no-duplicates"),
    ],
)
def test_select_tables_adds_siblings(requested: list, expected: list) -> None:
    assert select_tables(requested) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param((None, None, None), {}, id="none-set"),
        pytest.param(("", "", ""), {}, id="empty-strings"),
        pytest.param(("Acme Sync", None, None), {"X-Zendesk-Marketplace-Name": "Acme Sync"}, id="name-only"),
        pytest.param(
            ("Acme Sync", 4242, "77"),
            {
                "X-Zendesk-Marketplace-Name": "Acme Sync",
                "X-Zendesk-Marketplace-Organization-Id": "4242",
                "X-Zendesk-Marketplace-App-Id": "77",
            },
            id="all-set-stringified",
        ),
        pytest.param((None, None, "77"), {"X-Zendesk-Marketplace-App-Id": "77"}, id="app-id-only"),
    ],
)
def test_marketplace_headers_only_set_ones(args: tuple, expected: dict) -> None:
    assert marketplace_headers(*args) == expected


@pytest.mark.parametrize(
    "ticket, needs",
    [
        pytest.param({"via": {"channel": "native_messaging"}}, True, id="messaging"),
        pytest.param({"via": {"channel": "chat"}}, True, id="legacy-chat"),
        pytest.param({"via": {"channel": "whatsapp"}}, True, id="whatsapp"),
        pytest.param({"via": {"channel": "email"}, "from_messaging_channel": True}, True, id="flagged-by-zendesk"),
        pytest.param({"via": {"channel": "email"}, "from_messaging_channel": False}, False, id="email"),
        pytest.param({"via": {"channel": "web"}}, False, id="web"),
        pytest.param({"via": None}, False, id="no-via"),
        pytest.param({}, False, id="nothing"),
    ],
)
def test_the_conversation_log_is_asked_for_chat_and_messaging_tickets_only(ticket: dict, needs: bool) -> None:
    assert needs_conversation_log(ticket) is needs
    per_ticket = TABLES_BY_NAME["ticket_conversation_logs"].per_ticket
    assert per_ticket is not None and per_ticket.needs is needs_conversation_log


def test_a_table_read_only_per_ticket_needs_the_tickets_but_they_never_need_it() -> None:
    assert siblings("side_conversations") == ("tickets", "ticket_metrics", "side_conversations")
    assert "side_conversations" not in siblings("tickets")
    assert "side_conversations" not in select_tables(None) and "side_conversations" not in select_tables(["tickets"])
    assert reader_of("ticket_conversation_logs") == "ticket_export"
