"""client.py: PacedAdapter (host check, pacing, Retry-After, counting), status policy, auth."""

from __future__ import annotations

import base64
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any, Callable, Dict, List
from urllib.parse import urlsplit

import pytest
import requests
import requests_mock
from requests.structures import CaseInsensitiveDict

from zendesk import marketplace_headers
from zendesk.run import progress
from zendesk.api.client import USER_AGENT, ZendeskClient, endpoint_template
from zendesk.auth.credentials import ZendeskApiTokenCredentials, ZendeskOAuthTokenCredentials
from zendesk.errors import TableUnavailable, ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from zendesk.api.paginators import CursorExportPaginator, list_paginator, list_params
from zendesk.api.rate_limit import RateBudget
from zendesk.tables.registry import TABLES_BY_NAME

API = "https://acme.zendesk.com/api/v2"
GROUPS = TABLES_BY_NAME["groups"].endpoint
PHONES = TABLES_BY_NAME["talk_phone_numbers"].endpoint
FORMS = TABLES_BY_NAME["ticket_forms"].endpoint
TICKETS = TABLES_BY_NAME["tickets"].endpoint

SECRET = "sup3r-s3cret-t0ken"
GROUPS_PAGE = {"groups": [{"id": 1}], "meta": {"has_more": False}}


def list_groups(client: ZendeskClient, **kwargs: Any) -> List[List[Any]]:
    return list(client.pages(GROUPS, list_paginator(GROUPS), list_params(GROUPS), **kwargs))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """What dlt's retry waits (through progress.wait, see client._RetryWaits), without waiting."""
    recorded: List[float] = []
    monkeypatch.setattr(progress, "wait", lambda seconds, *args, **kwargs: recorded.append(seconds))
    return recorded


# --- the runtime settings the conftest sets really reach the client --------------------


