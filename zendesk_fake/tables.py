"""The fake's table map: every table it serves, in one place.

Each `FakeTable` says where the table is served (path, data key, pagination style, order),
where its rows come from, what closes it when plan-gated, and how the ground truth keys it.
The server routes from this map, the ground truth is built from it, the fake's replica
test walks it and the benchmark derives its theoretical minimum of requests from it, so a
new list table is one line here (plus its rows: a generated list or a data file).
"""

from __future__ import annotations

import enum
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from .addons import MESSAGING_CHANNELS, addons_of, all_identities, identities_of, rows_of
from .generator import Account, Row, iso, iso_to_epoch

API = "/api/v2"


class Paging(enum.Enum):
    """How an endpoint pages, as Zendesk does it."""

    #: `start_time` then opaque `cursor`s, `end_of_stream` on the last page.
    CURSOR_EXPORT = "cursor_export"
    #: `start_time` pages; each ends at `end_time` and is widened to finish its last second.
    TIME_EXPORT = "time_export"
    #: `page[size]`/`page[after]`, offset pages (`page`, `per_page`) without them.
    CURSOR_LIST = "cursor_list"
    #: Offset pages only (`page`, `per_page`).
    OFFSET_LIST = "offset_list"
    #: Every row on one page.
    SINGLE_PAGE = "single_page"


#: The most rows one page may hold; None: one page holds everything.
PAGE_SIZES: Dict[Paging, Optional[int]] = {
    Paging.CURSOR_EXPORT: 1000,
    Paging.TIME_EXPORT: 1000,
    Paging.CURSOR_LIST: 100,
    Paging.OFFSET_LIST: 100,
    Paging.SINGLE_PAGE: None,
}

Serializer = Callable[[Mapping[str, str], Account], Callable[[Row], Row]]


def as_stored(query: Mapping[str, str], account: Account) -> Callable[[Row], Row]:
    """Rows go out as the account stores them."""
    return _same


def _same(row: Row) -> Row:
    return row


def _includes(query: Mapping[str, str]) -> List[str]:
    return query.get("include", "").split(",")


def ticket_out(query: Mapping[str, str], account: Account) -> Callable[[Row], Row]:
    """A ticket as the export serves it: `fields` repeats `custom_fields`, and
    `include=metric_sets` side-loads the ticket's metric set."""
    with_metrics = "metric_sets" in _includes(query)
    metric_sets = account.metric_sets

    def serialize(ticket: Row) -> Row:
        row = dict(ticket)
        row["fields"] = ticket["custom_fields"]
        if with_metrics:
            metric_set = metric_sets.get(ticket["id"])
            if metric_set is not None:
                row["metric_set"] = metric_set
        return row

    return serialize


def ticket_event_out(query: Mapping[str, str], account: Account) -> Callable[[Row], Row]:
    """An audit as a ticket event: its events become child events, comments only with
    `include=comment_events`."""
    with_comments = "comment_events" in _includes(query)

    def serialize(audit: Row) -> Row:
        children: List[Row] = []
        comment: Optional[Row] = None
        for event in audit["events"]:
            if event["type"] == "Comment":
                comment = event
                if not with_comments:
                    continue
            children.append({**event, "event_type": event["type"]})
        return {
            "id": audit["id"],
            "ticket_id": audit["ticket_id"],
            "timestamp": iso_to_epoch(audit["created_at"]),
            "created_at": audit["created_at"],
            "updater_id": audit["author_id"],
            "via": audit["via"]["channel"],
            "via_reference_id": None,
            "system": audit["metadata"]["system"],
            "event_type": "Audit",
            "comment_present": comment is not None,
            "comment_public": bool(comment and comment["public"]),
            "child_events": children,
        }

    return serialize


def live_metric_sets(account: Account) -> List[Row]:
    """Metric sets of the tickets that have one (deleted tickets lose theirs)."""
    return [m for t in account.tickets if (m := account.metric_sets.get(t["id"])) is not None]


def comments(account: Account) -> List[Row]:
    """Comment events of every audit, each with its ticket's id."""
    return [
        {**event, "ticket_id": audit["ticket_id"]}
        for audit in account.audits
        for event in audit["events"]
        if event["type"] == "Comment"
    ]


