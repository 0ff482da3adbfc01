"""mutate(), add_custom_field() and ground_truth(): a replica kept in sync over HTTP ends up
holding exactly the ground truth."""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional

import pytest
import requests

from zendesk_fake import TABLES, TRUTH_TABLES, FakeZendesk, Paging
from zendesk_fake.generator import iso_to_epoch

from .helpers import api_session, ids, walk_cursor_export, walk_cursor_list, walk_offset_list, walk_time_export

Row = Dict[str, Any]


def test_mutation_stamps_are_old_enough_and_strictly_increasing(own_fake: FakeZendesk) -> None:
    stamps = [own_fake.mutate(seed=s, fraction=0.01)["stamp"] for s in range(5)]
    assert stamps == sorted(set(stamps)), "every call gets a later second, even within one real second"
    assert stamps[-1] <= time.time() - 61
    truth = own_fake.ground_truth()
    newest = max(max(t["generated_timestamp"] for t in truth["tickets"]),
                 max(iso_to_epoch(u["updated_at"]) for u in truth["users"]))
    assert newest == stamps[-1], "nothing in the data set is newer than the last stamp"


def test_mutate_summary_matches_the_data(own_fake: FakeZendesk) -> None:
    before = own_fake.ground_truth()
    summary = own_fake.mutate(seed=7, fraction=0.05)
    after = own_fake.ground_truth()
    stamp = summary["stamp"]
    tickets = {t["id"]: t for t in after["tickets"]}
    assert len(summary["tickets_updated"]) == round(0.05 * sum(t["status"] != "deleted" for t in before["tickets"]))
    for tid in summary["tickets_updated"]:
        old = next(t for t in before["tickets"] if t["id"] == tid)
        new = tickets[tid]
        assert new["status"] != old["status"] and new["priority"] != old["priority"]
        assert new["custom_fields"] != old["custom_fields"] and new["generated_timestamp"] == stamp
    [deleted] = summary["tickets_deleted"]
    assert tickets[deleted]["status"] == "deleted"
    assert deleted not in {m["ticket_id"] for m in after["ticket_metrics"]}
    assert any(a["ticket_id"] == deleted for a in after["ticket_audits"]), "history of deleted tickets is kept"
    [created] = summary["tickets_created"]
    assert created == len(before["tickets"]) + 1 and tickets[created]["status"] == "new"
    new_audits = [a for a in after["ticket_audits"] if a["id"] in set(summary["audits_created"])]
    assert {a["ticket_id"] for a in new_audits} == set(summary["tickets_updated"]) | {created}
    assert all(iso_to_epoch(a["created_at"]) == stamp for a in new_audits)
    assert sorted(c["id"] for c in after["ticket_comments"] if c["audit_id"] in set(summary["audits_created"])) == sorted(summary["comments_created"])
    assert len(after["ticket_metric_events"]) == len(before["ticket_metric_events"]) + len(summary["ticket_metric_events_created"])
    [gone_user] = summary["users_deleted"]
    assert next(u for u in after["users"] if u["id"] == gone_user)["active"] is False
    assert summary["organizations_updated"] and all(
        iso_to_epoch(o["updated_at"]) == stamp for o in after["organizations"] if o["id"] in summary["organizations_updated"])
    [removed] = summary["group_memberships_removed"]
    assert removed in ids(before["group_memberships"]) and removed not in ids(after["group_memberships"])
    [group] = summary["groups_created"]
    assert group in ids(after["groups"]) and len(after["groups"]) == len(before["groups"]) + 1
    session = api_session(own_fake)
    audits = session.get(f"{own_fake.base_url}/api/v2/tickets/{deleted}/audits")
    assert audits.status_code == 404
    listed = walk_cursor_list(session, own_fake.base_url + "/api/v2/group_memberships", "group_memberships")
    assert removed not in ids(listed)


def test_ground_truth_is_a_deep_copy(own_fake: FakeZendesk) -> None:
    truth = own_fake.ground_truth()
    truth["tickets"][0]["custom_fields"][0]["value"] = "changed"
    truth["ticket_audits"][0]["events"].clear()
    fresh = own_fake.ground_truth()
    assert fresh["tickets"][0]["custom_fields"][0]["value"] != "changed" and fresh["ticket_audits"][0]["events"]


