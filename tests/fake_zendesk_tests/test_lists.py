"""List endpoints: cursor pagination, the offset fallback, unpaginated lists, per-ticket lists."""

from __future__ import annotations

from typing import Any, Dict

import pytest
import requests

from zendesk_fake import FakeZendesk
from zendesk_fake.generator import iso, iso_to_epoch

from .helpers import get_json, ids, walk_cursor_list, walk_offset_list

LISTS = [
    ("/api/v2/groups", "groups", "groups"),
    ("/api/v2/group_memberships", "group_memberships", "group_memberships"),
    ("/api/v2/macros.json", "macros", "macros"),
    ("/api/v2/ticket_fields", "ticket_fields", "ticket_fields"),
    ("/api/v2/satisfaction_ratings", "satisfaction_ratings", "satisfaction_ratings"),
    ("/api/v2/tags.json", "tags", "tags"),
]


@pytest.mark.parametrize("path, key, table", LISTS)
def test_cursor_and_offset_walks_return_the_whole_list(
    fake: FakeZendesk, session: requests.Session, path: str, key: str, table: str
) -> None:
    truth = fake.ground_truth()[table]
    by_cursor = walk_cursor_list(session, fake.base_url + path, key, size=3)
    by_offset = walk_offset_list(session, fake.base_url + path, key, per_page=4)
    assert by_cursor == by_offset
    name = "name" if table == "tags" else "id"
    assert len({r[name] for r in by_cursor}) == len(by_cursor) == len(truth)
    assert sorted(by_cursor, key=lambda r: r[name]) == truth


def test_list_orders_match_zendesk(fake: FakeZendesk, session: requests.Session) -> None:
    tags = walk_cursor_list(session, fake.base_url + "/api/v2/tags", "tags")
    assert [(-t["count"], t["name"]) for t in tags] == sorted((-t["count"], t["name"]) for t in tags)
    groups = walk_cursor_list(session, fake.base_url + "/api/v2/groups", "groups")
    assert [(g["name"], g["id"]) for g in groups] == sorted((g["name"], g["id"]) for g in groups)
    assert any(g["deleted"] for g in groups)


def test_field_definitions(fake: FakeZendesk, session: requests.Session) -> None:
    account = fake.account
    for path, key, rows in (("/api/v2/user_fields", "user_fields", account.user_fields),
                            ("/api/v2/organization_fields.json", "organization_fields", account.organization_fields)):
        listed = walk_cursor_list(session, fake.base_url + path, key)
        assert sorted(listed, key=lambda f: f["id"]) == sorted(rows, key=lambda f: f["id"])
        assert all(f["key"] and f["type"] for f in listed)


def test_cursor_page_shape_and_backwards_link(fake: FakeZendesk, session: requests.Session) -> None:
    """Pages carry Zendesk's `prev` link; no client of the fake pages backwards, so
    following it is refused rather than served."""
    url = fake.base_url + "/api/v2/group_memberships"
    first = get_json(session, url, {"page[size]": 2})
    assert set(first) == {"group_memberships", "meta", "links"}
    assert first["meta"]["has_more"] is True and first["links"]["prev"] is None
    second = get_json(session, first["links"]["next"])
    assert "page%5Bbefore%5D=" in second["links"]["prev"] and second["meta"]["before_cursor"]
    backwards = session.get(second["links"]["prev"])
    assert backwards.status_code == 400 and backwards.json()["error"] == "InvalidPaginationParameter"