def _history_text(value: Any) -> Any:
    """A value as a history table holds it: strings as they are, others as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _changes(account: Account) -> Iterable[Tuple[Row, Row]]:
    """(audit, event) for every event that set a ticket field (Create or Change)."""
    for audit in account.audits:
        for event in audit["events"]:
            if event["type"] in ("Create", "Change"):
                yield audit, event


def _change_columns(audit: Row, event: Row, subject: str) -> Row:
    return {"id": f"{event['id']}:{subject}", "event_id": event["id"], "audit_id": audit["id"],
            "ticket_id": audit["ticket_id"], "updater_id": audit["author_id"], "via": audit["via"]["channel"],
            "created_at": audit["created_at"]}


def field_history(account: Account) -> List[Row]:
    """Every field a Create or Change event set: custom fields by id, the old value and the new."""
    return [
        {**_change_columns(audit, event, event["field_name"]), "field": event["field_name"], "event_type": event["type"],
         "value": _history_text(event["value"]), "previous_value": _history_text(event.get("previous_value"))}
        for audit, event in _changes(account)
    ]


def tag_history(account: Account) -> List[Row]:
    """Each tag a tags event added or removed: the difference of its new and previous lists."""
    rows = []
    for audit, event in _changes(account):
        if event["field_name"] != "tags":
            continue
        new, old = set(event["value"]), set(event.get("previous_value") or ())
        for tag, change in [(t, "added") for t in sorted(new - old)] + [(t, "removed") for t in sorted(old - new)]:
            rows.append({**_change_columns(audit, event, tag), "tag": tag, "change": change})
    return rows
#: A list's server-side filter: from the request's (name, value) pairs, which rows it keeps.
QueryFilter = Callable[[List[Tuple[str, str]]], Callable[[Row], bool]]


def created_since(pairs: List[Tuple[str, str]]) -> Callable[[Row], bool]:
    """`/activities?since=<ISO 8601>`: rows created at or after it."""
    since = dict(pairs).get("since", "")
    return lambda row: row["created_at"] >= since


def created_between(pairs: List[Tuple[str, str]]) -> Callable[[Row], bool]:
    """`/audit_logs?filter[created_at][]=<from>&filter[created_at][]=<to>`: both ends included."""
    bounds = [iso(iso_to_epoch(v.replace("Z", "+00:00"))) for k, v in pairs if k == "filter[created_at][]"]
    if not bounds:
        return lambda row: True
    low, high = bounds[0], bounds[-1]
    return lambda row: low <= row["created_at"] <= high


def live(parent: Row) -> bool:
    """A parent row Zendesk still lists children of (a deleted ticket answers 404)."""
    return parent.get("status") != "deleted"


def of_live_tickets(name: str) -> Callable[[Account], List[Row]]:
    """Add-on table `name`'s rows of tickets that are not deleted (the rows of a deleted
    ticket are gone with it)."""
    source = rows_of(name)

    def rows(account: Account) -> List[Row]:
        tickets = account.tickets
        return [row for row in source(account) if live(tickets[row["ticket_id"] - 1])]

    rows.__name__ = name
    return rows


def every_ticket(ticket: Row) -> bool:
    return True


def messaging_ticket(ticket: Row) -> bool:
    """A ticket whose messages only its conversation log holds."""
    return ticket["via"]["channel"] in MESSAGING_CHANNELS


def _attribute(name: str) -> Callable[[Account], List[Row]]:
    def rows(account: Account) -> List[Row]:
        return list(getattr(account, name))

    rows.__name__ = name
    return rows


class DataFile:
    """The rows of a fixed list table: `data/<name>.json` as the account holds it (urls
    under its own API, changes by `Account.edit_data_tables` kept).

    `parent` (table, key): the rows are listed per row of that table, whose id they hold
    under `key`; rows whose parent is gone are gone too, as in Zendesk."""

    def __init__(self, name: str, parent: Optional[Tuple[str, str]] = None) -> None:
        self.name = name
        self.parent = parent

    def __call__(self, account: Account) -> List[Row]:
        rows = account.data_table(self.name)
        if self.parent is None:
            return rows
        table, key = self.parent
        live = {row["id"] for row in TABLES_BY_NAME[table].rows(account)}
        return [row for row in rows if row[key] in live]


def renamed(stored: str, served: str) -> Serializer:
    """Rows go out with `stored` under Zendesk's name `served` (the replica renames it)."""

    def serializer(query: Mapping[str, str], account: Account) -> Callable[[Row], Row]:
        return lambda row: {served if k == stored else k: v for k, v in row.items()}

    return serializer


