"""Incremental exports over HTTP: cursor and time-based, walked end to end."""

from __future__ import annotations

import base64
import time
from collections import Counter
from typing import Any, Dict

import pytest
import requests

from zendesk_fake import FakeZendesk

from .helpers import api_session, get_json, ids, ts_of, walk_cursor_export, walk_time_export

Row = Dict[str, Any]


def test_ticket_cursor_export_walks_everything_once(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/incremental/tickets/cursor.json"
    rows, last_cursor = walk_cursor_export(session, url, "tickets", start_time=0, per_page=7, include="metric_sets")
    truth = fake.ground_truth()
    assert sorted(ids(rows)) == ids(truth["tickets"]) and len(set(ids(rows))) == len(rows)
    keys = [(t["generated_timestamp"], t["id"]) for t in rows]
    assert keys == sorted(keys)
    for ticket in rows:
        assert ticket["fields"] == ticket["custom_fields"]
        if ticket["status"] == "deleted":
            assert "metric_set" not in ticket
        else:
            assert ticket["metric_set"]["ticket_id"] == ticket["id"]
    stripped = [{k: v for k, v in t.items() if k not in ("metric_set", "fields")} for t in sorted(rows, key=lambda t: t["id"])]
    assert stripped == truth["tickets"]
    metric_sets = sorted((t["metric_set"] for t in rows if "metric_set" in t), key=lambda m: m["id"])
    assert metric_sets == truth["ticket_metrics"]
    decoded = base64.b64decode(last_cursor).decode()
    assert decoded == f"{keys[-1][0]}.0||{keys[-1][1]}|"
    # The last cursor of a drained export returns nothing new, and says so.
    again = get_json(session, url, {"cursor": last_cursor})
    assert again["tickets"] == [] and again["end_of_stream"] is True and again["after_cursor"] == last_cursor


def test_after_url_keeps_parameters_and_start_time_filters(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/incremental/tickets/cursor"
    page = get_json(session, url, {"start_time": 0, "per_page": 5, "include": "metric_sets"})
    assert "per_page=5" in page["after_url"] and "include=metric_sets" in page["after_url"]
    assert "start_time" not in page["after_url"] and "cursor=" in page["after_url"]
    assert page["before_cursor"] and page["before_url"]
    middle = sorted(t["generated_timestamp"] for t in fake.ground_truth()["tickets"])[60]
    rows, _ = walk_cursor_export(session, url, "tickets", start_time=middle)
    expected = {t["id"] for t in fake.ground_truth()["tickets"] if t["generated_timestamp"] >= middle}
    assert set(ids(rows)) == expected


def test_user_cursor_export(fake: FakeZendesk, session: requests.Session) -> None:
    rows, _ = walk_cursor_export(session, fake.base_url + "/api/v2/incremental/users/cursor", "users", start_time=0, per_page=13)
    assert sorted(rows, key=lambda u: u["id"]) == fake.ground_truth()["users"]
    assert any(u["active"] is False for u in rows)


@pytest.mark.parametrize(
    "path, key, table",
    [
        ("/api/v2/incremental/organizations", "organizations", "organizations"),
        ("/api/v2/incremental/ticket_metric_events.json", "ticket_metric_events", "ticket_metric_events"),
        ("/api/v2/incremental/ticket_events", "ticket_events", "ticket_audits"),
    ],
)
def test_time_export_walks_everything_with_only_boundary_duplicates(
    fake: FakeZendesk, session: requests.Session, path: str, key: str, table: str
) -> None:
    pages = list(walk_time_export(session, fake.base_url + path, key, per_page=3))
    assert len(pages) >= 3
    seen = [r["id"] for page in pages for r in page]
    assert set(seen) == set(ids(fake.ground_truth()[table]))
    # Duplicates exist only because of the boundary second (checked page by page in the walker).
    duplicates = [i for i, n in Counter(seen).items() if n > 1]
    boundary_ids = {r["id"] for page in pages[:-1] for r in page if ts_of(key, r) == ts_of(key, page[-1])}
    assert set(duplicates) <= boundary_ids


def test_time_export_page_shape(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/incremental/organizations.json"
    page = get_json(session, url, {"start_time": 0, "per_page": 2})
    assert list(page) == ["organizations", "next_page", "count", "end_of_stream", "end_time"]
    assert page["next_page"].startswith(url + "?") and "per_page=2" in page["next_page"]
    last = get_json(session, url, {"start_time": 0})
    assert last["end_of_stream"] is True and last["next_page"]  # next_page even on the last page
    future = int(time.time()) - 120
    empty = get_json(session, url, {"start_time": future})
    assert empty["organizations"] == [] and empty["count"] == 0
    assert empty["end_time"] == future and empty["end_of_stream"] is True
    metric = get_json(session, fake.base_url + "/api/v2/incremental/ticket_metric_events", {"start_time": 0})
    assert "end_of_stream" not in metric and metric["count"] == len(metric["ticket_metric_events"])


def test_ticket_events_are_derived_from_audits(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/incremental/ticket_events"
    with_comments = [e for page in walk_time_export(session, url, "ticket_events", include="comment_events") for e in page]
    without = {e["id"]: e for page in walk_time_export(session, url, "ticket_events") for e in page}
    truth = fake.ground_truth()
    audits = {a["id"]: a for a in truth["ticket_audits"]}
    comments = {c["id"]: c for c in truth["ticket_comments"]}
    for event in with_comments:
        audit = audits[event["id"]]
        assert event["ticket_id"] == audit["ticket_id"] and event["updater_id"] == audit["author_id"]
        assert event["created_at"] == audit["created_at"] and event["via"] == audit["via"]["channel"]
        assert event["system"] == audit["metadata"]["system"] and event["event_type"] == "Audit"
        assert [{k: v for k, v in c.items() if k != "event_type"} for c in event["child_events"]] == audit["events"]
        assert all(c["event_type"] == c["type"] for c in event["child_events"])
        for child in event["child_events"]:
            if child["type"] == "Comment":
                row = {k: v for k, v in child.items() if k != "event_type"}
                assert {**row, "ticket_id": event["ticket_id"]} == comments[child["id"]]
        bare = without[event["id"]]
        assert [c for c in bare["child_events"] if c["type"] == "Comment"] == []
        has_comment = any(e["type"] == "Comment" for e in audit["events"])
        assert bare["comment_present"] is has_comment
    assert any(e["comment_present"] for e in without.values())


def test_export_parameter_errors(fake: FakeZendesk, session: requests.Session) -> None:
    for path in ("/api/v2/incremental/tickets/cursor", "/api/v2/incremental/organizations"):
        url = fake.base_url + path
        for params in ({}, {"start_time": "yesterday"}, {"start_time": "-5"}):
            response = session.get(url, params=params)
            assert response.status_code == 400 and response.json()["error"] == "InvalidValue"
        recent = session.get(url, params={"start_time": int(time.time()) - 30})
        assert recent.status_code == 400
        assert recent.json() == {"error": "InvalidValue", "description": "start_time must be more than one minute in the past"}
        assert session.get(url, params={"start_time": 0, "per_page": 1001}).status_code == 400
        assert session.get(url, params={"start_time": 0, "per_page": 1000}).status_code == 200
    bad_cursor = session.get(fake.base_url + "/api/v2/incremental/tickets/cursor", params={"cursor": "%%%"})
    assert bad_cursor.status_code == 400


def test_exports_withhold_the_last_minute() -> None:
    """Data generated as if "now" were 200 days ahead reaches into the future: exports must stop
    at now-60 s, however the export is read."""
    with FakeZendesk(seed=9, tickets=150, now=time.time() + 200 * 86_400) as future:
        session = api_session(future)
        cutoff = time.time() - 60
        hidden = [t for t in future.ground_truth()["tickets"] if t["generated_timestamp"] > cutoff]
        assert hidden, "the pinned clock must put some tickets into the future"
        rows, _ = walk_cursor_export(session, future.base_url + "/api/v2/incremental/tickets/cursor", "tickets", start_time=0)
        assert rows and max(t["generated_timestamp"] for t in rows) <= cutoff + 1
        assert not {t["id"] for t in hidden} & set(ids(rows))
        events = [e for page in walk_time_export(session, future.base_url + "/api/v2/incremental/ticket_events", "ticket_events") for e in page]
        assert events and max(e["timestamp"] for e in events) <= cutoff + 1


def test_more_than_a_page_sharing_one_second_comes_in_one_widened_page() -> None:
    with FakeZendesk(seed=4, tickets=1600) as big:
        summary = big.mutate(seed=1, fraction=1.0)
        stamp = summary["stamp"]
        assert len(summary["audits_created"]) > 1000 and len(summary["ticket_metric_events_created"]) > 1000
        session = api_session(big, bearer=True)
        for path, key, created in (
            ("/api/v2/incremental/ticket_events", "ticket_events", summary["audits_created"]),
            ("/api/v2/incremental/ticket_metric_events", "ticket_metric_events", summary["ticket_metric_events_created"]),
        ):
            page = get_json(session, big.base_url + path, {"start_time": stamp - 1})
            second = [r for r in page[key] if ts_of(key, r) == stamp]
            assert len(page[key]) > 1000 and sorted(ids(second)) == sorted(created)
            assert page["end_time"] == stamp and page["count"] == len(page[key])
            # Following next_page naively repeats the same page forever (Zendesk does this too);
            # a client must move on to end_time + 1 itself.
            repeat = get_json(session, page["next_page"])
            assert ids(repeat[key]) == ids(second) and repeat["end_time"] == stamp
            if "end_of_stream" in repeat:
                assert repeat["end_of_stream"] is False
            after = get_json(session, big.base_url + path, {"start_time": stamp + 1})
            assert after[key] == []


def test_cursor_export_resume_returns_exactly_the_changes(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    tickets_url = own_fake.base_url + "/api/v2/incremental/tickets/cursor"
    users_url = own_fake.base_url + "/api/v2/incremental/users/cursor"
    _, ticket_cursor = walk_cursor_export(session, tickets_url, "tickets", start_time=0, include="metric_sets")
    _, user_cursor = walk_cursor_export(session, users_url, "users", start_time=0)
    summary = own_fake.mutate(seed=2, fraction=0.05)
    changed, ticket_cursor = walk_cursor_export(session, tickets_url, "tickets", cursor=ticket_cursor, include="metric_sets")
    expected = summary["tickets_updated"] + summary["tickets_deleted"] + summary["tickets_created"] + summary["tickets_touched"]
    assert sorted(ids(changed)) == sorted(expected) and len(expected) >= 3
    truth = {t["id"]: t for t in own_fake.ground_truth()["tickets"]}
    for ticket in changed:
        assert ticket["generated_timestamp"] == summary["stamp"]
        assert {k: v for k, v in ticket.items() if k not in ("metric_set", "fields")} == truth[ticket["id"]]
        if ticket["id"] in summary["tickets_deleted"]:
            assert ticket["status"] == "deleted" and "metric_set" not in ticket
        else:
            assert ticket["metric_set"]["updated_at"] == ticket["updated_at"]
    users, _ = walk_cursor_export(session, users_url, "users", cursor=user_cursor)
    assert sorted(ids(users)) == sorted(set(summary["users_updated"] + summary["users_deleted"]))
    assert [u["active"] for u in users if u["id"] in summary["users_deleted"]] == [False]
    # A second mutation is stamped later, and the cursor kept from the first resume sees only it.
    second = own_fake.mutate(seed=3, fraction=0.02)
    assert second["stamp"] > summary["stamp"]
    changed, _ = walk_cursor_export(session, tickets_url, "tickets", cursor=ticket_cursor)
    assert sorted(ids(changed)) == sorted(
        second["tickets_updated"] + second["tickets_deleted"] + second["tickets_created"] + second["tickets_touched"]
    )


def test_time_export_resume_after_mutate(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/incremental/organizations"
    pages = list(walk_time_export(session, url, "organizations"))
    end_time = max(ts_of("organizations", o) for page in pages for o in page)
    summary = own_fake.mutate(seed=5, fraction=0.2)
    rows = [o for page in walk_time_export(session, url, "organizations", start_time=end_time) for o in page]
    fresh = [o for o in rows if ts_of("organizations", o) > end_time]
    assert sorted(ids(fresh)) == summary["organizations_updated"]
    events_url = own_fake.base_url + "/api/v2/incremental/ticket_events"
    events = [e for page in walk_time_export(session, events_url, "ticket_events", start_time=summary["stamp"]) for e in page]
    assert sorted(ids(events)) == sorted(summary["audits_created"])
