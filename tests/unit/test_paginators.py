"""paginators.py, walked through ZendeskClient on a mocked transport."""

from __future__ import annotations

from typing import Any, Callable, Dict, List
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock

from zendesk.api.client import ZendeskClient
from zendesk.api.paginators import (
    STALL_PAGES,
    CursorExportPaginator,
    PaginationStalled,
    TimeExportPaginator,
    list_paginator,
    list_params,
)
from zendesk.tables.registry import TABLES_BY_NAME, Endpoint, Pagination

API = "https://acme.zendesk.com/api/v2"
TICKETS = TABLES_BY_NAME["tickets"].endpoint
ORGS = TABLES_BY_NAME["organizations"].endpoint
METRIC_EVENTS = TABLES_BY_NAME["ticket_metric_events"].endpoint
GROUPS = TABLES_BY_NAME["groups"].endpoint
PHONES = TABLES_BY_NAME["talk_phone_numbers"].endpoint
FORMS = TABLES_BY_NAME["ticket_forms"].endpoint


def query(request: Any) -> Dict[str, List[str]]:
    """The request's query, decoded but case-preserved (requests-mock's .qs lowercases)."""
    return parse_qs(urlsplit(request.url).query)


def export_params(endpoint: Endpoint) -> Dict[str, Any]:
    # What resources._export_pages sends on every export.
    return {"per_page": endpoint.page_size, **endpoint.params}


def walk(client: ZendeskClient, endpoint: Endpoint, paginator: Any, params: Dict[str, Any]) -> List[List[Any]]:
    return list(client.pages(endpoint, paginator, params))


# --- cursor exports -----------------------------------------------------------------


def test_cursor_export_walks_start_time_then_cursors_until_end_of_stream(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/tickets/cursor",
        [
            {"json": {"tickets": [{"id": 1}], "after_cursor": "c1", "end_of_stream": False}},
            {"json": {"tickets": [{"id": 2}], "after_cursor": "c2", "end_of_stream": False}},
            {"json": {"tickets": [{"id": 3}], "after_cursor": "c3", "end_of_stream": True}},
        ],
    )
    paginator = CursorExportPaginator(start_time=1700000000, cursor=None)
    pages = walk(make_client(), TICKETS, paginator, export_params(TICKETS))

    assert pages == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    sent = [query(r) for r in zendesk_http.request_history]
    assert len(sent) == 3
    assert sent[0]["start_time"] == ["1700000000"] and "cursor" not in sent[0]
    assert sent[1]["cursor"] == ["c1"] and "start_time" not in sent[1]
    assert sent[2]["cursor"] == ["c2"] and "start_time" not in sent[2]
    for params in sent:
        assert params["per_page"] == ["1000"]
        assert params["include"] == ["metric_sets"]
    assert paginator.after_cursor == "c3"
    assert paginator.end_of_stream is True


def test_cursor_export_resumes_with_cursor_only(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/tickets/cursor",
        json={"tickets": [], "after_cursor": "saved", "end_of_stream": True},
    )
    paginator = CursorExportPaginator(start_time=1700000000, cursor="saved")
    walk(make_client(), TICKETS, paginator, export_params(TICKETS))

    assert zendesk_http.call_count == 1
    sent = query(zendesk_http.last_request)
    assert sent["cursor"] == ["saved"]
    assert "start_time" not in sent
    assert paginator.after_cursor == "saved"


def test_cursor_export_without_start_time_starts_at_zero(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/incremental/tickets/cursor", json={"tickets": [], "after_cursor": "a", "end_of_stream": True}
    )
    walk(make_client(), TICKETS, CursorExportPaginator(start_time=None, cursor=None), {})
    assert query(zendesk_http.last_request)["start_time"] == ["0"]


def test_cursor_export_stops_when_no_cursor_comes_back(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/tickets/cursor",
        [
            {"json": {"tickets": [{"id": 1}], "after_cursor": "c1", "end_of_stream": False}},
            {"json": {"tickets": [], "after_cursor": None, "end_of_stream": False}},
            {"json": {"tickets": [{"id": 99}], "after_cursor": "never", "end_of_stream": True}},
        ],
    )
    paginator = CursorExportPaginator(start_time=0, cursor=None)
    walk(make_client(), TICKETS, paginator, {})
    assert zendesk_http.call_count == 2
    assert paginator.after_cursor == "c1"  # a missing cursor never erases the last good one


# --- time exports -------------------------------------------------------------------