def without(key: str) -> Serializer:
    """Rows go out without `key` (a parent id Zendesk's answer does not repeat)."""

    def serializer(query: Mapping[str, str], account: Account) -> Callable[[Row], Row]:
        return lambda row: {k: v for k, v in row.items() if k != key}

    return serializer


@dataclass(frozen=True)
class FakeTable:
    """One table of the fake: where it is served and what a replica of it holds."""

    #: The table's name (ground truth, `plan_gated`).
    name: str
    #: Path under /api/v2.
    path: str
    data_key: str
    paging: Paging
    #: Fields the endpoint orders by; "-field" descending. Exports: (timestamp field, "id").
    order: Tuple[str, ...]
    #: The rows: those served (unless `served_by`) and those a replica holds.
    rows: Callable[[Account], Iterable[Row]]
    #: The key a replica holds the rows by (the ground truth is ordered by it).
    key: str = "id"
    #: How a served row looks (side-loads, renamed fields).
    serializer: Serializer = as_stored
    #: The table comes on another table's pages (a side-load or child events).
    served_by: Optional[str] = None
    #: Other endpoint templates that read the table: plan gating closes them too.
    more_paths: Tuple[str, ...] = ()
    #: Time exports: whether pages say `end_of_stream`.
    end_of_stream: bool = True
    #: `start_time`/`end_time` (epoch) narrow the list on the `satisfaction_time_field` switch.
    time_filtered: bool = False
    #: The list's own query filter (None: the list takes no filter).
    query_filter: Optional[QueryFilter] = None
    #: Side-loads (`include=<key>`): key -> the records to send with a page's rows.
    sideloads: Mapping[str, Callable[[Account, List[Row]], List[Row]]] = field(default_factory=dict)
    #: Listed per ticket (`/tickets/{id}/...`, rows keyed to it by `ticket_id`): which
    #: tickets a client asks, those of every channel or of some (a deleted ticket is 404).
    per_ticket: Optional[Callable[[Row], bool]] = None

    @property
    def parent(self) -> Optional[Tuple[str, str]]:
        """(parent table, key) of a table listed per parent row (the path's `{id}`)."""
        if self.per_ticket is not None:
            return ("tickets", "ticket_id")
        return self.rows.parent if isinstance(self.rows, DataFile) else None

    @property
    def template(self) -> str:
        """The endpoint template requests are counted under."""
        return API + self.path

    def index_key(self, row: Row) -> Tuple[int, int]:
        """(epoch, id) of an export row, from its timestamp field (a UUID id as its number)."""
        stamp, ident = row[self.order[0]], row["id"]
        return (stamp if isinstance(stamp, int) else iso_to_epoch(stamp), ident if isinstance(ident, int) else uuid.UUID(ident).int)

    def sort_key(self, row: Row) -> Tuple[Any, ...]:
        return tuple(-row[f[1:]] if f.startswith("-") else row[f] for f in self.order)


# Short names, so that each table of the map reads as one entry.
E, T, C, O, S = Paging.CURSOR_EXPORT, Paging.TIME_EXPORT, Paging.CURSOR_LIST, Paging.OFFSET_LIST, Paging.SINGLE_PAGE
_a = _attribute

