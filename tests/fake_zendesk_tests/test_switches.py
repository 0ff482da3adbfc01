"""Each switch does what it says; the request counters see every request."""

from __future__ import annotations

import json
import time

import pytest
import requests

from zendesk_fake import FakeZendesk

from .helpers import api_session

FORBIDDEN = {"error": {
    "title": "Forbidden",
    "message": "Access to this resource is restricted. Please contact the account administrator for assistance.",
}}


def test_plan_gating(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    base = own_fake.base_url + "/api/v2"
    own_fake.configure(plan_gated={"sla_policies": 403, "ticket_forms": 403, "talk_phone_numbers": 404,
                                   "satisfaction_ratings": 403})
    for path in ("/slas/policies", "/ticket_forms.json", "/satisfaction_ratings"):
        response = session.get(base + path, params={"page[size]": 10} if "ratings" in path else None)
        assert response.status_code == 403 and response.json() == FORBIDDEN
    talk = session.get(base + "/channels/voice/phone_numbers.json")
    assert talk.status_code == 404 and talk.text == "Not Found" and talk.headers["Content-Type"].startswith("text/plain")
    assert session.get(base + "/groups").status_code == 200
    own_fake.configure(plan_gated={"talk_phone_numbers": 403, "/api/v2/user_fields": 403})
    assert session.get(base + "/channels/voice/phone_numbers").text == "Forbidden"
    assert session.get(base + "/user_fields").status_code == 403
    assert session.get(base + "/slas/policies").status_code == 200
    own_fake.configure(plan_gated={})
    assert session.get(base + "/channels/voice/phone_numbers").status_code == 200
    with pytest.raises(ValueError):
        own_fake.configure(plan_gated={"no_such_table": 403})
    with pytest.raises(TypeError):
        own_fake.configure(no_such_switch=1)


def test_account_rate_limit_and_sliding_window(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/groups"
    own_fake.configure(rate_limit_per_minute=3, rate_window_seconds=1.0)
    answers = [session.get(url) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["x-rate-limit"] == "3"
    limited = answers[3]
    assert limited.text == "Too Many Requests" and limited.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert session.get(url).status_code == 200, "the window slid on"
    own_fake.configure(rate_window_seconds=30.0, retry_after_format="multi")
    session.get(url), session.get(url)
    multi = session.get(url)
    assert multi.status_code == 429
    values = [int(v) for v in multi.headers["Retry-After"].split(",")]
    assert len(values) == 2 and 1 <= min(values) <= max(values) <= 30
    own_fake.configure(rate_limit_per_minute=None)
    assert session.get(url).status_code == 200
    counts = own_fake.status_counts()
    assert counts["429 /api/v2/groups"] == 2


def test_export_limit_is_per_export_endpoint(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    base = own_fake.base_url + "/api/v2"
    own_fake.configure(export_rate_limit_per_minute=2)
    events = [session.get(base + "/incremental/ticket_events", params={"start_time": 0}) for _ in range(3)]
    assert [e.status_code for e in events] == [200, 200, 429]
    assert events[2].json()["error"] == "APIRateLimitExceeded"
    assert 55 <= int(events[2].headers["Retry-After"]) <= 60
    assert session.get(base + "/incremental/organizations", params={"start_time": 0}).status_code == 200
    assert session.get(base + "/incremental/tickets/cursor.json", params={"start_time": 0}).status_code == 200
    assert all(session.get(base + "/groups").status_code == 200 for _ in range(5)), "lists are not export-limited"
    assert own_fake.status_counts() == {"429 /api/v2/incremental/ticket_events": 1}


def test_shared_export_limit_counts_all_exports_together(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    base = own_fake.base_url + "/api/v2/incremental"
    own_fake.configure(export_rate_limit_per_minute=2, export_rate_scope="shared")
    assert session.get(base + "/ticket_events", params={"start_time": 0}).status_code == 200
    assert session.get(base + "/organizations", params={"start_time": 0}).status_code == 200
    third = session.get(base + "/tickets/cursor.json", params={"start_time": 0})
    assert third.status_code == 429
    assert third.json()["error"] == "APIRateLimitExceeded"
    with pytest.raises(ValueError):
        own_fake.configure(export_rate_scope="per_account")


def test_error_rate(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/tags"
    own_fake.configure(error_rate=1.0)
    answers = [session.get(url) for _ in range(40)]
    statuses = {a.status_code for a in answers}
    assert statuses == {500, 503}
    assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 503)
    assert all(a.json()["error"] for a in answers if a.status_code == 500)
    own_fake.configure(error_rate=0.25)
    failures = sum(session.get(url).status_code >= 500 for _ in range(200))
    assert 25 <= failures <= 80
    own_fake.configure(error_rate=0.0)
    assert all(session.get(url).status_code == 200 for _ in range(20))
    counts = own_fake.status_counts()
    assert counts.get("500 /api/v2/tags", 0) + counts.get("503 /api/v2/tags", 0) == 40 + failures


def test_drop_rate_cuts_the_connection_mid_body(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/incremental/tickets/cursor"
    own_fake.configure(drop_rate=1.0)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        session.get(url, params={"start_time": 0})
    own_fake.configure(drop_rate=0.0)
    assert session.get(url, params={"start_time": 0}).status_code == 200, "a new connection works again"
    assert own_fake.status_counts()["dropped /api/v2/incremental/tickets/cursor"] == 1


def test_malformed_json_only_on_the_chosen_endpoints(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    own_fake.configure(malformed_json_paths=("/api/v2/incremental/organizations.json",))
    broken = session.get(own_fake.base_url + "/api/v2/incremental/organizations", params={"start_time": 0})
    assert broken.status_code == 200 and int(broken.headers["Content-Length"]) == len(broken.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert session.get(own_fake.base_url + "/api/v2/groups").json()["groups"]
    refused = session.get(own_fake.base_url + "/api/v2/incremental/organizations", params={})
    assert refused.status_code == 400 and refused.json()["error"] == "InvalidValue", "errors stay intact"


def test_request_counters(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    base = own_fake.base_url
    own_fake.reset_counts()
    session.get(base + "/api/v2/tickets/5/audits.json")
    session.get(base + "/api/v2/tickets/6/audits")
    session.get(base + "/api/v2/groups")
    session.get(base + "/api/v2/incremental/tickets/cursor", params={"start_time": 0})
    requests.get(base + "/api/v2/groups")  # unauthenticated: still a request
    assert own_fake.request_counts() == {
        "/api/v2/tickets/{id}/audits": 2,
        "/api/v2/groups": 2,
        "/api/v2/incremental/tickets/cursor": 1,
    }
    assert own_fake.total_requests() == 5
    assert own_fake.status_counts() == {"401 /api/v2/groups": 1}
    own_fake.reset_counts()
    assert own_fake.request_counts() == {} and own_fake.total_requests() == 0 and own_fake.status_counts() == {}


def test_switches_are_plain_attributes_too(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    own_fake.plan_gated = {"groups": 403}
    assert session.get(own_fake.base_url + "/api/v2/groups").status_code == 403
    own_fake.plan_gated = {}
    own_fake.rate_limit_per_minute = 1
    session.get(own_fake.base_url + "/api/v2/tags")
    assert session.get(own_fake.base_url + "/api/v2/tags").status_code == 429


def test_export_page_rows_serves_short_pages(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/incremental/ticket_metric_events"
    full = session.get(url, params={"start_time": 0}).json()
    own_fake.configure(export_page_rows=10)
    short = session.get(url, params={"start_time": 0}).json()
    assert len(full["ticket_metric_events"]) > 10
    assert 10 <= short["count"] < len(full["ticket_metric_events"])  # widened to finish its last second
    assert "end_of_stream" not in short
    users = session.get(own_fake.base_url + "/api/v2/incremental/users/cursor", params={"start_time": 0}).json()
    assert len(users["users"]) == 10 and users["end_of_stream"] is False
    with pytest.raises(ValueError):
        own_fake.configure(export_page_rows=0)


def test_satisfaction_time_field_chooses_what_start_time_filters_on(own_fake: FakeZendesk) -> None:
    session = api_session(own_fake)
    url = own_fake.base_url + "/api/v2/satisfaction_ratings"
    rating = own_fake.account.satisfaction_ratings[0]
    rating.update({"created_at": "2020-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z"})
    own_fake.refresh()
    after_creation = {"page[size]": 100, "start_time": 1_600_000_000}

    def ids() -> set:
        return {r["id"] for r in session.get(url, params=after_creation).json()["satisfaction_ratings"]}

    assert rating["id"] in ids()
    own_fake.configure(satisfaction_time_field="created_at")
    assert rating["id"] not in ids()
    with pytest.raises(ValueError):
        own_fake.configure(satisfaction_time_field="solved_at")
