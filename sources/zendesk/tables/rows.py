"""How a table's rows are made from the records an endpoint returns.

The registry (`registry.py`) names one of these per table that does not load the
records as they come. They are pure functions of a page that never change it: a
reader shared by several tables hands each of them the same page.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

Row = Dict[str, Any]


def epoch_to_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_to_epoch(value: Any) -> int:
    """A cursor value as Zendesk sends it (epoch number or ISO 8601 text) as an epoch;
    ValueError when it is neither."""
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def tickets(page: List[Row]) -> List[Row]:
    """Exported tickets without the side-loaded metric_set (ticket_metrics holds it)."""
    return [{key: value for key, value in ticket.items() if key != "metric_set"} for ticket in page]


def brands(page: List[Row]) -> List[Row]:
    """A brand's own `subdomain` (its help center's host) as `brand_subdomain`: `subdomain`
    is the account's column in a dataset several accounts share, and would overwrite it."""
    return [{("brand_subdomain" if key == "subdomain" else key): value for key, value in row.items()} for row in page]


def ticket_metrics(page: List[Row]) -> List[Row]:
    """The metric_set of each exported ticket. A deleted ticket's row is a tombstone with
    the negated ticket id: Zendesk drops a deleted ticket's metrics, and the table's merge
    (see its `merge_hints`) deletes them without ever storing the tombstone."""
    rows: List[Row] = []
    for ticket in page:
        if ticket.get("status") == "deleted":
            rows.append({"id": -int(ticket["id"]), "ticket_id": ticket["id"]})
        elif ticket.get("metric_set"):
            rows.append(ticket["metric_set"])
    return rows


def users(page: List[Row]) -> List[Row]:
    """Exported users without their side-loaded identities (user_identities holds them)."""
    return [{key: value for key, value in user.items() if key != "identities"} for user in page]


def user_identities(page: List[Row]) -> List[Row]:
    """The identities side-loaded with each exported user. A user with none gives a
    tombstone with the negated user id: the table's merge (see its `merge_hints`) deletes
    the identities it held and never stores the tombstone."""
    rows: List[Row] = []
    for user in page:
        identities = user.get("identities") or []
        rows.extend(identities)
        if not identities:
            rows.append({"id": -int(user["id"]), "user_id": user["id"]})
    return rows


def with_sideloads(page: List[Row], sideloaded: Dict[str, List[Row]], fields: Iterable[Tuple[str, str]]) -> List[Row]:
    """Copies of the page's records, each with the side-loaded records that name it
    (`fields`: the payload key and the field naming the record they belong to)."""
    by_owner: Dict[str, Dict[Any, List[Row]]] = {}
    for key, owner in fields:
        grouped = by_owner.setdefault(key, {})
        for record in sideloaded.get(key) or ():
            grouped.setdefault(record.get(owner), []).append(record)
    return [{**row, **{key: grouped.get(row["id"], []) for key, grouped in by_owner.items()}} for row in page]


def ticket_comments(page: List[Row]) -> List[Row]:
    """The comment child events of ticket events, each with its ticket and audit."""
    return [row for event in page for row in _comments_of(event)]


def _comments_of(event: Row) -> Iterator[Row]:
    for child in event.get("child_events") or ():
        if child.get("event_type") in ("Comment", "VoiceComment") or child.get("type") in ("Comment", "VoiceComment"):
            row = {k: v for k, v in child.items() if k != "event_type"}
            row["ticket_id"] = event["ticket_id"]
            row.setdefault("created_at", event.get("created_at"))
            row.setdefault("audit_id", event["id"])
            yield row


#: Ticket event fields an audit names differently; every other field keeps its name.
AUDIT_FIELDS_FROM_EVENT = ("updater_id", "via", "system", "child_events")


def ticket_audits(page: List[Row]) -> List[Row]:
    """A ticket event is one ticket update, i.e. one audit. Every field the export gives
    is kept (`timestamp`, `event_type`, `via_reference_id`, `comment_present`,
    `comment_public`, ...); the ones an audit has under another name move there:
    `updater_id` is `author_id`, the channel name in `via` is `via.channel`, `system` is
    `metadata.system`, and the child events are `events` (copies: comments read them
    too). The export has no audit `via.source` and no `metadata.custom`."""
    return [_audit_row(event) for event in page]


def _audit_row(event: Row) -> Row:
    row = {key: value for key, value in event.items() if key not in AUDIT_FIELDS_FROM_EVENT}
    row.update(
        {
            "created_at": event.get("created_at") or epoch_to_iso(event["timestamp"]),
            "author_id": event.get("updater_id"),
            "via": {"channel": event.get("via")},
            "metadata": {"system": event.get("system") or {}},
            "events": [dict(child) for child in event.get("child_events") or ()],
        }
    )
    return row


