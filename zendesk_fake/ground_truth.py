"""What a correct replica of the fake account holds right now, table by table.

The definition a replication test compares against (16 tables, rows as the API's JSON):

- tickets: every ticket, deleted ones included (status "deleted"), as the export serves
  them minus the side-loaded `metric_set` and the duplicated `fields` list;
- ticket_metrics: the metric set of every ticket that is not deleted;
- ticket_audits / ticket_comments: every audit / comment, those of deleted tickets too
  (history is kept); a comment row is the Comment event plus `ticket_id`;
- ticket_metric_events, organizations, groups (soft-deleted ones with `deleted: true`):
  all rows;
- users: all, soft-deleted ones included (`active: false`);
- group_memberships: current memberships only (removed ones are gone);
- macros, ticket_fields (system fields included), ticket_forms, satisfaction_ratings,
  sla_policies, tags, talk_phone_numbers: the current lists.

Rows are deep copies ordered by id (tags by name), so a caller may modify them freely.
"""

from __future__ import annotations

from typing import Any, Dict, List

from .generator import Account, Row, paused_gc

TABLES = (
    "tickets", "ticket_metrics", "ticket_audits", "ticket_comments", "ticket_metric_events", "users",
    "organizations", "groups", "group_memberships", "macros", "ticket_fields", "ticket_forms",
    "satisfaction_ratings", "sla_policies", "tags", "talk_phone_numbers",
)


def _copy(value: Any) -> Any:
    """Deep copy of JSON-native data; twice as fast as copy.deepcopy or a JSON round trip."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


def _by_id(rows: List[Row]) -> List[Row]:
    return sorted(rows, key=lambda row: row["id"])


def build_ground_truth(account: Account) -> Dict[str, List[Row]]:
    """The 16 tables as a replica must hold them; the caller holds the account's lock."""
    comments = [
        {**event, "ticket_id": audit["ticket_id"]}
        for audit in account.audits
        for event in audit["events"]
        if event["type"] == "Comment"
    ]
    tables: Dict[str, List[Row]] = {
        "tickets": _by_id(account.tickets),
        "ticket_metrics": _by_id([m for t in account.tickets if (m := account.metric_sets.get(t["id"])) is not None]),
        "ticket_audits": _by_id(account.audits),
        "ticket_comments": _by_id(comments),
        "ticket_metric_events": _by_id(account.ticket_metric_events),
        "users": _by_id(account.users),
        "organizations": _by_id(account.organizations),
        "groups": _by_id(account.groups),
        "group_memberships": _by_id(account.group_memberships),
        "macros": _by_id(account.macros),
        "ticket_fields": _by_id(account.ticket_fields),
        "ticket_forms": _by_id(account.ticket_forms),
        "satisfaction_ratings": _by_id(account.satisfaction_ratings),
        "sla_policies": _by_id(account.sla_policies),
        "tags": sorted(account.tags, key=lambda row: row["name"]),
        "talk_phone_numbers": _by_id(account.phone_numbers),
    }
    with paused_gc():
        copied: Dict[str, List[Row]] = _copy(tables)
    return copied
