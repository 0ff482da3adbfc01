"""How a table's rows are made from the records an endpoint returns.

The registry (`settings.py`) names one of these per table that does not load the
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