def test_runtime_env_reaches_the_retrying_session(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", status_code=502)
    with pytest.raises(ZendeskApiError):
        list_groups(make_client())
    assert zendesk_http.call_count == 3  # RUNTIME__REQUEST_MAX_ATTEMPTS=3


def test_explicit_max_attempts_wins(zendesk_http: requests_mock.Adapter) -> None:
    client = ZendeskClient(
        "https://acme.zendesk.com", requests.auth.HTTPBasicAuth("a", "b"), RateBudget(1000, 1000), request_max_attempts=2
    )
    zendesk_http.register_uri("GET", f"{API}/groups", status_code=500)
    with pytest.raises(ZendeskApiError):
        list_groups(client)
    assert zendesk_http.call_count == 2


# --- host check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_page",
    [
        pytest.param("https://evil.example.com/api/v2/channels/voice/phone_numbers?page=2", id="other-host"),
        pytest.param("https://acme.zendesk.com.evil.example.com/api/v2/x?page=2", id="lookalike-host"),
        pytest.param("https://other.zendesk.com/api/v2/channels/voice/phone_numbers?page=2", id="other-account"),
    ],
)
def test_next_page_on_another_host_is_refused(
    next_page: str, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    # Later registrations match first: the catch-all goes in before the real first page.
    zendesk_http.register_uri(requests_mock.ANY, requests_mock.ANY, json={"phone_numbers": [], "next_page": None})
    zendesk_http.register_uri(
        "GET", f"{API}/channels/voice/phone_numbers", json={"phone_numbers": [{"id": 1}], "next_page": next_page}
    )
    client = make_client(auth=ZendeskOAuthTokenCredentials(oauth_token=SECRET).auth("https://acme.zendesk.com"))
    seen: List[Any] = []
    with pytest.raises(ZendeskConfigError) as info:
        for rows in client.pages(PHONES, list_paginator(PHONES), list_params(PHONES)):
            seen.append(rows)
    assert seen == [[{"id": 1}]]
    assert urlsplit(next_page).netloc in str(info.value)
    hosts = {urlsplit(r.url).netloc for r in zendesk_http.request_history}
    assert hosts == {"acme.zendesk.com"}
    assert zendesk_http.call_count == 1


def test_next_page_downgraded_to_plain_http_is_refused(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    # Same host, but http://: the bearer token would cross the network in clear text.
    zendesk_http.register_uri(
        "GET",
        f"{API}/channels/voice/phone_numbers",
        json={"phone_numbers": [{"id": 1}], "next_page": "http://acme.zendesk.com/api/v2/channels/voice/phone_numbers?page=2"},
    )
    zendesk_http.register_uri(
        "GET", "http://acme.zendesk.com/api/v2/channels/voice/phone_numbers", json={"phone_numbers": [], "next_page": None}
    )
    client = make_client(auth=ZendeskOAuthTokenCredentials(oauth_token=SECRET).auth("https://acme.zendesk.com"))
    error = None
    try:
        list(client.pages(PHONES, list_paginator(PHONES), list_params(PHONES)))
    except ZendeskConfigError as exc:
        error = exc
    plain = [r.headers.get("Authorization") for r in zendesk_http.request_history if r.scheme == "http"]
    assert plain == [], f"credentials sent over plain HTTP: {len(plain)} request(s)"
    assert error is not None


def test_loopback_base_url_with_port_is_the_allowed_host(zendesk_http: requests_mock.Adapter) -> None:
    client = ZendeskClient("http://127.0.0.1:8123", requests.auth.HTTPBasicAuth("a", "b"), RateBudget(1000, 1000))
    zendesk_http.register_uri("GET", "http://127.0.0.1:8123/api/v2/groups", json=GROUPS_PAGE)
    assert list_groups(client) == [[{"id": 1}]]
    zendesk_http.register_uri("GET", "http://127.0.0.1:9999/api/v2/groups", json=GROUPS_PAGE)
    with pytest.raises(ZendeskConfigError, match="127.0.0.1:9999"):
        client.rest.get("http://127.0.0.1:9999/api/v2/groups")


# --- status policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth_factory",
    [
        pytest.param(lambda: ZendeskApiTokenCredentials(email="admin@acme.com", api_token=SECRET).auth("https://acme.zendesk.com"), id="api-token"),
        pytest.param(lambda: ZendeskOAuthTokenCredentials(oauth_token=SECRET).auth("https://acme.zendesk.com"), id="oauth"),
    ],
)
def test_401_raises_auth_error_without_the_secret(
    auth_factory: Callable[[], Any], make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/groups", status_code=401, json={"error": "Couldn't authenticate you"}
    )
    client = make_client(auth=auth_factory())
    with pytest.raises(ZendeskAuthError) as info:
        list_groups(client)
    text, rep = str(info.value), repr(info.value)
    assert "Check the credentials" in text
    assert "401" in text
    assert "Couldn't authenticate you" in text
    encoded = base64.b64encode(f"admin@acme.com/token:{SECRET}".encode()).decode()
    for leak in (SECRET, encoded):
        assert leak not in text
        assert leak not in rep
    assert zendesk_http.call_count == 1  # never retried


def test_401_on_get_raises_auth_error(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/users/me", status_code=401, text="Unauthorized")
    with pytest.raises(ZendeskAuthError, match="Check the credentials"):
        make_client().get("/users/me")


def test_after_a_401_no_other_request_is_sent(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    """Parallel resources share the client: once one got a 401, the others stop sending."""
    zendesk_http.register_uri("GET", f"{API}/users/me", status_code=401, text="Unauthorized")
    zendesk_http.register_uri("GET", f"{API}/groups", json={"groups": [], "meta": {"has_more": False}})
    client = make_client()
    with pytest.raises(ZendeskAuthError):
        client.get("/users/me")
    with pytest.raises(ZendeskAuthError, match="Check the credentials"):
        client.get("/groups")
    assert zendesk_http.call_count == 1
    assert client.counter.total == 1


@pytest.mark.parametrize("status", [pytest.param(403, id="403"), pytest.param(404, id="404")])
def test_plan_gated_403_404_raise_table_unavailable(
    status: int, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/ticket_forms", status_code=status, json={"error": "Forbidden"})
    client = make_client()
    with pytest.raises(TableUnavailable) as info:
        list(client.pages(FORMS, list_paginator(FORMS), list_params(FORMS), table="ticket_forms", plan_gated=True))
    assert info.value.table == "ticket_forms"
    assert info.value.status_code == status
    assert "ticket_forms" in str(info.value)
    assert zendesk_http.call_count == 1


def test_plan_gated_on_get_raises_table_unavailable(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/slas/policies", status_code=403, json={"error": "Forbidden"})
    with pytest.raises(TableUnavailable):
        make_client().get("/slas/policies", table="sla_policies", plan_gated=True)


def test_403_not_gated_mentions_admin_and_scope(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        status_code=403,
        json={"error": "Forbidden", "description": "Missing the following required scopes: read"},
    )
    with pytest.raises(ZendeskApiError) as info:
        list_groups(make_client())
    assert not isinstance(info.value, TableUnavailable)
    message = str(info.value)
    assert "admin" in message
    assert "'read' scope" in message
    assert "Missing the following required scopes: read" in message
    assert info.value.status_code == 403
    assert zendesk_http.call_count == 1


def test_403_with_nested_error_object_shows_zendesk_message(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        status_code=403,
        json={"error": {"title": "Forbidden", "message": "You do not have access to this page."}},
    )
    with pytest.raises(ZendeskApiError, match="You do not have access to this page"):
        list_groups(make_client())


def test_404_mentions_subdomain(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/groups", status_code=404, json={"error": "RecordNotFound", "description": "Not found"}
    )
    with pytest.raises(ZendeskApiError) as info:
        list_groups(make_client())
    assert "subdomain" in str(info.value)
    assert "RecordNotFound" in str(info.value)
    assert info.value.status_code == 404


def test_other_4xx_raises_with_zendesk_detail(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/groups", status_code=400, json={"error": "TooManyValues", "description": "max 100"}
    )
    with pytest.raises(ZendeskApiError) as info:
        list_groups(make_client())
    assert "400" in str(info.value)
    assert "TooManyValues - max 100" in str(info.value)
    assert zendesk_http.call_count == 1


def test_429_with_retry_after_then_200_succeeds(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter, sleeps: List[float]
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        [
            {"status_code": 429, "headers": {"Retry-After": "1"}, "text": "Too Many Requests"},
            {"json": GROUPS_PAGE},
        ],
    )
    client = make_client()
    assert list_groups(client) == [[{"id": 1}]]
    assert zendesk_http.call_count == 2
    assert client.counter.total == 2  # every attempt counts, the 429 too


@pytest.mark.parametrize(
    "header, expected_wait",
    [
        pytest.param("3, 2", 3, id="two-values"),
        pytest.param("2,3", 3, id="two-values-no-space"),
        pytest.param("4", 4, id="single"),
    ],
)
def test_multi_valued_retry_after_is_normalized_before_dlt_reads_it(
    header: str,
    expected_wait: int,
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., ZendeskClient],
    zendesk_http: requests_mock.Adapter,
    sleeps: List[float],
) -> None:
    # Let dlt honour Retry-After up to 10 s (the conftest caps every delay at 0).
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "10")
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        [{"status_code": 429, "headers": {"Retry-After": header}}, {"json": GROUPS_PAGE}],
    )
    assert list_groups(make_client()) == [[{"id": 1}]]
    assert zendesk_http.call_count == 2
    # Unnormalized, dlt cannot parse "3, 2" and falls back to backoff (factor 0): no wait.
    assert sleeps == [expected_wait]


def test_http_date_retry_after_is_honoured_as_a_date(
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., ZendeskClient],
    zendesk_http: requests_mock.Adapter,
    sleeps: List[float],
) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "60")
    in_three_seconds = formatdate(time.time() + 3, usegmt=True)  # "Wed, 21 Oct 2015 07:28:03 GMT"
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        [{"status_code": 503, "headers": {"Retry-After": in_three_seconds}}, {"json": GROUPS_PAGE}],
    )
    assert list_groups(make_client()) == [[{"id": 1}]]
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 4, f"waited {sleeps[0]} s for a Retry-After 3 s ahead"