TABLES: Tuple[FakeTable, ...] = (
    FakeTable("tickets", "/incremental/tickets/cursor", "tickets", E, ("generated_timestamp", "id"), _a("tickets"),
              serializer=ticket_out),
    FakeTable("ticket_metrics", "/incremental/tickets/cursor", "tickets", E, ("id",), live_metric_sets,
              served_by="tickets"),
    FakeTable("ticket_audits", "/incremental/ticket_events", "ticket_events", T, ("created_at", "id"), _a("audits"),
              serializer=ticket_event_out, more_paths=(API + "/tickets/{id}/audits",)),
    FakeTable("ticket_comments", "/incremental/ticket_events", "ticket_events", T, ("id",), comments,
              served_by="ticket_audits"),
    FakeTable("ticket_metric_events", "/incremental/ticket_metric_events", "ticket_metric_events", T, ("time", "id"),
              _a("ticket_metric_events"), end_of_stream=False),
    FakeTable("users", "/incremental/users/cursor", "users", E, ("updated_at", "id"), _a("users"),
              sideloads={"identities": identities_of}),
    FakeTable("organizations", "/incremental/organizations", "organizations", T, ("updated_at", "id"),
              _a("organizations")),
    FakeTable("groups", "/groups", "groups", C, ("name", "id"), _a("groups")),
    FakeTable("group_memberships", "/group_memberships", "group_memberships", C, ("id",), _a("group_memberships")),
    FakeTable("macros", "/macros", "macros", C, ("title", "id"), _a("macros")),
    FakeTable("ticket_fields", "/ticket_fields", "ticket_fields", C, ("id",), _a("ticket_fields")),
    FakeTable("user_fields", "/user_fields", "user_fields", C, ("position", "id"), _a("user_fields")),
    FakeTable("organization_fields", "/organization_fields", "organization_fields", C, ("position", "id"),
              _a("organization_fields")),
    FakeTable("ticket_forms", "/ticket_forms", "ticket_forms", S, ("position", "id"), _a("ticket_forms")),
    FakeTable("satisfaction_ratings", "/satisfaction_ratings", "satisfaction_ratings", C, ("id",),
              _a("satisfaction_ratings"), time_filtered=True),
    FakeTable("sla_policies", "/slas/policies", "sla_policies", S, ("position", "id"), _a("sla_policies")),
    FakeTable("tags", "/tags", "tags", C, ("-count", "name"), _a("tags"), key="name"),
    FakeTable("talk_phone_numbers", "/channels/voice/phone_numbers", "phone_numbers", O, ("id",),
              _a("phone_numbers")),
    # Account configuration (issue 18): fixed lists, one data file each.
    FakeTable("brands", "/brands", "brands", C, ("name", "id"), DataFile("brands"),
              serializer=renamed("brand_subdomain", "subdomain")),
    FakeTable("custom_roles", "/custom_roles", "custom_roles", S, ("id",), DataFile("custom_roles")),
    FakeTable("custom_statuses", "/custom_statuses", "custom_statuses", S, ("id",), DataFile("custom_statuses")),
    FakeTable("schedules", "/business_hours/schedules", "schedules", S, ("id",), DataFile("schedules")),
    FakeTable("automations", "/automations", "automations", C, ("position", "id"), DataFile("automations")),
    FakeTable("triggers", "/triggers", "triggers", C, ("position", "id"), DataFile("triggers")),
    FakeTable("views", "/views", "views", C, ("created_at", "id"), DataFile("views")),
    FakeTable("organization_memberships", "/organization_memberships", "organization_memberships", C, ("id",),
              DataFile("organization_memberships")),
    FakeTable("dynamic_content_items", "/dynamic_content/items", "items", C, ("id",), DataFile("dynamic_content_items")),
    FakeTable("recipient_addresses", "/recipient_addresses", "recipient_addresses", C, ("id",),
              DataFile("recipient_addresses")),
    FakeTable("sharing_agreements", "/sharing_agreements", "sharing_agreements", S, ("id",),
              DataFile("sharing_agreements")),
    FakeTable("routing_attributes", "/routing/attributes", "attributes", S, ("name", "id"), DataFile("routing_attributes")),
    FakeTable("schedule_holidays", "/business_hours/schedules/{id}/holidays", "holidays", S, ("start_date", "id"),
              DataFile("schedule_holidays", parent=("schedules", "schedule_id")), serializer=without("schedule_id")),
    FakeTable("routing_attribute_values", "/routing/attributes/{id}/values", "attribute_values", S, ("name", "id"),
              DataFile("routing_attribute_values", parent=("routing_attributes", "attribute_id"))),
    FakeTable("satisfaction_reasons", "/satisfaction_reasons", "reasons", S, ("id",), DataFile("satisfaction_reasons")),
    FakeTable("trigger_categories", "/trigger_categories", "trigger_categories", C, ("position", "id"),
              DataFile("trigger_categories")),
    FakeTable("ticket_field_history", "/incremental/ticket_events", "ticket_events", T, ("id",), field_history,
              served_by="ticket_audits"),
    FakeTable("ticket_tag_history", "/incremental/ticket_events", "ticket_events", T, ("id",), tag_history,
              served_by="ticket_audits"),
    # Activity, add-ons and per-ticket tables (issue 18); rows in addons.py
    FakeTable("user_identities", "/incremental/users/cursor", "users", E, ("id",), all_identities,
              served_by="users"),
    FakeTable("suspended_tickets", "/suspended_tickets", "suspended_tickets", C, ("id",), rows_of("suspended_tickets")),
    FakeTable("ticket_skips", "/skips", "skips", C, ("-id",), rows_of("ticket_skips")),
    FakeTable("ticket_activities", "/activities", "activities", C, ("id",), rows_of("ticket_activities"),
              query_filter=created_since),
    FakeTable("audit_logs", "/audit_logs", "audit_logs", C, ("id",), rows_of("audit_logs"),
              query_filter=created_between),
    FakeTable("help_center_articles", "/help_center/incremental/articles", "articles", T, ("updated_at", "id"),
              rows_of("help_center_articles"), end_of_stream=False),
    FakeTable("help_center_sections", "/help_center/sections", "sections", C, ("position", "id"),
              rows_of("help_center_sections")),
    FakeTable("help_center_categories", "/help_center/categories", "categories", C, ("position", "id"),
              rows_of("help_center_categories")),
    FakeTable("community_posts", "/community/posts", "posts", C, ("id",), rows_of("community_posts")),
    FakeTable("community_topics", "/community/topics", "topics", C, ("position", "id"), rows_of("community_topics")),
    FakeTable("side_conversation_events", "/tickets/side_conversations/events", "events", T, ("created_at", "id"),
              rows_of("side_conversation_events"), end_of_stream=False),
    FakeTable("talk_calls", "/channels/voice/stats/incremental/calls", "calls", T, ("updated_at", "id"),
              rows_of("talk_calls"), end_of_stream=False),
    FakeTable("talk_legs", "/channels/voice/stats/incremental/legs", "legs", T, ("updated_at", "id"),
              rows_of("talk_legs"), end_of_stream=False),
    FakeTable("side_conversations", "/tickets/{id}/side_conversations", "side_conversations", O, ("created_at", "id"),
              of_live_tickets("side_conversations"), per_ticket=every_ticket),
    FakeTable("ticket_conversation_logs", "/tickets/{id}/conversation_log", "events", C, ("created_at", "id"),
              of_live_tickets("ticket_conversation_logs"), per_ticket=messaging_ticket, serializer=without("ticket_id")),
)