@pytest.mark.parametrize("kind, field_type, endpoint, key", [
    ("ticket", "multiselect", "/api/v2/ticket_fields", "ticket_fields"),
    ("user", "decimal", "/api/v2/user_fields", "user_fields"),
    ("organization", "dropdown", "/api/v2/organization_fields", "organization_fields"),
])
def test_add_custom_field(own_fake: FakeZendesk, kind: str, field_type: str, endpoint: str, key: str) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + ("/api/v2/incremental/tickets/cursor" if kind == "ticket" else "/api/v2/incremental/users/cursor")
    _, cursor = walk_cursor_export(session, url, "tickets" if kind == "ticket" else "users", start_time=0)
    field = own_fake.add_custom_field(kind, field_type)
    assert field["type"] == field_type
    listed = walk_cursor_list(session, own_fake.base_url + endpoint, key)
    assert field in listed
    truth = own_fake.ground_truth()
    if kind == "ticket":
        values = {t["id"]: next(c["value"] for c in t["custom_fields"] if c["id"] == field["id"]) for t in truth["tickets"]}
        changed, _ = walk_cursor_export(session, url, "tickets", cursor=cursor)
        options = {o["value"] for o in field["custom_field_options"]}
        assert all(set(v) <= options for v in values.values() if v is not None)
        assert sorted(ids(changed)) == sorted(tid for tid, v in values.items() if v is not None)
        assert field["id"] in truth["ticket_forms"][0]["ticket_field_ids"]
    else:
        table = "users" if kind == "user" else "organizations"
        attribute = "user_fields" if kind == "user" else "organization_fields"
        values = {r["id"]: r[attribute][field["key"]] for r in truth[table]}
        if kind == "user":
            changed, _ = walk_cursor_export(session, url, "users", cursor=cursor)
            assert sorted(ids(changed)) == sorted(uid for uid, v in values.items() if v is not None)
        else:
            assert all(v in {o["value"] for o in field["custom_field_options"]} for v in values.values() if v is not None)
    assert 0 < sum(v is not None for v in values.values()) < len(values)
    with pytest.raises(ValueError):
        own_fake.add_custom_field(kind, "hologram")


class Replica:
    """A minimal correct replica: exports resumed from their cursors, small lists replaced."""

    def __init__(self, fake: FakeZendesk) -> None:
        self.fake = fake
        self.session = api_session(fake, bearer=True)
        self.tables: Dict[str, Dict[Any, Row]] = {t: {} for t in TRUTH_TABLES}
        self.cursors: Dict[str, Optional[str]] = {"tickets": None, "users": None}
        self.end_times: Dict[str, int] = {
            t.data_key: 0 for t in TABLES if t.paging is Paging.TIME_EXPORT and t.served_by is None
        }

    def _cursor_export(self, name: str, path: str, sideloaded: Optional[Dict[str, List[Row]]] = None,
                       **params: Any) -> List[Row]:
        where = {"cursor": self.cursors[name]} if self.cursors[name] else {"start_time": 0}
        rows, self.cursors[name] = walk_cursor_export(
            self.session, self.fake.base_url + path, name, sideloaded, **where, **params
        )
        return rows

    def _time_export(self, name: str, path: str, **params: Any) -> List[Row]:
        rows = [r for page in walk_time_export(self.session, self.fake.base_url + path, name,
                                               start_time=self.end_times[name], per_page=50, **params) for r in page]
        if rows:
            self.end_times[name] = max(self.end_times[name], max(
                r["timestamp"] if name == "ticket_events" else iso_to_epoch(r.get("time") or r.get("updated_at") or r["created_at"])
                for r in rows))
        return rows

    def sync(self) -> None:
        t = self.tables
        for ticket in self._cursor_export("tickets", "/api/v2/incremental/tickets/cursor", include="metric_sets", per_page=40):
            metric_set = ticket.pop("metric_set", None)
            assert ticket.pop("fields") == ticket["custom_fields"]
            t["tickets"][ticket["id"]] = ticket
            if ticket["status"] == "deleted":
                t["ticket_metrics"] = {k: m for k, m in t["ticket_metrics"].items() if m["ticket_id"] != ticket["id"]}
            elif metric_set is not None:
                t["ticket_metrics"][metric_set["id"]] = metric_set
        sideloaded: Dict[str, List[Row]] = {"identities": []}
        users = self._cursor_export("users", "/api/v2/incremental/users/cursor", sideloaded, include="identities", per_page=30)
        t["users"].update((u["id"], u) for u in users)
        exported = {u["id"] for u in users}
        t["user_identities"] = {k: i for k, i in t["user_identities"].items() if i["user_id"] not in exported}
        t["user_identities"].update((i["id"], i) for i in sideloaded["identities"])
        t["organizations"].update((o["id"], o) for o in self._time_export("organizations", "/api/v2/incremental/organizations"))
        t["ticket_metric_events"].update((e["id"], e) for e in self._time_export("ticket_metric_events", "/api/v2/incremental/ticket_metric_events"))
        for event in self._time_export("ticket_events", "/api/v2/incremental/ticket_events", include="comment_events"):
            children = [{k: v for k, v in c.items() if k != "event_type"} for c in event["child_events"]]
            t["ticket_audits"][event["id"]] = {
                "id": event["id"], "ticket_id": event["ticket_id"], "created_at": event["created_at"],
                "author_id": event["updater_id"], "channel": event["via"], "system": event["system"], "events": children}
            for child in children:
                if child["type"] == "Comment":
                    t["ticket_comments"][child["id"]] = {**child, "ticket_id": event["ticket_id"]}
                if child["type"] in ("Create", "Change"):
                    self._history(event, child)
        for table in TABLES:  # a parent comes before the tables listed per its rows
            if table.paging is Paging.TIME_EXPORT and table.name not in EXPORTS_READ_ABOVE and table.served_by is None:
                t[table.name].update((r["id"], r) for r in self._time_export(table.data_key, table.template))
            if table.paging not in LIST_READERS:
                continue
            read = LIST_READERS[table.paging]
            if table.parent is None:
                rows = read(self.session, self.fake.base_url + table.template, table.data_key)
            else:
                parent, key = table.parent
                asked = table.per_ticket or (lambda row: True)  # a table listed per ticket: live ones it covers
                rows = [
                    {**row, key: parent_id}
                    for parent_id, parent_row in t[parent].items()
                    if parent_row.get("status") != "deleted" and asked(parent_row)
                    for row in read(self.session, self.fake.base_url + table.template.format(id=parent_id), table.data_key)
                ]
            renamed = RENAMED.get(table.name, {})
            rows = [{renamed.get(k, k): v for k, v in r.items()} for r in rows]
            t[table.name] = {r[table.key]: r for r in rows}


    def _history(self, event: Row, child: Row) -> None:
        """A field or tags change as the history tables hold it."""
        common = {"event_id": child["id"], "audit_id": event["id"], "ticket_id": event["ticket_id"],
                  "updater_id": event["updater_id"], "via": event["via"], "created_at": event["created_at"]}
        field = child["field_name"]
        self.tables["ticket_field_history"][f"{child['id']}:{field}"] = {
            "id": f"{child['id']}:{field}", **common, "field": field, "event_type": child["type"],
            "value": _text(child["value"]), "previous_value": _text(child.get("previous_value"))}
        if field == "tags":
            new, old = set(child["value"]), set(child.get("previous_value") or [])
            for tag in new ^ old:
                self.tables["ticket_tag_history"][f"{child['id']}:{tag}"] = {
                    "id": f"{child['id']}:{tag}", **common, "tag": tag, "change": "added" if tag in new else "removed"}


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: Time exports `Replica.sync` reads with their own row handling; the others load as they come.
#: Fields a replica stores under another name (docs/tables.md says why).
RENAMED = {"brands": {"subdomain": "brand_subdomain"}}