@pytest.mark.parametrize("status", [pytest.param(503, id="503"), pytest.param(429, id="429")])
def test_retryable_status_every_time_raises_api_error_after_max_attempts(
    status: int, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", status_code=status, text="Service Unavailable")
    client = make_client()
    with pytest.raises(ZendeskApiError) as info:
        list_groups(client)
    assert info.value.status_code == status
    assert "after every retry" in str(info.value)
    assert "/api/v2/groups" in str(info.value)
    assert zendesk_http.call_count == 3
    assert client.counter.total == 3


def test_503_on_get_raises_api_error_after_max_attempts(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/tickets/5/audits", status_code=503)
    with pytest.raises(ZendeskApiError, match="after every retry"):
        make_client().get("/tickets/5/audits")
    assert zendesk_http.call_count == 3


def test_connection_error_every_time_raises_api_error(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", exc=requests.ConnectionError("boom"))
    with pytest.raises(ZendeskApiError, match="Could not reach https://acme.zendesk.com"):
        list_groups(make_client())
    assert zendesk_http.call_count == 3


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(requests.exceptions.ReadTimeout("slow answer"), id="read-timeout"),
        pytest.param(requests.exceptions.ChunkedEncodingError("cut mid-body"), id="cut-mid-body"),
        pytest.param(requests.exceptions.ConnectTimeout("congested"), id="connect-timeout"),
    ],
)
def test_dropped_and_slow_answers_are_retried(
    failure: Exception, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", [{"exc": failure}, {"json": GROUPS_PAGE}])
    assert list_groups(make_client()) == [[{"id": 1}]]
    assert zendesk_http.call_count == 2


def test_answers_cut_off_every_time_end_with_a_one_line_error(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", exc=requests.exceptions.ChunkedEncodingError("cut"))
    with pytest.raises(ZendeskApiError, match="Could not reach https://acme.zendesk.com .ChunkedEncodingError."):
        list_groups(make_client())
    assert zendesk_http.call_count == 3


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens


def test_a_refused_connection_fails_at_once_with_one_line() -> None:
    budget = SpyBudget()
    client = ZendeskClient(f"http://127.0.0.1:{_closed_port()}", requests.auth.HTTPBasicAuth("a", "b"), budget)
    with pytest.raises(ZendeskApiError) as info:
        client.get("/users/me")
    assert "connection was refused" in str(info.value)
    assert "\n" not in str(info.value)
    assert budget.acquired == ["/api/v2/users/me"]  # one attempt, no retries


def test_an_unresolvable_host_fails_at_once_naming_the_subdomain() -> None:
    budget = SpyBudget()
    client = ZendeskClient("https://no-such-account.invalid", requests.auth.HTTPBasicAuth("a", "b"), budget)
    with pytest.raises(ZendeskApiError, match="does not resolve. Check the subdomain"):
        client.get("/users/me")
    assert budget.acquired == ["/api/v2/users/me"]


# --- threads ----------------------------------------------------------------------------------


def test_each_thread_sends_through_its_own_session_and_the_one_paced_adapter(
    make_client: Callable[..., ZendeskClient],
) -> None:
    client = make_client(headers={"X-Zendesk-Marketplace-Name": "app"})
    with ThreadPoolExecutor(3) as pool:
        sessions = list(pool.map(lambda _: client.sessions.current(), range(3), chunksize=1))
    sessions.append(client.sessions.current())
    assert len({id(session) for session in sessions}) >= 2
    adapters = {id(session.get_adapter("https://acme.zendesk.com")) for session in sessions}
    assert len(adapters) == 1
    assert all(session.headers["X-Zendesk-Marketplace-Name"] == "app" for session in sessions)


def test_429_storm_across_threads_always_completes(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    """Every thread's requests draw a 429 first. On one shared dlt session, tenacity's
    retry statistics are shared by the threads and this ended runs with KeyError
    'idle_for'; a tiny switch interval makes the threads interleave inside the retry."""
    per_thread = threading.local()

    def answer(request: Any, context: Any) -> Dict[str, Any]:
        per_thread.calls = getattr(per_thread, "calls", 0) + 1
        if per_thread.calls % 2:
            context.status_code, context.headers["Retry-After"] = 429, "0"
            return {"error": "APIRateLimitExceeded"}
        return GROUPS_PAGE

    zendesk_http.register_uri("GET", f"{API}/groups", json=answer)
    client = make_client()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            with ThreadPoolExecutor(6) as pool:
                done = list(pool.map(lambda _: [client.get("/groups") for _ in range(15)], range(6)))
            assert done == [[GROUPS_PAGE] * 15] * 6
    finally:
        sys.setswitchinterval(interval)
    assert client.counter.total == 3600


def test_a_401_ends_other_threads_pacing_waits_at_once(zendesk_http: requests_mock.Adapter) -> None:
    zendesk_http.register_uri("GET", f"{API}/users/me", status_code=401, text="Unauthorized")
    zendesk_http.register_uri("GET", f"{API}/incremental/users/cursor", json={"users": [], "end_of_stream": True})
    client = ZendeskClient(
        "https://acme.zendesk.com", requests.auth.HTTPBasicAuth("a", "b"), RateBudget(1000, 1, window=3600.0)
    )
    client.get("/incremental/users/cursor")  # the export window is now full for an hour
    outcome: List[BaseException] = []

    def export_again() -> None:
        try:
            client.get("/incremental/users/cursor")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    waiting = threading.Thread(target=export_again)
    waiting.start()
    with pytest.raises(ZendeskAuthError):
        client.get("/users/me")
    waiting.join(timeout=30)
    assert not waiting.is_alive(), "the paced thread kept waiting after the run was stopped"
    assert len(outcome) == 1 and isinstance(outcome[0], ZendeskAuthError)
    assert zendesk_http.call_count == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"groups": [{"id": 1}', id="truncated-json"),
        pytest.param("<html>Proxy login</html>", id="html"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_json_200_raises_api_error(
    body: str, make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", status_code=200, text=body)
    with pytest.raises(ZendeskApiError) as info:
        list_groups(make_client())
    assert "not valid JSON" in str(info.value)
    assert info.value.status_code == 200
    assert zendesk_http.call_count == 1


def test_malformed_json_200_on_get_raises_api_error(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/users/me", status_code=200, text="not json")
    with pytest.raises(ZendeskApiError, match="not valid JSON"):
        make_client().get("/users/me")


def test_get_returns_decoded_body(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/users/me", json={"user": {"id": 7}})
    assert make_client().get("/users/me", params={"a": 1}) == {"user": {"id": 7}}
    assert urlsplit(zendesk_http.last_request.url).query == "a=1"


# --- headers and auth ---------------------------------------------------------------------


def test_marketplace_accept_and_user_agent_on_every_request(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    headers = marketplace_headers("Acme Sync", "4242", 77)
    zendesk_http.register_uri(
        "GET",
        f"{API}/groups",
        [
            {"status_code": 503},  # a retried attempt carries them too
            {"json": {"groups": [{"id": 1}], "meta": {"has_more": True, "after_cursor": "c"}}},
            {"json": {"groups": [{"id": 2}], "meta": {"has_more": False}}},
        ],
    )
    zendesk_http.register_uri("GET", f"{API}/users/me", json={"user": {}})
    client = make_client(headers=headers)
    list_groups(client)
    client.get("/users/me")
    assert zendesk_http.call_count == 4
    for request in zendesk_http.request_history:
        assert request.headers["X-Zendesk-Marketplace-Name"] == "Acme Sync"
        assert request.headers["X-Zendesk-Marketplace-Organization-Id"] == "4242"
        assert request.headers["X-Zendesk-Marketplace-App-Id"] == "77"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == USER_AGENT


def test_no_marketplace_headers_when_unset(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", json=GROUPS_PAGE)
    list_groups(make_client(headers=marketplace_headers(None, None, None)))
    sent = zendesk_http.last_request.headers
    assert not [name for name in sent if name.lower().startswith("x-zendesk-marketplace")]
    assert sent["User-Agent"] == USER_AGENT


def test_basic_auth_header_is_email_slash_token(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", json=GROUPS_PAGE)
    auth = ZendeskApiTokenCredentials(email="admin@acme.com", api_token="apitoken").auth("https://acme.zendesk.com")
    list_groups(make_client(auth=auth))
    expected = base64.b64encode(b"admin@acme.com/token:apitoken").decode()
    assert zendesk_http.last_request.headers["Authorization"] == f"Basic {expected}"


def test_bearer_auth_header(make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", json=GROUPS_PAGE)
    list_groups(make_client(auth=ZendeskOAuthTokenCredentials(oauth_token="oauth-abc").auth("https://acme.zendesk.com")))
    assert zendesk_http.last_request.headers["Authorization"] == "Bearer oauth-abc"


def test_credentials_repr_hides_secrets() -> None:
    assert SECRET not in repr(ZendeskApiTokenCredentials(email="a@b.c", api_token=SECRET))
    assert SECRET not in repr(ZendeskOAuthTokenCredentials(oauth_token=SECRET))


# --- counting and pacing --------------------------------------------------------------------


def test_counter_counts_per_endpoint_template(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/tickets/42/audits", json={"audits": []})
    zendesk_http.register_uri("GET", f"{API}/tickets/43/audits.json", json={"audits": []})
    zendesk_http.register_uri("GET", f"{API}/tickets/44/audits", [{"status_code": 500}, {"json": {"audits": []}}])
    zendesk_http.register_uri("GET", f"{API}/groups", json=GROUPS_PAGE)
    client = make_client()
    client.get("/tickets/42/audits")
    client.get("/tickets/43/audits.json")
    client.get("/tickets/44/audits")
    list_groups(client)
    assert client.counter.by_endpoint == {"/api/v2/tickets/{id}/audits": 4, "/api/v2/groups": 1}
    assert client.counter.total == 5


@pytest.mark.parametrize(
    "path, template",
    [
        pytest.param("/api/v2/tickets/42/audits.json", "/api/v2/tickets/{id}/audits", id="audits-json"),
        pytest.param("/api/v2/tickets/42/audits?page=2", "/api/v2/tickets/{id}/audits", id="query"),
        pytest.param("/api/v2/tickets/42", "/api/v2/tickets/{id}", id="trailing-id"),
        pytest.param("/api/v2/tickets/42.json", "/api/v2/tickets/{id}", id="trailing-id-json"),
        pytest.param("/api/v2/incremental/tickets/cursor", "/api/v2/incremental/tickets/cursor", id="no-id"),
    ],
)
def test_endpoint_template(path: str, template: str) -> None:
    assert endpoint_template(path) == template


class SpyBudget(RateBudget):
    def __init__(self) -> None:
        super().__init__(100_000, 100_000)
        self.acquired: List[str] = []
        self.observed: List[CaseInsensitiveDict] = []

    def acquire(self, path: str, sleep: Any = None, before_wait: Any = None) -> Callable[[], None]:
        self.acquired.append(path)
        return super().acquire(path, sleep, before_wait)

    def observe(self, headers: CaseInsensitiveDict) -> None:
        self.observed.append(headers)
        super().observe(headers)


def test_every_attempt_is_paced_and_observed(zendesk_http: requests_mock.Adapter) -> None:
    budget = SpyBudget()
    client = ZendeskClient("https://acme.zendesk.com", requests.auth.HTTPBasicAuth("a", "b"), budget)
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/tickets/cursor",
        [
            {"status_code": 503},
            {"json": {"tickets": [], "after_cursor": "c", "end_of_stream": True}, "headers": {"X-Rate-Limit": "700"}},
        ],
    )
    list(client.pages(TICKETS, CursorExportPaginator(0, None), {}))
    assert budget.acquired == ["/api/v2/incremental/tickets/cursor"] * 2
    assert len(budget.observed) == 2
    assert budget.observed_account_limit == 700


class RotatingTokenAuth(requests.auth.AuthBase):
    """A bearer whose current token changes whenever `rotate` is called."""

    def __init__(self) -> None:
        self.generation = 0

    def rotate(self) -> None:
        self.generation += 1

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer token-{self.generation}"
        return request


class WaitingBudget(RateBudget):
    """Pacing that "waits" long enough for the token to be renewed meanwhile."""

    def __init__(self, during_wait: Callable[[], None]) -> None:
        super().__init__(100_000, 100_000)
        self._during_wait = during_wait

    def acquire(self, path: str, sleep: Any = None, before_wait: Any = None) -> Callable[[], None]:
        self._during_wait()
        return super().acquire(path, sleep, before_wait)


def test_the_token_is_attached_after_pacing_not_before(zendesk_http: requests_mock.Adapter) -> None:
    auth = RotatingTokenAuth()
    client = ZendeskClient("https://acme.zendesk.com", auth, WaitingBudget(auth.rotate))
    zendesk_http.register_uri("GET", f"{API}/groups", json=GROUPS_PAGE)
    list_groups(client)
    # requests attached token-0 when it prepared the request; the wait renewed it.
    assert zendesk_http.last_request.headers["Authorization"] == "Bearer token-1"


def test_pages_yields_the_rows_of_each_page(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    payload = {"tickets": [{"id": 1}], "after_cursor": "c", "end_of_stream": True, "count": 1}
    zendesk_http.register_uri("GET", f"{API}/incremental/tickets/cursor", json=payload)
    pages = list(make_client().pages(TICKETS, CursorExportPaginator(0, None), {}))
    assert pages == [[{"id": 1}]]


class CountingAuth(requests.auth.AuthBase):
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self.calls += 1
        request.headers["Authorization"] = f"Bearer token-{self.calls}"
        return request


def test_auth_is_attached_once_per_attempt(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("GET", f"{API}/groups", [{"status_code": 503}, {"json": GROUPS_PAGE}])
    auth = CountingAuth()
    assert list_groups(make_client(auth=auth)) == [[{"id": 1}]]
    assert auth.calls == 2
    assert zendesk_http.last_request.headers["Authorization"] == "Bearer token-2"


def test_each_page_body_is_decoded_once(
    make_client: Callable[..., ZendeskClient], zendesk_http: requests_mock.Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    zendesk_http.register_uri(
        "GET",
        f"{API}/incremental/tickets/cursor",
        [
            {"json": {"tickets": [{"id": 1}], "after_cursor": "c1", "end_of_stream": False}},
            {"json": {"tickets": [{"id": 2}], "after_cursor": "c2", "end_of_stream": True}},
        ],
    )
    decoded: List[str] = []
    plain_json = requests.Response.json

    def counting_json(response: requests.Response, **kwargs: Any) -> Any:
        decoded.append(response.url)
        return plain_json(response, **kwargs)

    monkeypatch.setattr(requests.Response, "json", counting_json)
    pages = list(make_client().pages(TICKETS, CursorExportPaginator(0, None), {}))
    assert pages == [[{"id": 1}], [{"id": 2}]]
    assert len(decoded) == 2


# --- bounded waits ---------------------------------------------------------------------


def test_a_retry_after_over_the_cap_ends_the_run_instead_of_sleeping(
    zendesk_http: requests_mock.Adapter, sleeps: List[float]
) -> None:
    zendesk_http.register_uri(
        "GET", f"{API}/groups", [{"status_code": 429, "headers": {"Retry-After": "3600"}}, {"json": GROUPS_PAGE}]
    )
    budget = RateBudget(max_requests_per_minute=100_000, export_requests_per_minute=100_000)
    client = ZendeskClient("https://acme.zendesk.com", ZendeskApiTokenCredentials(email="a@b.c", api_token="t").auth("https://acme.zendesk.com"), budget, max_retry_after=900)
    with pytest.raises(ZendeskApiError) as raised:
        list_groups(client)
    assert zendesk_http.call_count == 1 and sleeps == []
    message = str(raised.value)
    assert "3600 s (Retry-After)" in message and "max_retry_after_seconds (900 s)" in message
    assert "\n" not in message


def test_a_retry_wait_is_announced_with_its_cause(
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., ZendeskClient],
    zendesk_http: requests_mock.Adapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "10")
    announced: List[str] = []
    monkeypatch.setattr(
        progress, "wait", lambda seconds, cause, **kwargs: announced.append(f"{seconds:g} s: {cause}")
    )
    zendesk_http.register_uri(
        "GET", f"{API}/groups", [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": GROUPS_PAGE}]
    )
    assert list_groups(make_client()) == [[{"id": 1}]]
    assert announced == ["7 s: because Zendesk answered 429 for /api/v2/groups with Retry-After: 7 (attempt 1)"]
