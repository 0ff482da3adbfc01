"""The table registry: every Zendesk table this source loads, declared in one place.

A reader who wants to know how a table replicates (endpoint, pagination, key, cursor,
write disposition, plan gating, how deletions show) finds it here and nowhere else.
`resources.py` turns these declarations into dlt resources and never asks which table it
is building: what sets a table apart is a field of its `TableSpec` (`rows.py` holds the
row shapes they name); `api/paginators.py` implements each `Pagination` style;
`api/client.py` owns the HTTP details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Dict, FrozenSet, List, Literal, Mapping, Optional, Tuple

from . import rows

API_PREFIX = "/api/v2"

#: Zendesk's hard caps on page sizes: exports give 1000 rows a page, cursor lists 100.
EXPORT_PAGE_SIZE = 1000
LIST_PAGE_SIZE = 100

#: Exports withhold changes from the last minute; asking for a later start_time is an error.
EXPORT_MIN_AGE_SECONDS = 61

#: How far back each run re-reads satisfaction ratings. Zendesk documents the list's
#: `start_time` only as "the time of the oldest satisfaction rating": if it filters on
#: creation, a survey offered before the cursor and answered after it would never be read
#: again. A rating can change until its ticket is closed, which Zendesk does at most 28
#: days after the ticket is solved; re-reading 28 days before the cursor covers that.
SATISFACTION_LOOKBACK_SECONDS = 28 * 86_400

#: Default checkpoint size: after this many export pages, all exports together, the run
#: commits its state and loads, so a crash never re-reads more than one batch (100 pages:
#: about 10 minutes at Zendesk's 10 export requests a minute).
DEFAULT_BATCH_PAGES = 100


class Pagination(str, Enum):
    """The pagination styles the Zendesk Support API uses for our tables."""

    CURSOR_EXPORT = "cursor_export"  # after_cursor / after_url / end_of_stream
    TIME_EXPORT = "time_export"  # start_time / end_time / next_page / end_of_stream
    CURSOR_LIST = "cursor_list"  # page[size] / page[after] / meta.has_more
    OFFSET_LIST = "offset_list"  # page / per_page / next_page
    SINGLE_PAGE = "single_page"  # the whole list in one answer


class ChangeDetection(str, Enum):
    """How a run decides which rows changed since the last run."""

    EXPORT_CURSOR = "export_cursor"  # the export itself returns only changes after our cursor
    SERVER_START_TIME = "server_start_time"  # the list filters on start_time server-side
    FINGERPRINT = "fingerprint"  # full scan; compare a content hash per id with the last run
    REPLACE = "replace"  # full scan; the table is replaced each run
    #: rows never change once made: ask the list only for rows created since the cursor
    #: (a server-side filter), or read it newest first and stop at the cursor
    CREATED_SINCE = "created_since"


#: "insert-only" is append semantics made idempotent: a row whose key is already loaded is
#: never inserted again (dlt's merge strategy of that name, dlt 1.31 and later), so a
#: replayed or overlapping run cannot append an audit twice.
WriteDisposition = Literal["merge", "insert-only", "replace"]


@dataclass(frozen=True)
class Endpoint:
    """One Zendesk endpoint and how to walk it."""

    path: str
    data_key: str
    pagination: Pagination
    page_size: int
    params: Mapping[str, str] = field(default_factory=dict)
    #: The field the export orders by and resumes from, for exports.
    export_cursor: Optional[str] = None
    #: The export cursor is an epoch number (otherwise ISO 8601 text).
    epoch_cursor: bool = False
    #: Records the pages side-load (`include=`): (the payload's key, the field naming the
    #: record they belong to). The reader hands each record its own under that key.
    sideloads: Tuple[Tuple[str, str], ...] = ()


CustomFieldKind = Literal["ticket", "user", "organization"]


@dataclass(frozen=True)
class PerTicket:
    """Rows fetched per ticket: `endpoint` (its path holds the ticket's id as `{id}`) for
    each ticket that `reader`'s pages say changed.

    Either an opt-in source of a table that has an export of its own (`audits_mode=
    "per_ticket"`), or, with `only_source`, the table's one source (side conversations,
    conversation logs): a request per changed ticket that `needs` it."""

    reader: str
    endpoint: Endpoint
    #: The table has no other source: it always follows `reader`.
    only_source: bool = False
    #: Which tickets of the reader's pages get a request (None: every live one).
    needs: Optional[Callable[[Dict[str, Any]], bool]] = None
    #: Each row gains its ticket's id under this key (Zendesk's rows may not name it).
    key: Optional[str] = None
    #: A deleted ticket's rows are deleted (a tombstone row; see `PER_TICKET_MERGE`).
    tombstones: bool = False


@dataclass(frozen=True)
class PerParent:
    """A table read once per row of another table (`table`): the endpoint's path holds
    that row's id as `{id}`, and each row gains it under `key`, since Zendesk's rows do
    not always name their parent."""

    table: str
    key: str


@dataclass(frozen=True)
class TableSpec:
    """One destination table: where its rows come from and how they are written."""

    name: str
    endpoint: Endpoint
    primary_key: str
    write_disposition: WriteDisposition
    change_detection: ChangeDetection
    #: Replication key as documented for the table (what moves when a row changes).
    cursor: Optional[str] = None
    #: 403/404 means "not on this plan": skip the table with a warning, never fail the run.
    plan_gated: bool = False
    #: Name of the shared reader when several tables come from one export pass.
    reader: Optional[str] = None
    #: How a page of the endpoint's records becomes this table's rows (None: as they come).
    rows: Optional[Callable[[List[Dict[str, Any]]], List[Dict[str, Any]]]] = None
    #: The rows never change once written, so the export cursor may drop a row whose id it
    #: already loaded at the boundary second. Otherwise a row changed twice within one
    #: second must load its second version, and merge makes the re-read row harmless.
    immutable_rows: bool = False
    #: Custom-field kind whose definitions type this table's custom columns.
    custom_fields: Optional[CustomFieldKind] = None
    #: This table's rows are the definitions of that custom-field kind: one request
    #: serves the table and the typing of the custom columns.
    defines_custom_fields: Optional[CustomFieldKind] = None
    #: Nested lists (paths under the row) whose items' `json_value_keys` hold a string in
    #: one item, a number, a boolean or a list in another: loaded as JSON text.
    json_values: Tuple[Tuple[str, ...], ...] = ()
    json_value_keys: Tuple[str, ...] = ("value",)
    #: Further dlt merge hints (strategy, destination scope, ...) for a "merge" table.
    merge_hints: Mapping[str, str] = field(default_factory=dict)
    #: SERVER_START_TIME: how far before the cursor each run asks the list to start.
    start_time_lookback: int = 0
    #: Where the table comes from instead with `audits_mode="per_ticket"`.
    per_ticket: Optional[PerTicket] = None
    #: The table is read once per row of another table (a request per parent row).
    per_parent: Optional[PerParent] = None
    #: Declared dlt types of columns whose type must not be inferred from the first
    #: values seen (a history value that looks like a timestamp is still text).
    columns: Mapping[str, str] = field(default_factory=dict)
    #: Loaded when `tables` is unset: every table that costs at most one request a run
    #: when nothing changed. Off for add-on products (Help Center, Talk), which most
    #: accounts lack, and for tables that cost a request per changed ticket; a caller
    #: names them, or their `group`, in `tables`.
    default: bool = True
    #: A name `tables` accepts for every table of the group at once (see `GROUPS`).
    group: Optional[str] = None
    #: CREATED_SINCE: the query parameters that ask the list for the rows created from the
    #: first epoch to the second (None: the list cannot filter; it is read newest first,
    #: `endpoint.params` asking for that order, and the read stops at the cursor).
    created_since: Optional[Callable[[int, int], Mapping[str, Any]]] = None


def dlt_write_disposition(spec: TableSpec) -> Any:
    """The dlt write disposition hint for a table of the registry."""
    if spec.write_disposition == "insert-only":
        return {"disposition": "merge", "strategy": "insert-only"}
    if spec.write_disposition == "merge" and spec.merge_hints:
        return {"disposition": "merge", **spec.merge_hints}
    return spec.write_disposition


TICKETS_EXPORT = Endpoint(
    path="/incremental/tickets/cursor",
    data_key="tickets",
    pagination=Pagination.CURSOR_EXPORT,
    page_size=EXPORT_PAGE_SIZE,
    params={"include": "metric_sets"},
    export_cursor="generated_timestamp",
    epoch_cursor=True,
)

TICKET_EVENTS_EXPORT = Endpoint(
    path="/incremental/ticket_events",
    data_key="ticket_events",
    pagination=Pagination.TIME_EXPORT,
    page_size=EXPORT_PAGE_SIZE,
    params={"include": "comment_events"},
    export_cursor="timestamp",
    epoch_cursor=True,
)


#: The user export, with every user's identities side-loaded (no extra request).
USERS_EXPORT = Endpoint(
    path="/incremental/users/cursor",
    data_key="users",
    pagination=Pagination.CURSOR_EXPORT,
    page_size=EXPORT_PAGE_SIZE,
    params={"include": "identities"},
    export_cursor="updated_at",
    sideloads=(("identities", "user_id"),),
)

#: user_identities: every export of a user carries all its identities, so a load replaces
#: the identities of each user it holds a row for (a removed identity goes); a user left
#: with none sends a tombstone (`rows.user_identities`), filtered out before it is stored.
USER_IDENTITIES_MERGE = {
    "strategy": "delete-insert",
    "destination_scope": "user_id IN (SELECT user_id FROM {staging_table})",
    "source_filter": "id > 0",
}


def _list(path: str, data_key: str, **params: str) -> Endpoint:
    return Endpoint(path, data_key, Pagination.CURSOR_LIST, LIST_PAGE_SIZE, params=params)


def _time_export(path: str, data_key: str) -> Endpoint:
    """A time-based export ordered by `updated_at` (ISO 8601 text)."""
    return Endpoint(path, data_key, Pagination.TIME_EXPORT, EXPORT_PAGE_SIZE, export_cursor="updated_at")


def _iso(epoch: int) -> str:
    return rows.epoch_to_iso(epoch)


def _audit_log_range(start: int, end: int) -> Mapping[str, Any]:
    """`/audit_logs` takes the creation range as two values of one parameter."""
    return {"filter[created_at][]": [_iso(start), _iso(end)]}


def _activities_since(start: int, end: int) -> Mapping[str, Any]:
    return {"since": _iso(start)}


def _single(path: str, data_key: str) -> Endpoint:
    """A list Zendesk answers whole, without pagination."""
    return Endpoint(path, data_key, Pagination.SINGLE_PAGE, LIST_PAGE_SIZE)


def _configuration(name: str, endpoint: Endpoint, cursor: Optional[str] = "updated_at", **hints: Any) -> TableSpec:
    """A small account-configuration list keyed by id: scanned whole each run, loaded only
    when a row changed or vanished (a request or two a run, whatever changed)."""
    return TableSpec(name, endpoint, "id", "merge", ChangeDetection.FINGERPRINT, cursor=cursor, **hints)


#: Business rules (automations, triggers, views): an action's or condition's `value` is a
#: string, a number or a list (`notification_user`: recipient, subject, body) by field.
RULE_VALUES: Tuple[Tuple[str, ...], ...] = (("actions",), ("conditions", "all"), ("conditions", "any"))


#: ticket_metrics: a load replaces the metrics of every ticket it holds a row for, and
#: inserts only real metric rows (positive ids). A deleted ticket's row is a tombstone
#: with the negated ticket id (`rows.ticket_metrics`): it deletes the ticket's metrics
#: and is never stored, and needs no column of its own.
TICKET_METRICS_MERGE = {
    "strategy": "delete-insert",
    "destination_scope": "ticket_id IN (SELECT ticket_id FROM {staging_table})",
    "source_filter": "id > 0",
}


#: The columns ticket_field_history and ticket_tag_history share (`rows._change_row`). The
#: key is text, `<child event id>:<field or tag>`: one child event can change several tags,
#: and a one-column key is what the registry, merges and the multi-account key expect.
CHANGE_COLUMNS = {
    "id": "text",
    "event_id": "bigint",
    "audit_id": "bigint",
    "ticket_id": "bigint",
    "updater_id": "bigint",
    "via": "text",
    "created_at": "timestamp",
}


#: A table read per ticket with `tombstones`: a ticket's fetched rows replace the rows it
#: had (one that vanished from Zendesk goes), and a deleted ticket's tombstone, a row with
#: an empty id (`rows.per_ticket_tombstone`), deletes them and is never stored.
PER_TICKET_MERGE = {
    "strategy": "delete-insert",
    "destination_scope": "ticket_id IN (SELECT ticket_id FROM {staging_table})",
    "source_filter": "id <> ''",
}

#: `via.channel` of tickets that come from a chat or a messaging conversation, whose
#: messages the ticket events export does not carry: legacy Zendesk Chat (`chat`, and the
#: transcript of a chat, `chat_transcript`), Zendesk messaging in the Web Widget and the
#: mobile SDKs (`native_messaging`) and the social messaging channels (WhatsApp, Facebook
#: Messenger, Instagram, LINE, WeChat, Telegram, Viber, KakaoTalk, Apple and Google
#: business chat, SMS through MessageBird, and any channel built on Sunshine Conversations).
#: Zendesk also flags a messaging ticket itself (`from_messaging_channel`); both count.
MESSAGING_CHANNELS: FrozenSet[str] = frozenset({
    "chat", "chat_transcript", "native_messaging", "whatsapp", "facebook_messenger", "instagram_dm",
    "line", "wechat", "telegram", "viber", "kakaotalk", "apple_business_chat", "google_business_messages",
    "google_rcs", "messagebird_sms", "sunshine_conversations_api", "sunshine_conversations_facebook_messenger",
    "sunshine_conversations_twitter_dm",
})


#: Zendesk documents the side conversations list with `next_page` links; the conversation
#: log with cursor pagination (`meta.has_more`), 100 events a page.
SIDE_CONVERSATIONS = Endpoint(
    "/tickets/{id}/side_conversations", "side_conversations", Pagination.OFFSET_LIST, LIST_PAGE_SIZE
)
CONVERSATION_LOG = _list("/tickets/{id}/conversation_log", "events")


def needs_conversation_log(ticket: Mapping[str, Any]) -> bool:
    """Whether a ticket's messages are only in its conversation log (a chat or messaging
    ticket): its channel is one of `MESSAGING_CHANNELS`, or Zendesk flags it."""
    via = ticket.get("via")
    channel = via.get("channel") if isinstance(via, Mapping) else None
    return bool(ticket.get("from_messaging_channel")) or channel in MESSAGING_CHANNELS


TABLES: Tuple[TableSpec, ...] = (
    TableSpec(
        "tickets",
        TICKETS_EXPORT,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="generated_timestamp",
        reader="ticket_export",
        rows=rows.tickets,
        custom_fields="ticket",
    ),
    TableSpec(
        "ticket_metrics",
        TICKETS_EXPORT,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        reader="ticket_export",
        rows=rows.ticket_metrics,
        merge_hints=TICKET_METRICS_MERGE,
    ),
    TableSpec(
        "ticket_comments",
        TICKET_EVENTS_EXPORT,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        reader="ticket_events",
        rows=rows.ticket_comments,
        immutable_rows=True,
    ),
    TableSpec(
        "ticket_audits",
        TICKET_EVENTS_EXPORT,
        "id",
        "insert-only",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        reader="ticket_events",
        rows=rows.ticket_audits,
        immutable_rows=True,
        # Audit events carry `value` / `previous_value` as a string, a number, a boolean
        # or a list (tags), depending on the field.
        json_values=(("events",),),
        json_value_keys=("value", "previous_value"),
        # Full audits (with `via.source` and `metadata.custom`), one request per changed ticket.
        per_ticket=PerTicket("ticket_export", _list("/tickets/{id}/audits", "audits")),
    ),
    TableSpec(
        "ticket_metric_events",
        Endpoint(
            "/incremental/ticket_metric_events",
            "ticket_metric_events",
            Pagination.TIME_EXPORT,
            EXPORT_PAGE_SIZE,
            export_cursor="time",
        ),
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="time",
        immutable_rows=True,
    ),
    TableSpec(
        "users",
        USERS_EXPORT,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        reader="user_export",
        rows=rows.users,
        custom_fields="user",
    ),
    TableSpec(
        "organizations",
        Endpoint(
            "/incremental/organizations",
            "organizations",
            Pagination.TIME_EXPORT,
            EXPORT_PAGE_SIZE,
            export_cursor="updated_at",
        ),
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        custom_fields="organization",
    ),
    TableSpec(
        "groups",
        _list("/groups", "groups"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
    ),
    TableSpec(
        "group_memberships",
        _list("/group_memberships", "group_memberships"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
    ),
    TableSpec(
        "macros",
        _list("/macros", "macros"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        json_values=(("actions",),),
    ),
    TableSpec(
        "ticket_fields",
        _list("/ticket_fields", "ticket_fields"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        defines_custom_fields="ticket",
    ),
    TableSpec(
        "ticket_forms",
        Endpoint("/ticket_forms", "ticket_forms", Pagination.SINGLE_PAGE, LIST_PAGE_SIZE),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        plan_gated=True,
    ),
    TableSpec(
        "satisfaction_ratings",
        _list("/satisfaction_ratings", "satisfaction_ratings"),
        "id",
        "merge",
        ChangeDetection.SERVER_START_TIME,
        cursor="updated_at",
        plan_gated=True,
        start_time_lookback=SATISFACTION_LOOKBACK_SECONDS,
    ),
    TableSpec(
        "sla_policies",
        Endpoint("/slas/policies", "sla_policies", Pagination.SINGLE_PAGE, LIST_PAGE_SIZE),
        "id",
        "replace",
        ChangeDetection.REPLACE,
        plan_gated=True,
        json_values=(("filter", "all"), ("filter", "any")),
    ),
    TableSpec(
        "tags",
        _list("/tags", "tags"),
        "name",
        "replace",
        ChangeDetection.REPLACE,
    ),
    TableSpec(
        "talk_phone_numbers",
        Endpoint(
            "/channels/voice/phone_numbers",
            "phone_numbers",
            Pagination.OFFSET_LIST,
            LIST_PAGE_SIZE,
        ),
        "id",
        "replace",
        ChangeDetection.REPLACE,
        plan_gated=True,
        group="talk",
    ),
    # Activity, add-ons and per-ticket tables (issue 18)
    TableSpec(
        "user_identities",
        USERS_EXPORT,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        reader="user_export",
        rows=rows.user_identities,
        merge_hints=USER_IDENTITIES_MERGE,
        group="activity",
    ),
    TableSpec(
        "suspended_tickets",
        _list("/suspended_tickets", "suspended_tickets"),
        "id",
        "replace",
        ChangeDetection.REPLACE,
        # they leave the list when recovered or deleted: a replica holds the current list
        # (one request a run: Zendesk deletes them after 14 days, so the list stays short)
        group="activity",
    ),
    TableSpec(
        "ticket_skips",
        # no time filter; newest first, the read stops at the last skip already loaded
        _list("/skips", "skips", sort_order="desc"),
        "id",
        "insert-only",
        ChangeDetection.CREATED_SINCE,
        cursor="created_at",
        group="activity",
    ),
    TableSpec(
        "ticket_activities",
        _list("/activities", "activities"),
        "id",
        "insert-only",
        ChangeDetection.CREATED_SINCE,
        cursor="created_at",
        group="activity",
        created_since=_activities_since,
    ),
    TableSpec(
        "audit_logs",
        _list("/audit_logs", "audit_logs"),
        "id",
        "insert-only",
        ChangeDetection.CREATED_SINCE,
        cursor="created_at",
        plan_gated=True,  # Enterprise plans only
        group="activity",
        created_since=_audit_log_range,
    ),
    TableSpec(
        "side_conversation_events",
        # Zendesk's bulk export of every side conversation's messages and state changes,
        # instead of a request per ticket (and one more per side conversation)
        Endpoint(
            "/tickets/side_conversations/events",
            "events",
            Pagination.TIME_EXPORT,
            EXPORT_PAGE_SIZE,
            export_cursor="created_at",
        ),
        "id",
        "insert-only",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        plan_gated=True,  # side conversations need the Collaboration add-on or Suite Professional
        immutable_rows=True,
        group="activity",
    ),
    TableSpec(
        "help_center_articles",
        _time_export("/help_center/incremental/articles", "articles"),
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="help_center",
    ),
    TableSpec(
        "help_center_sections",
        _list("/help_center/sections", "sections"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="help_center",
    ),
    TableSpec(
        "help_center_categories",
        _list("/help_center/categories", "categories"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="help_center",
    ),
    TableSpec(
        "community_posts",
        _list("/community/posts", "posts"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="help_center",
    ),
    TableSpec(
        "community_topics",
        _list("/community/topics", "topics"),
        "id",
        "merge",
        ChangeDetection.FINGERPRINT,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="help_center",
    ),
    TableSpec(
        "talk_calls",
        _time_export("/channels/voice/stats/incremental/calls", "calls"),
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="talk",
    ),
    TableSpec(
        "talk_legs",
        _time_export("/channels/voice/stats/incremental/legs", "legs"),
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        plan_gated=True,
        default=False,
        group="talk",
    ),
    # Account configuration (issue 18)
    _configuration("brands", _list("/brands", "brands"), rows=rows.brands),
    _configuration("custom_roles", _single("/custom_roles", "custom_roles"), plan_gated=True),
    _configuration("custom_statuses", _single("/custom_statuses", "custom_statuses"), plan_gated=True),
    _configuration("schedules", _single("/business_hours/schedules", "schedules"), plan_gated=True),
    _configuration("automations", _list("/automations", "automations"), json_values=RULE_VALUES),
    _configuration("triggers", _list("/triggers", "triggers"), json_values=RULE_VALUES),
    _configuration("views", _list("/views", "views"), json_values=RULE_VALUES[1:]),
    # The definitions that type the custom columns of users and organizations: one
    # request serves the table and the typing, so the tables cost nothing extra.
    _configuration("user_fields", _list("/user_fields", "user_fields"), plan_gated=True, defines_custom_fields="user"),
    _configuration(
        "organization_fields",
        _list("/organization_fields", "organization_fields"),
        plan_gated=True,
        defines_custom_fields="organization",
    ),
    _configuration("organization_memberships", _list("/organization_memberships", "organization_memberships")),
    # Each item's variants come in the same answer: the nested table dynamic_content_items__variants.
    _configuration("dynamic_content_items", _list("/dynamic_content/items", "items")),
    _configuration("recipient_addresses", _list("/recipient_addresses", "recipient_addresses")),
    _configuration("sharing_agreements", _single("/sharing_agreements", "sharing_agreements"), cursor=None),
    # Skill types of skills-based routing (Enterprise); ids are UUID strings.
    _configuration("routing_attributes", _single("/routing/attributes", "attributes"), plan_gated=True),
    # Holidays and skills are listed per schedule and per skill type only: a request each.
    _configuration(
        "schedule_holidays",
        _single("/business_hours/schedules/{id}/holidays", "holidays"),
        cursor=None,
        plan_gated=True,
        per_parent=PerParent("schedules", "schedule_id"),
        # a request per schedule every run, changed or not: named in `tables` when wanted
        default=False,
    ),
    _configuration(
        "routing_attribute_values",
        _single("/routing/attributes/{id}/values", "attribute_values"),
        plan_gated=True,
        per_parent=PerParent("routing_attributes", "attribute_id"),
        default=False,
    ),
    # Reasons of the legacy CSAT survey (`deleted_at` set on a deleted one).
    _configuration("satisfaction_reasons", _single("/satisfaction_reasons", "reasons"), plan_gated=True),
    _configuration("trigger_categories", _list("/trigger_categories", "trigger_categories")),
    # Derived from the ticket events export (issue 18)
    TableSpec(
        "ticket_field_history",
        TICKET_EVENTS_EXPORT,
        "id",
        "insert-only",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        reader="ticket_events",
        rows=rows.ticket_field_history,
        immutable_rows=True,
        columns={**CHANGE_COLUMNS, "field": "text", "event_type": "text", "value": "text", "previous_value": "text"},
    ),
    TableSpec(
        "ticket_tag_history",
        TICKET_EVENTS_EXPORT,
        "id",
        "insert-only",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        reader="ticket_events",
        rows=rows.ticket_tag_history,
        immutable_rows=True,
        columns={**CHANGE_COLUMNS, "tag": "text", "change": "text"},
    ),
    # Per ticket, off by default: a request per changed ticket (issue 18)
    TableSpec(
        "side_conversations",
        # Each side conversation's current state (state, subject, participants, preview,
        # external ids), by ticket. Zendesk has no bulk list of them. The bulk events
        # export (side_conversation_events) is no substitute: its events carry changes
        # (a message, `updates` of the state or subject), not the conversation as it
        # stands: the participants list and external ids are not in it, and folding the
        # changes into rows would need every event since the conversation began, which a
        # replica started at `start_date`, or one without that table, never saw.
        SIDE_CONVERSATIONS,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="updated_at",
        plan_gated=True,  # the Collaboration add-on or Suite Professional
        merge_hints=PER_TICKET_MERGE,
        per_ticket=PerTicket(
            "ticket_export",
            SIDE_CONVERSATIONS,
            only_source=True,
            key="ticket_id",
            tombstones=True,
        ),
        default=False,
    ),
    TableSpec(
        "ticket_conversation_logs",
        # The messages of chat and messaging tickets (agents, end users, bots), which the
        # ticket events export does not carry; asked only for tickets from those channels.
        CONVERSATION_LOG,
        "id",
        "merge",
        ChangeDetection.EXPORT_CURSOR,
        cursor="created_at",
        plan_gated=True,  # an early-access API: an account without it answers 403 or 404
        merge_hints=PER_TICKET_MERGE,
        per_ticket=PerTicket(
            "ticket_export",
            CONVERSATION_LOG,
            only_source=True,
            needs=needs_conversation_log,
            key="ticket_id",
            tombstones=True,
        ),
        default=False,
    ),
)

TABLES_BY_NAME: Dict[str, TableSpec] = {spec.name: spec for spec in TABLES}

#: Group name -> its tables, in registry order: `tables=["talk"]` selects them all.
GROUPS: Dict[str, Tuple[str, ...]] = {
    group: tuple(spec.name for spec in TABLES if spec.group == group)
    for group in dict.fromkeys(spec.group for spec in TABLES if spec.group)
}

#: What a run loads when it names no tables.
DEFAULT_TABLES: Tuple[str, ...] = tuple(spec.name for spec in TABLES if spec.default)

#: Field-definition endpoints that type the custom columns, and whether a plan may lack
#: them (user and organization fields need a Team plan or better; without them the
#: values still load, untyped). Each is the endpoint of the table that holds the
#: definitions (ticket_fields, user_fields, organization_fields): one request a run
#: serves the table and the typing of the custom columns.
FIELD_DEFINITIONS: Dict[str, Tuple[Endpoint, bool]] = {
    spec.defines_custom_fields: (spec.endpoint, spec.plan_gated) for spec in TABLES if spec.defines_custom_fields
}


def reader_of(table: str, audits_mode: str = "events") -> Optional[str]:
    """The shared reader `table` is fed by. A table read per ticket follows that reader
    (it fetches rows of the tickets that changed): always when that is its only source,
    with `audits_mode="per_ticket"` when it is an opt-in one."""
    spec = TABLES_BY_NAME[table]
    if spec.per_ticket is not None and (spec.per_ticket.only_source or audits_mode == "per_ticket"):
        return spec.per_ticket.reader
    return spec.reader


def per_ticket_only(table: str) -> bool:
    """Whether `table` is read only per ticket (a request per changed ticket)."""
    spec = TABLES_BY_NAME[table]
    return spec.per_ticket is not None and spec.per_ticket.only_source


def state_holder(table: str, audits_mode: str = "events") -> Optional[str]:
    """The resource whose state holds the export cursor of `table` (None: not an export)."""
    spec = TABLES_BY_NAME[table]
    if spec.change_detection is not ChangeDetection.EXPORT_CURSOR:
        return None
    return reader_of(table, audits_mode) or spec.name


def siblings(table: str, audits_mode: str = "events") -> Tuple[str, ...]:
    """Tables that share `table`'s reader: they must be selected together, or the
    shared export cursor would move past rows the unselected sibling never saw."""
    reader = reader_of(table, audits_mode)
    if reader is None:
        return (table,)
    # a table read only per ticket needs the tickets it follows; they never need it
    return tuple(
        spec.name
        for spec in TABLES
        if reader_of(spec.name, audits_mode) == reader and (spec.name == table or not per_ticket_only(spec.name))
    )


#: The top-level fields Zendesk documents or was recorded sending on tickets, users and
#: organizations (tests/fixtures/real holds the recordings; a contract test keeps this
#: list a superset of them). No custom-field column may take one of these names: some
#: start with `custom_` themselves. Fields Zendesk adds later are reserved as they arrive.
NATIVE_COLUMNS: Dict[str, FrozenSet[str]] = {
    "ticket": frozenset({
        "url", "id", "external_id", "via", "created_at", "updated_at", "type", "subject",
        "raw_subject", "description", "priority", "status", "custom_status_id",
        "custom_status_updated_at", "recipient", "requester_id", "submitter_id", "assignee_id",
        "organization_id", "group_id", "collaborator_ids", "follower_ids", "email_cc_ids",
        "forum_topic_id", "problem_id", "has_incidents", "is_public", "due_at", "tags",
        "satisfaction_rating", "sharing_agreement_ids", "followup_ids", "ticket_form_id",
        "brand_id", "allow_channelback", "allow_attachments", "from_messaging_channel",
        "generated_timestamp", "encoded_id",
    }),
    "user": frozenset({
        "id", "url", "name", "email", "created_at", "updated_at", "time_zone", "iana_time_zone",
        "phone", "shared_phone_number", "photo", "locale_id", "locale", "organization_id", "role",
        "verified", "external_id", "tags", "alias", "active", "shared", "shared_agent",
        "last_login_at", "two_factor_auth_enabled", "signature", "details", "notes", "role_type",
        "custom_role_id", "moderator", "ticket_restriction", "only_private_comments",
        "restricted_agent", "suspended", "default_group_id", "report_csv", "chat_only",
        "permanently_deleted",
    }),
    "organization": frozenset({
        "url", "id", "name", "shared_tickets", "shared_comments", "external_id", "created_at",
        "updated_at", "deleted_at", "domain_names", "details", "notes", "group_id", "tags",
    }),
}