def test_cursor_errors(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/groups"
    too_big = session.get(url, params={"page[size]": 101})
    assert too_big.status_code == 400 and too_big.json()["error"] == "InvalidPaginationParameter"
    assert session.get(url, params={"page[size]": 100}).status_code == 200
    foreign = get_json(session, fake.base_url + "/api/v2/macros", {"page[size]": 1})["meta"]["after_cursor"]
    assert session.get(url, params={"page[size]": 2, "page[after]": foreign}).status_code == 400
    assert session.get(url, params={"page[size]": 2, "page[after]": "garbage!"}).status_code == 400


def test_offset_pagination_stops_at_page_100(fake: FakeZendesk, session: requests.Session) -> None:
    url = fake.base_url + "/api/v2/satisfaction_ratings"
    beyond = session.get(url, params={"page": 101, "per_page": 1})
    assert beyond.status_code == 400
    assert beyond.json()["errors"][0]["code"] == "InvalidPaginationDepth"
    last_allowed = get_json(session, url, {"page": 100, "per_page": 1})
    assert last_allowed["satisfaction_ratings"] == [] and last_allowed["next_page"] is None
    capped = get_json(session, url, {"per_page": 500})  # Zendesk caps per_page at 100
    assert len(capped["satisfaction_ratings"]) == min(100, capped["count"])
    assert capped["previous_page"] is None


def test_satisfaction_ratings_time_filter(fake: FakeZendesk, session: requests.Session) -> None:
    ratings = fake.ground_truth()["satisfaction_ratings"]
    stamps = sorted(r["updated_at"] for r in ratings)
    start, end = iso_to_epoch(stamps[3]), iso_to_epoch(stamps[-3])
    listed = walk_cursor_list(session, fake.base_url + "/api/v2/satisfaction_ratings", "satisfaction_ratings",
                              size=2, start_time=start, end_time=end)
    expected = [r["id"] for r in ratings if iso(start) <= r["updated_at"] < iso(end)]
    assert ids(listed) == expected and 0 < len(expected) < len(ratings)


def test_unpaginated_and_offset_only_endpoints(fake: FakeZendesk, session: requests.Session) -> None:
    truth = fake.ground_truth()
    for path, key, table in (("/api/v2/ticket_forms", "ticket_forms", "ticket_forms"),
                             ("/api/v2/slas/policies.json", "sla_policies", "sla_policies")):
        page = get_json(session, fake.base_url + path)
        assert page["next_page"] is None and page["previous_page"] is None
        assert page["count"] == len(page[key]) == 3
        assert sorted(page[key], key=lambda r: r["id"]) == truth[table]
    phones = walk_offset_list(session, fake.base_url + "/api/v2/channels/voice/phone_numbers", "phone_numbers", per_page=2)
    assert phones == truth["talk_phone_numbers"] and all("updated_at" not in p for p in phones)


def _first_ticket(fake: FakeZendesk, deleted: bool) -> Dict[str, Any]:
    return next(t for t in fake.ground_truth()["tickets"] if (t["status"] == "deleted") == deleted)


def test_per_ticket_audits(fake: FakeZendesk, session: requests.Session) -> None:
    """The source's `audits_mode="per_ticket"` reads these."""
    truth = fake.ground_truth()
    busy = max((t for t in truth["tickets"] if t["status"] != "deleted"),
               key=lambda t: sum(a["ticket_id"] == t["id"] for a in truth["ticket_audits"]))
    audits = walk_cursor_list(session, f"{fake.base_url}/api/v2/tickets/{busy['id']}/audits.json", "audits", size=2)
    assert audits == [a for a in truth["ticket_audits"] if a["ticket_id"] == busy["id"]] and len(audits) > 2
    assert audits == walk_offset_list(session, f"{fake.base_url}/api/v2/tickets/{busy['id']}/audits", "audits", per_page=2)


def test_per_ticket_audits_of_deleted_or_unknown_tickets_are_404(fake: FakeZendesk, session: requests.Session) -> None:
    deleted = _first_ticket(fake, deleted=True)["id"]
    for ticket_id in (deleted, 999_999):
        response = session.get(f"{fake.base_url}/api/v2/tickets/{ticket_id}/audits", params={"page[size]": 10})
        assert response.status_code == 404
        assert response.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_json_suffix_optional_and_unknown_paths(fake: FakeZendesk, session: requests.Session) -> None:
    plain = get_json(session, fake.base_url + "/api/v2/groups", {"page[size]": 5})
    suffixed = get_json(session, fake.base_url + "/api/v2/groups.json", {"page[size]": 5})
    assert plain["groups"] == suffixed["groups"]
    assert "/api/v2/groups.json?" in suffixed["links"]["next"]
    # Endpoints no client of the fake calls are not served (deleted users, ticket metrics
    # lists, per-ticket comments and metrics, the time-based ticket and user exports).
    unserved = ("/api/v2/deleted_users", "/api/v2/ticket_metrics", "/api/v2/tickets/1/comments", "/api/v2/tickets/1/metrics",
                "/api/v2/incremental/tickets", "/api/v2/incremental/users", "/api/v2/oauth/tokens/current")
    for path in ("/api/v2/nothing_here", "/api/v2/tickets/1/nothing", "/elsewhere", *unserved):
        response = session.get(fake.base_url + path)
        assert response.status_code == 404
        assert response.json() == {"error": "InvalidEndpoint", "description": "Not found"}
    assert session.post(fake.base_url + "/api/v2/groups").status_code == 404


def test_users_me_is_the_admin(fake: FakeZendesk, session: requests.Session) -> None:
    me = get_json(session, fake.base_url + "/api/v2/users/me.json")["user"]
    assert me["email"] == fake.email and me["role"] == "admin"


def test_rate_limit_headers_on_every_answer(fake: FakeZendesk, session: requests.Session) -> None:
    for path in ("/api/v2/groups", "/api/v2/nothing_here"):
        headers = session.get(fake.base_url + path).headers
        assert headers["x-rate-limit"] == "700" and headers["ratelimit-limit"] == "700"
        assert 0 <= int(headers["x-rate-limit-remaining"]) < 700
        assert int(headers["ratelimit-remaining"]) == int(headers["x-rate-limit-remaining"])
        assert 0 < int(headers["ratelimit-reset"]) <= 60