def test_time_export_next_start_time_is_end_time(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/organizations",
        [
            {"json": {"organizations": [{"id": 1}], "count": 1, "end_time": 200, "end_of_stream": False}},
            {"json": {"organizations": [{"id": 2}], "count": 1, "end_time": 300, "end_of_stream": False}},
            {"json": {"organizations": [{"id": 3}], "count": 1, "end_time": 400, "end_of_stream": True}},
        ],
    )
    paginator = TimeExportPaginator(100)
    pages = walk(make_client(), ORGS, paginator, export_params(ORGS))
    assert pages == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    starts = [query(r)["start_time"] for r in zendesk_http.request_history]
    assert starts == [["100"], ["200"], ["300"]]
    assert all(query(r)["per_page"] == ["1000"] for r in zendesk_http.request_history)
    assert paginator.start_time == 400


@pytest.mark.parametrize(
    "end_time",
    [pytest.param(100, id="end-equals-start"), pytest.param(90, id="end-before-start")],
)
def test_time_export_stuck_second_moves_one_second_on(
    end_time: int, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/organizations",
        [
            {"json": {"organizations": [{"id": 1}], "count": 1000, "end_time": end_time, "end_of_stream": False}},
            {"json": {"organizations": [{"id": 2}], "count": 1, "end_time": 150, "end_of_stream": True}},
        ],
    )
    walk(make_client(), ORGS, TimeExportPaginator(100), export_params(ORGS))
    starts = [query(r)["start_time"] for r in zendesk_http.request_history]
    assert starts == [["100"], ["101"]]


def test_time_export_without_end_of_stream_ends_only_on_an_empty_page(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    # /incremental/ticket_metric_events sends no end_of_stream, and short pages are no end.
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/ticket_metric_events",
        [
            {"json": {"ticket_metric_events": [{"id": 1}, {"id": 2}], "count": 2, "end_time": 110}},
            {"json": {"ticket_metric_events": [{"id": 3}, {"id": 4}], "end_time": 120}},  # no count: rows
            {"json": {"ticket_metric_events": [{"id": 5}], "count": 1, "end_time": 130}},
            {"json": {"ticket_metric_events": [], "count": 0, "end_time": 130}},
            {"json": {"ticket_metric_events": [{"id": 6}], "count": 1, "end_time": 140}},
        ],
    )
    paginator = TimeExportPaginator(100)
    pages = walk(make_client(), METRIC_EVENTS, paginator, export_params(METRIC_EVENTS))
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    assert zendesk_http.call_count == 4
    assert [query(r)["start_time"] for r in zendesk_http.request_history] == [["100"], ["110"], ["120"], ["130"]]
    assert paginator.end_of_stream is True


def test_time_export_end_of_stream_wins_over_full_page(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/organizations",
        [
            {"json": {"organizations": [{"id": 1}], "count": 1, "end_time": 200, "end_of_stream": False}},
            {"json": {"organizations": [{"id": 2}, {"id": 3}], "count": 2, "end_time": 300, "end_of_stream": True}},
            {"json": {"organizations": [{"id": 4}], "count": 1, "end_time": 400, "end_of_stream": True}},
        ],
    )
    walk(make_client(), ORGS, TimeExportPaginator(100), {})
    assert zendesk_http.call_count == 2


def test_time_export_without_end_time_stops(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/organizations",
        [
            {"json": {"organizations": [{"id": 1}], "count": 1000, "end_of_stream": False}},
            {"json": {"organizations": [{"id": 2}], "count": 1, "end_time": 5, "end_of_stream": True}},
        ],
    )
    walk(make_client(), ORGS, TimeExportPaginator(100), {})
    assert zendesk_http.call_count == 1


# --- lists --------------------------------------------------------------------------


def test_cursor_list_sends_page_size_and_after_until_has_more_false(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        [
            {"json": {"groups": [{"id": 1}], "meta": {"has_more": True, "after_cursor": "AbC1"}}},
            {"json": {"groups": [{"id": 2}], "meta": {"has_more": True, "after_cursor": "dEf2"}}},
            {"json": {"groups": [{"id": 3}], "meta": {"has_more": False, "after_cursor": "gHi3"}}},
            {"json": {"groups": [{"id": 4}], "meta": {"has_more": False, "after_cursor": None}}},
        ],
    )
    pages = walk(make_client(), GROUPS, list_paginator(GROUPS), list_params(GROUPS))
    assert pages == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    sent = [query(r) for r in zendesk_http.request_history]
    assert [q.get("page[after]") for q in sent] == [None, ["AbC1"], ["dEf2"]]
    assert all(q["page[size]"] == ["100"] for q in sent)