EXPORTS_READ_ABOVE = ("organizations", "ticket_metric_events", "ticket_audits")


def _single_page(session: requests.Session, url: str, key: str) -> List[Row]:
    rows: List[Row] = session.get(url).json()[key]
    return rows


#: How the replica reads each kind of list (exports have their own resumable walks above).
LIST_READERS: Dict[Paging, Callable[[requests.Session, str, str], List[Row]]] = {
    Paging.CURSOR_LIST: walk_cursor_list,
    Paging.OFFSET_LIST: walk_offset_list,
    Paging.SINGLE_PAGE: _single_page,
}


def _comparable(table: str, row: Row) -> Row:
    """Audits rebuilt from ticket events carry the channel and system metadata only; a field
    added after a row was last exported is absent from the replica's copy (same as null)."""
    if table == "ticket_audits" and "via" in row:
        row = {"id": row["id"], "ticket_id": row["ticket_id"], "created_at": row["created_at"], "author_id": row["author_id"],
               "channel": row["via"]["channel"], "system": row["metadata"]["system"], "events": row["events"]}
    if "custom_fields" in row:
        row = {**row, "custom_fields": [c for c in row["custom_fields"] if c["value"] is not None]}
    for attribute in ("user_fields", "organization_fields"):
        if attribute in row:
            row = {**row, attribute: {k: v for k, v in row[attribute].items() if v is not None}}
    return row


def assert_replica_matches(replica: Replica) -> None:
    truth = replica.fake.ground_truth()
    assert set(truth) == set(TRUTH_TABLES)
    for table in TRUTH_TABLES:
        held = [_comparable(table, replica.tables[table][k]) for k in sorted(replica.tables[table])]
        expected = [_comparable(table, r) for r in truth[table]]
        assert held == expected, table


def test_replica_synced_over_http_equals_ground_truth(own_fake: FakeZendesk) -> None:
    replica = Replica(own_fake)
    replica.sync()
    assert_replica_matches(replica)
    own_fake.mutate(seed=11, fraction=0.1)
    own_fake.add_custom_field("ticket", "integer")
    own_fake.add_custom_field("user", "checkbox")
    own_fake.add_custom_field("organization", "text")
    own_fake.mutate(seed=12, fraction=0.1)
    own_fake.reset_counts()
    replica.sync()
    assert_replica_matches(replica)
    counts = own_fake.request_counts()
    assert counts["/api/v2/incremental/tickets/cursor"] <= 2, "the resumed export reads only the changes"