TABLES_BY_NAME: Dict[str, FakeTable] = {table.name: table for table in TABLES}
#: The tables a replica holds (the ground truth's keys), in map order.
TRUTH_TABLES: Tuple[str, ...] = tuple(t.name for t in TABLES)
#: The fixed list tables read from data files, which `FakeZendesk.edit_lists` changes.
def stored_rows(account: Account, table: FakeTable) -> Optional[List[Row]]:
    """The list `account` keeps `table`'s rows in, for tests that empty and refill a list;
    None for a table whose rows are derived from another's."""
    source = table.rows
    if isinstance(source, DataFile):
        return account.data_table(source.name)
    name = getattr(source, "__name__", "")
    for holder in (account, addons_of(account)):
        rows = vars(holder).get(name)
        if isinstance(rows, list):
            return rows
    return None


DATA_TABLES: Tuple[str, ...] = tuple(t.name for t in TABLES if isinstance(t.rows, DataFile))
#: The tables that own an endpoint (the others come on their pages).
ENDPOINT_TABLES: Tuple[FakeTable, ...] = tuple(t for t in TABLES if t.served_by is None)


def gated_templates(name: str) -> Tuple[str, ...]:
    """Endpoint templates that plan gating of table `name` closes: the endpoint it is
    read from and the others that read it."""
    table = TABLES_BY_NAME[name]
    return (table.template, *table.more_paths)


def minimum_requests(account: Account, tables: Optional[Iterable[str]] = None) -> Dict[str, int]:
    """Per endpoint template, the fewest requests a full sync of `tables` (None: every
    table) needs: ⌈rows / the largest page⌉, one for an empty endpoint or a single-page
    one, one per parent row for a table listed per parent, and one per live ticket that
    needs it for a table listed per ticket. A table that comes on another's pages counts
    that table's endpoint; nothing else is counted, so a caller names every table its
    client reads (the client's own needs, such as field definitions, included)."""
    wanted = None if tables is None else set(tables)
    serving = [
        table for table in ENDPOINT_TABLES
        if wanted is None or table.name in wanted or any(
            t.served_by == table.name and t.name in wanted for t in TABLES)
    ]
    minimum = {}
    for table in serving:
        page = PAGE_SIZES[table.paging]
        if table.per_ticket is not None:
            minimum[table.template] = sum(1 for t in account.tickets if live(t) and table.per_ticket(t))
        elif table.parent is not None:  # one page per parent row
            minimum[table.template] = sum(1 for _ in TABLES_BY_NAME[table.parent[0]].rows(account))
        else:
            rows = sum(1 for _ in table.rows(account))
            minimum[table.template] = max(1, math.ceil(rows / page)) if page else 1
    return minimum