def test_offset_list_follows_next_page(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/channels/voice/phone_numbers",
        json={
            "phone_numbers": [{"id": 1}],
            "next_page": f"{API}/channels/voice/phone_numbers.json?page=2&per_page=100",
        },
    )
    zendesk_http.register_uri(
        "GET",
        f"{API}/channels/voice/phone_numbers.json",
        json={"phone_numbers": [{"id": 2}], "next_page": None},
    )
    pages = walk(make_client(), PHONES, list_paginator(PHONES), list_params(PHONES))
    assert pages == [[{"id": 1}], [{"id": 2}]]
    sent = [query(r) for r in zendesk_http.request_history]
    assert sent == [{"per_page": ["100"]}, {"page": ["2"], "per_page": ["100"]}]


def test_single_page_list_makes_one_request(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/ticket_forms",
        json={"ticket_forms": [{"id": 1}, {"id": 2}], "next_page": f"{API}/ticket_forms?page=2"},
    )
    pages = walk(make_client(), FORMS, list_paginator(FORMS), list_params(FORMS))
    assert pages == [[{"id": 1}, {"id": 2}]]
    assert zendesk_http.call_count == 1


@pytest.mark.parametrize(
    "endpoint, expected",
    [
        pytest.param(GROUPS, {"page[size]": 100}, id="cursor-list"),
        pytest.param(PHONES, {"per_page": 100}, id="offset-list"),
        pytest.param(FORMS, {}, id="single-page"),
        pytest.param(
            Endpoint("/x", "x", Pagination.CURSOR_LIST, 100, params={"sort": "id"}),
            {"page[size]": 100, "sort": "id"},
            id="extra-params-kept",
        ),
    ],
)
def test_list_params(endpoint: Endpoint, expected: Dict[str, Any]) -> None:
    assert list_params(endpoint) == expected


@pytest.mark.parametrize(
    "endpoint", [pytest.param(TICKETS, id="cursor-export"), pytest.param(ORGS, id="time-export")]
)
def test_list_paginator_refuses_exports(endpoint: Endpoint) -> None:
    with pytest.raises(ValueError, match="export"):
        list_paginator(endpoint)


# --- pages that do not advance -------------------------------------------------------


def _stalled(client: ZendeskClient, endpoint: Endpoint, paginator: Any, table: str) -> str:
    with pytest.raises(PaginationStalled) as raised:
        list(client.pages(endpoint, paginator, {}, table=table))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{table} (")
    return message


def test_a_cursor_export_repeating_its_cursor_stops(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/incremental/tickets/cursor",
        json={"tickets": [{"id": 1}], "after_cursor": "same", "end_of_stream": False},
    )
    message = _stalled(make_client(), TICKETS, CursorExportPaginator(start_time=0, cursor=None), "tickets")
    assert "after_cursor 'same' repeated" in message
    assert zendesk_http.call_count == 1 + STALL_PAGES


def test_a_cursor_export_without_end_of_stream_stops_after_a_few_empty_pages(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    counter = iter(range(10_000))
    zendesk_http.register_uri(
        "GET", f"{API}/incremental/tickets/cursor",
        json=lambda request, context: {"tickets": [], "after_cursor": f"c{next(counter)}"},
    )
    message = _stalled(make_client(), TICKETS, CursorExportPaginator(start_time=0, cursor=None), "tickets")
    assert "empty pages with no end_of_stream" in message
    assert zendesk_http.call_count == STALL_PAGES


def test_a_time_export_whose_end_time_does_not_move_stops(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/incremental/organizations",
        json={"organizations": [{"id": 1}], "count": 1, "end_time": 100, "end_of_stream": False},
    )
    message = _stalled(make_client(), ORGS, TimeExportPaginator(100), "organizations")
    assert "end_time 100 did not move" in message
    assert zendesk_http.call_count == STALL_PAGES


def test_a_cursor_list_handing_back_the_same_cursor_stops(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/groups",
        json={"groups": [{"id": 1}], "meta": {"has_more": True, "after_cursor": "g1"}},
    )
    message = _stalled(make_client(), GROUPS, list_paginator(GROUPS), "groups")
    assert "has_more true with the same after_cursor 'g1'" in message
    assert zendesk_http.call_count == 1 + STALL_PAGES


def test_an_offset_list_whose_next_page_is_the_same_page_stops(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/ticket_forms",
        json={"ticket_forms": [{"id": 1}], "next_page": f"{API}/ticket_forms"},
    )
    endpoint = Endpoint("/ticket_forms", "ticket_forms", Pagination.OFFSET_LIST, 100)
    message = _stalled(make_client(), endpoint, list_paginator(endpoint), "ticket_forms")
    assert "next_page is the page just read" in message