def json_text(value: Any) -> Optional[str]:
    """A value as its JSON text (`"open"`, `509974`, `true`, `["a","b"]`); NULL stays NULL."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def with_json_values(rows: List[Row], paths: Iterable[Tuple[str, ...]], keys: Iterable[str]) -> List[Row]:
    """The `keys` of the items of each nested list at `paths` as their JSON text, in place.

    Why text and not dlt's `json` type: in dlt 1.31 a `json` column holds objects and
    lists; a scalar in it lands in a variant column (`value__v_bool`), or, sent as text, is
    written unquoted and refused by DuckDB and Postgres. One text column of JSON text keeps
    every value, typed as Zendesk sent it, in one place (`value::json` reads it back)."""
    paths, keys = tuple(paths), tuple(keys)
    if not paths:
        return rows
    for row in rows:
        for path in paths:
            node: Any = row
            for step in path:
                node = node.get(step) if isinstance(node, dict) else None
            for item in node if isinstance(node, list) else ():
                if isinstance(item, dict):
                    for key in keys:
                        if key in item:
                            item[key] = json_text(item[key])
    return rows


#: Keys a field change child event carries whatever field it changes. In the audit shape
#: (`field_name`, `value`, `previous_value`) the field is named; in the shape Zendesk's
#: ticket events export has been seen sending (`{"status": "solved", "previous_value":
#: "open"}`) the one other key is the field.
CHANGE_EVENT_KEYS = frozenset({
    "id", "type", "event_type", "via", "via_reference_id", "field_name", "value", "previous_value",
    "added_tags", "removed_tags",
})

#: Child event types that set a ticket field: `Create` (its value when the ticket was made)
#: and `Change` (old and new value).
FIELD_EVENT_TYPES = ("Create", "Change")


def history_text(value: Any) -> Optional[str]:
    """A field value as history text: a string as it is (`open`, `235323`), anything else
    as its JSON text (`true`, `509974`, `["a","b"]`); NULL stays NULL. One text column
    holds every field's values, readable without unquoting."""
    if value is None or isinstance(value, str):
        return value
    return json_text(value)


def _field_changes(child: Row) -> Iterator[Tuple[str, Any, Any]]:
    """(field, new value, previous value) of a Create/Change child event; a custom field
    is named by its id. `custom_ticket_fields: {id: value}` names several at once."""
    previous = child.get("previous_value")
    if child.get("field_name") is not None:
        yield str(child["field_name"]), child.get("value"), previous
        return
    for key in child.keys() - CHANGE_EVENT_KEYS:
        if key == "custom_ticket_fields" and isinstance(child[key], dict):
            for field_id, value in child[key].items():
                yield str(field_id), value, previous.get(field_id) if isinstance(previous, dict) else previous
        else:
            yield key, child[key], previous


def _event_type(child: Row) -> Optional[str]:
    return child.get("event_type") or child.get("type")


def _change_row(event: Row, child: Row, subject: str) -> Row:
    """The columns every history row shares: its key (the child event id and what it
    changed: one child event can change several tags), ticket, audit, who and when."""
    return {
        "id": f"{child['id']}:{subject}",
        "event_id": child["id"],
        "audit_id": event["id"],
        "ticket_id": event["ticket_id"],
        "updater_id": event.get("updater_id"),
        "via": event.get("via") if isinstance(event.get("via"), str) else None,
        "created_at": event.get("created_at") or epoch_to_iso(event["timestamp"]),
    }


def ticket_field_history(page: List[Row]) -> List[Row]:
    """Every field a ticket event set or changed, system fields (status, priority,
    assignee_id, group_id, tags, ...) by name and custom fields by id, with the old value
    and the new, who and when. Values are `history_text`."""
    rows: List[Row] = []
    for event in page:
        for child in event.get("child_events") or ():
            if _event_type(child) not in FIELD_EVENT_TYPES:
                continue
            for field, value, previous in _field_changes(child):
                row = _change_row(event, child, field)
                row.update(
                    field=field,
                    event_type=_event_type(child),
                    value=history_text(value),
                    previous_value=history_text(previous),
                )
                rows.append(row)
    return rows


def _tag_list(value: Any) -> List[str]:
    """Tags as a list: Zendesk sends a list, or one space-separated string."""
    if isinstance(value, str):
        return value.split()
    return [str(tag) for tag in value or ()]


def ticket_tag_history(page: List[Row]) -> List[Row]:
    """One row per tag a ticket event added or removed: its `added_tags` / `removed_tags`
    where the export gives them, else the difference of the new and previous tag lists."""
    rows: List[Row] = []
    for event in page:
        for child in event.get("child_events") or ():
            if _event_type(child) not in FIELD_EVENT_TYPES:
                continue
            changes = [(f, v, p) for f, v, p in _field_changes(child) if f == "tags"]
            for _, value, previous in changes:
                new, old = _tag_list(value), _tag_list(previous)
                added = _tag_list(child["added_tags"]) if "added_tags" in child else sorted(set(new) - set(old))
                removed = _tag_list(child["removed_tags"]) if "removed_tags" in child else sorted(set(old) - set(new))
                for tag, change in [(t, "added") for t in added] + [(t, "removed") for t in removed]:
                    row = _change_row(event, child, tag)
                    row.update(tag=tag, change=change)
                    rows.append(row)
    return rows
