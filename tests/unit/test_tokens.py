"""tokens.py: refresh-token rotation, 401 handling, client credentials, the token endpoint.

The `server` fixture (conftest) is a rotating token server on requests-mock that answers
under `PacedAdapter`, and also answers the token requests, which go through their own
session. The connection retries of that session happen inside urllib3, under the mocked
adapter, so they are tested over real sockets against a local token endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
import requests_mock
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from tests.unit.token_server import (
    API,
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URL,
    Clock,
    RotatingTokenServer,
    TokenContext,
    TokenRequest,
    assert_no_secrets,
)
from zendesk.run import progress
from zendesk.auth.authorize import exchange_code
from zendesk.api.client import ZendeskClient
from zendesk.errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from zendesk.api.rate_limit import RateBudget
from zendesk.auth.token_store import TokenSet, TokenStore
from zendesk.auth.tokens import (
    CONNECT_ATTEMPTS,
    DEFAULT_ACCESS_TOKEN_EXPIRES_IN,
    ClientCredentialsOAuth,
    RefreshingOAuth,
    token_url,
)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    slept: List[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    return slept


def make_auth(store: TokenStore, clock: Clock, **kwargs: Any) -> RefreshingOAuth:
    return RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, TOKEN_URL, clock=clock, **kwargs)


# --- refresh before expiry ----------------------------------------------------------------


def test_token_about_to_expire_is_refreshed_before_the_request(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    old = server.seed(expires_in=60)  # inside the 120 s margin
    store.save(old)
    auth = make_auth(store, clock)
    assert make_client(auth=auth).get("/groups")["groups"] == [{"id": 1}]
    assert server.refresh_tokens_sent() == [old.refresh_token]
    assert old.access_token not in server.api_calls  # the old token was never sent
    assert len(server.api_calls) == 1
    stored = store.load()
    assert stored is not None and stored.refresh_token not in (None, old.refresh_token)
    assert server.api_calls == [stored.access_token]
    assert stored.token_url == TOKEN_URL and stored.client_id == CLIENT_ID


def test_token_that_expires_mid_run_is_refreshed(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    store.save(server.seed())
    client = make_client(auth=make_auth(store, clock))
    client.get("/groups")
    assert server.token_bodies == []
    for _ in range(5):  # a long run: 5 access-token lifetimes
        clock.now += 1800
        client.get("/groups")
    assert len(server.refresh_tokens_sent()) == 5
    assert server.replayed == []
    assert len(set(server.refresh_tokens_sent())) == 5
    assert len(server.api_calls) == 6  # no 401 on the way: refreshed before expiry


def test_short_lived_tokens_are_not_refreshed_on_every_request(
    clock: Clock, zendesk_http: requests_mock.Adapter, store: TokenStore, make_client: Callable[..., ZendeskClient]
) -> None:
    fake = RotatingTokenServer(clock, ttl=60)  # shorter than the 120 s margin
    fake.install(zendesk_http)
    store.save(fake.seed())
    client = make_client(auth=make_auth(store, clock))
    for _ in range(3):
        client.get("/groups")
        clock.now += 10
    assert fake.token_bodies == []
    clock.now += 20  # 50 s into a 60 s token: inside half its lifetime
    client.get("/groups")
    assert len(fake.refresh_tokens_sent()) == 1


def test_new_pair_is_stored_before_the_new_access_token_is_used(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    store.save(server.seed(expires_in=0))
    seen_in_store: List[Optional[str]] = []

    def check_store(token: Optional[str]) -> None:
        stored = store.load()
        seen_in_store.append(stored.access_token if stored else None)

    server.before_api_answer = check_store
    make_client(auth=make_auth(store, clock)).get("/groups")
    assert seen_in_store == server.api_calls  # when Zendesk saw the token, it was already on disk


def test_expires_in_is_requested_when_configured(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    store.save(server.seed(expires_in=0))
    make_client(auth=make_auth(store, clock, expires_in=172800)).get("/groups")
    assert server.token_bodies[0]["expires_in"] == 172800
    assert server.token_bodies[0]["grant_type"] == "refresh_token"
    assert server.token_bodies[0]["client_id"] == CLIENT_ID


def test_expires_in_is_always_sent_so_every_expiry_is_known(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    store.save(server.seed(expires_in=0))
    make_client(auth=make_auth(store, clock)).get("/groups")
    server.codes.add("c-7")
    exchange_code(BASE_URL, CLIENT_ID, CLIENT_SECRET, "c-7", clock=clock)
    assert [body["expires_in"] for body in server.token_bodies] == [DEFAULT_ACCESS_TOKEN_EXPIRES_IN] * 2
    assert DEFAULT_ACCESS_TOKEN_EXPIRES_IN == 1800  # Zendesk's default access token lifetime


def test_an_answer_without_expires_in_expires_after_the_lifetime_asked_for(
    clock: Clock, zendesk_http: requests_mock.Adapter, store: TokenStore, make_client: Callable[..., ZendeskClient]
) -> None:
    fake = RotatingTokenServer(clock, ttl=None)  # answers "expires_in": null
    fake.install(zendesk_http)
    store.save(fake.seed(expires_in=0))
    client = make_client(auth=make_auth(store, clock, expires_in=600))
    client.get("/groups")
    assert store.load().expires_at == clock() + 600  # type: ignore[union-attr]
    clock.now += 470  # 130 s left: outside the 120 s refresh margin
    client.get("/groups")
    assert len(fake.refresh_tokens_sent()) == 1
    clock.now += 20  # 110 s left: inside it
    client.get("/groups")
    assert len(fake.refresh_tokens_sent()) == 2


def test_a_resend_after_retry_after_leaves_with_a_token_valid_at_send_time(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, zendesk_http: requests_mock.Adapter,
    make_client: Callable[..., ZendeskClient], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Zendesk asks to come back after longer than the token lives: dlt's retry sleeps,
    # then re-sends the same request through the paced adapter, which attaches the token.
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "3600")
    first = server.seed()
    store.save(first)
    throttled: List[str] = []

    def too_many(request: Any, context: Any) -> Dict[str, Any]:
        throttled.append(request.headers["Authorization"])
        context.status_code, context.headers["Retry-After"] = 429, "2400"
        return {}

    zendesk_http.register_uri("GET", f"{API}/groups", [{"json": too_many}, {"json": server.api}])
    waited: List[float] = []

    def sleep(seconds: float, *args: Any, **kwargs: Any) -> None:
        waited.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(progress, "wait", sleep)  # every wait of the client goes through it
    budget = RateBudget(max_requests_per_minute=100_000, export_requests_per_minute=100_000)
    # A Retry-After this long is waited out only with the cap raised above it.
    client = ZendeskClient("https://acme.zendesk.com", make_auth(store, clock), budget, max_retry_after=3600)
    assert client.get("/groups")["groups"] == [{"id": 1}]
    assert waited == [2400]
    renewed = store.load()
    assert renewed is not None and renewed.access_token != first.access_token
    # The re-send carried the renewed token: refreshed before sending, not after a 401.
    assert throttled == [f"Bearer {first.access_token}"]
    assert server.api_calls == [renewed.access_token]
    assert server.refresh_tokens_sent() == [first.refresh_token]


# --- 401 mid-run ----------------------------------------------------------------------------


def test_401_mid_run_refreshes_once_and_retries_once(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    first = server.seed()
    store.save(first)
    client = make_client(auth=make_auth(store, clock))
    client.get("/groups")
    server.revoke(first.access_token)  # Zendesk revoked it early; our clock still says valid
    assert client.get("/groups")["groups"] == [{"id": 1}]
    assert server.refresh_tokens_sent() == [first.refresh_token]
    stored = store.load()
    assert server.api_calls == [first.access_token, first.access_token, stored.access_token]


def test_401_after_the_refresh_is_returned_not_looped(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    zendesk_http: requests_mock.Adapter,
) -> None:
    store.save(server.seed())
    zendesk_http.register_uri("GET", f"{API}/groups", status_code=401, json={"error": "Couldn't authenticate you"})
    with pytest.raises(ZendeskAuthError, match="401"):
        make_client(auth=make_auth(store, clock)).get("/groups")
    api = [r for r in zendesk_http.request_history if r.path.startswith("/api/")]
    assert len(api) == 2  # the request and its one retry
    assert len(server.refresh_tokens_sent()) == 1


def test_401_is_handled_for_plain_requests_too(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    first = server.seed()
    store.save(first)
    server.revoke(first.access_token)
    response = requests.get(f"{API}/users/me.json", auth=make_auth(store, clock), timeout=5)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]


def test_concurrent_401s_cause_one_refresh(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    first = server.seed()
    store.save(first)
    auth = make_auth(store, clock)
    server.revoke(first.access_token)
    barrier = threading.Barrier(4, timeout=10)

    def hold_old_token_requests(token: Optional[str]) -> None:
        if token == first.access_token:
            barrier.wait()  # all four 401s are answered together

    server.before_api_answer = hold_old_token_requests
    statuses: List[int] = []
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            statuses.append(requests.get(f"{API}/groups", auth=auth, timeout=10).status_code)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert statuses == [200, 200, 200, 200]
    assert server.refresh_tokens_sent() == [first.refresh_token]
    assert auth.refresh_count == 1


def test_stale_token_after_another_threads_refresh_is_resent_without_refreshing(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    first = server.seed()
    store.save(first)
    auth = make_auth(store, clock)
    prepared = auth(requests.Request("GET", f"{API}/groups").prepare())  # carries the first token
    server.revoke(first.access_token)
    assert requests.get(f"{API}/groups", auth=auth, timeout=5).status_code == 200  # refreshes
    with requests.Session() as session:
        response = session.send(prepared, timeout=5)  # e.g. a retry of a request prepared earlier
    assert response.status_code == 200
    assert len(server.refresh_tokens_sent()) == 1


# --- the refresh token is never sent twice -------------------------------------------------


def test_old_refresh_token_is_never_sent_twice(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    seed = server.seed()
    store.save(seed)
    client = make_client(auth=make_auth(store, clock))
    for step in range(12):
        if step % 3 == 0:
            clock.now += 1790  # expiring: proactive refresh
        elif step % 3 == 1:
            server.revoke(store.load().access_token)  # 401: reactive refresh
        client.get("/groups")
    # a new run (new auth object) on the same store continues the chain
    clock.now += 3600
    make_client(auth=make_auth(store, clock, refresh_token=seed.refresh_token)).get("/groups")
    sent = server.refresh_tokens_sent()
    assert len(sent) == 9
    assert len(sent) == len(set(sent))
    assert server.replayed == []
    assert seed.refresh_token == sent[0]


def test_configured_refresh_token_seeds_an_empty_store(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    seed = server.seed()
    make_client(auth=make_auth(store, clock, refresh_token=seed.refresh_token)).get("/groups")
    assert server.refresh_tokens_sent() == [seed.refresh_token]
    stored = store.load()
    assert stored is not None and stored.refresh_token in server.live_refresh


def test_store_wins_over_a_configured_refresh_token(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = server.seed()
    # an earlier run rotated the configured token; the store holds the result
    rotated = server.token(TokenRequest({"grant_type": "refresh_token", "refresh_token": configured.refresh_token,
                                 "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), TokenContext())
    server.token_bodies.clear()
    store.save(TokenSet(rotated["access_token"], rotated["refresh_token"], clock() - 1, clock() - 1800, TOKEN_URL, CLIENT_ID))
    caplog.set_level(logging.DEBUG)
    make_client(auth=make_auth(store, clock, refresh_token=configured.refresh_token)).get("/groups")
    assert server.refresh_tokens_sent() == [rotated["refresh_token"]]
    assert server.replayed == []
    assert "newer one" in caplog.text
    assert_no_secrets(caplog.text, server.secrets)


def test_pair_rotated_by_another_process_is_adopted_not_refreshed_again(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    store.save(server.seed())
    run_a = make_auth(store, clock)
    run_b = make_auth(TokenStore(store.path), clock)  # a second process on the same file
    requests.get(f"{API}/groups", auth=run_a, timeout=5)
    requests.get(f"{API}/groups", auth=run_b, timeout=5)  # both loaded the first pair
    clock.now += 1750
    assert requests.get(f"{API}/groups", auth=run_a, timeout=5).status_code == 200  # A rotates
    assert requests.get(f"{API}/groups", auth=run_b, timeout=5).status_code == 200  # B adopts A's pair
    assert len(server.refresh_tokens_sent()) == 1
    assert server.replayed == []
    assert run_b.refresh_count == 0



# --- failures --------------------------------------------------------------------------------


def test_invalid_grant_stops_with_an_actionable_message_and_no_retry(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = server.seed(expires_in=0)
    server.live_refresh.pop(dead.refresh_token)  # revoked or used elsewhere
    store.save(dead)
    caplog.set_level(logging.DEBUG)
    auth = make_auth(store, clock)
    client = make_client(auth=auth)
    with pytest.raises(ZendeskAuthError) as info:
        client.get("/groups")
    message = str(info.value)
    assert "python zendesk_pipeline.py authorize" in message
    assert "already used" in message and str(store.path) in message
    assert_no_secrets(message + caplog.text, server.secrets | {dead.refresh_token, dead.access_token})
    with pytest.raises(ZendeskAuthError, match="not sent again"):
        client.get("/groups")  # the same run never re-sends the rejected token
    with pytest.raises(ZendeskAuthError, match="not sent again"):
        make_client(auth=make_auth(store, clock)).get("/groups")  # nor does the next batch's client
    assert server.refresh_tokens_sent() == [dead.refresh_token]
    assert store.load() == dead  # the store is untouched
    assert server.api_calls == []


def test_invalid_client_names_client_id_and_secret(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    store.save(server.seed(expires_in=0))
    auth = RefreshingOAuth(store, CLIENT_ID, "wrong-secret-77", TOKEN_URL, clock=clock)
    with pytest.raises(ZendeskAuthError, match="client_id and\\s+client_secret") as info:
        requests.get(f"{API}/groups", auth=auth, timeout=5)
    assert "wrong-secret-77" not in str(info.value)


def test_no_refresh_token_anywhere_says_to_authorize(store: TokenStore, clock: Clock, zendesk_http: Any) -> None:
    with pytest.raises(ZendeskAuthError, match="authorize"):
        requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5)


def test_store_of_another_account_is_refused_and_left_untouched(
    server: RotatingTokenServer, store: TokenStore, clock: Clock
) -> None:
    other = TokenSet("a-other", "r-other", None, None, "https://other.zendesk.com/oauth/tokens", CLIENT_ID)
    store.save(other)
    with pytest.raises(ZendeskConfigError, match="another Zendesk account"):
        requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5)
    assert store.load() == other
    assert server.token_bodies == []


def test_unwritable_store_fails_before_the_refresh_token_is_spent(
    server: RotatingTokenServer, tmp_path: Any, clock: Clock
) -> None:
    (tmp_path / "not_a_dir").write_text("x")
    store = TokenStore(tmp_path / "not_a_dir" / "tokens.json")
    seed = server.seed()
    with pytest.raises(ZendeskConfigError, match="Cannot write the OAuth token store"):
        requests.get(f"{API}/groups", auth=make_auth(store, clock, refresh_token=seed.refresh_token), timeout=5)
    assert server.token_bodies == []  # the refresh token is still good


# --- connection retries, inside urllib3, over real sockets -------------------------------


class LocalTokenEndpoint:
    """`/oauth/tokens` of a `RotatingTokenServer` on a real local socket.

    `connect_timeouts` makes that many connection attempts time out before they open;
    `drop` closes the connection after reading a request, without answering."""

    def __init__(self, server: RotatingTokenServer) -> None:
        self.server = server
        self.connects = 0
        self.connect_timeouts = 0
        self.drop = False
        self.received: List[Dict[str, Any]] = []
        self.url = ""

    def handler(self) -> type:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.received.append(body)
                if endpoint.drop:
                    self.close_connection = True
                    return
                context = TokenContext()
                data = json.dumps(endpoint.server.token(TokenRequest(body), context)).encode()
                self.send_response(context.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def create_connection(self, real: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
        def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            self.connects += 1
            if self.connects <= self.connect_timeouts:
                raise socket.timeout("timed out")
            return real(address, *args, **kwargs)

        return connect


@pytest.fixture
def local_endpoint(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalTokenEndpoint]:
    endpoint = LocalTokenEndpoint(RotatingTokenServer(clock))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), endpoint.handler())
    endpoint.url = f"http://127.0.0.1:{httpd.server_address[1]}/oauth/tokens"
    monkeypatch.setattr(
        urllib3_connection, "create_connection", endpoint.create_connection(urllib3_connection.create_connection)
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield endpoint
    httpd.shutdown()
    httpd.server_close()


def authorize_request(auth: RefreshingOAuth) -> requests.PreparedRequest:
    """What the auth does to a request before it is sent (which refreshes an expired pair)."""
    return auth(requests.Request("GET", f"{API}/groups").prepare())


def test_connection_that_timed_out_is_retried_with_the_same_token(
    local_endpoint: LocalTokenEndpoint, store: TokenStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    seed = local_endpoint.server.seed()
    local_endpoint.connect_timeouts = 1
    auth = RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, local_endpoint.url, refresh_token=seed.refresh_token,
                           clock=clock)
    sent = authorize_request(auth)
    assert local_endpoint.connects == 2  # the first attempt never opened: the token was not spent
    assert [body["refresh_token"] for body in local_endpoint.received] == [seed.refresh_token]
    stored = store.load()
    assert stored is not None and sent.headers["Authorization"] == f"Bearer {stored.access_token}"
    assert "trying again" in caplog.text


def test_connection_that_keeps_timing_out_gives_up_with_the_store_untouched(
    local_endpoint: LocalTokenEndpoint, store: TokenStore, clock: Clock
) -> None:
    seed = local_endpoint.server.seed()
    local_endpoint.connect_timeouts = CONNECT_ATTEMPTS
    auth = RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, local_endpoint.url, refresh_token=seed.refresh_token,
                           clock=clock)
    with pytest.raises(ZendeskApiError, match="Could not connect to the Zendesk token endpoint"):
        authorize_request(auth)
    assert local_endpoint.connects == CONNECT_ATTEMPTS
    assert local_endpoint.received == []
    assert store.load() is None


def test_refused_connection_is_not_retried(store: TokenStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempts: List[Any] = []
    real = urllib3_connection.create_connection

    def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", connect)
    auth = RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, f"http://127.0.0.1:{port}/oauth/tokens",
                           refresh_token="refresh-never-sent", clock=clock)
    with pytest.raises(ZendeskApiError, match="Could not connect to the Zendesk token endpoint"):
        authorize_request(auth)
    assert len(attempts) == 1


def test_unknown_host_is_not_retried(store: TokenStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: List[Any] = []

    def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(urllib3_connection, "create_connection", connect)
    auth = RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, "https://no-such-account.zendesk.com/oauth/tokens",
                           refresh_token="refresh-never-sent", clock=clock)
    with pytest.raises(ZendeskApiError, match="Could not connect to the Zendesk token endpoint"):
        authorize_request(auth)
    assert len(attempts) == 1


def test_connection_dropped_after_sending_is_not_retried(
    local_endpoint: LocalTokenEndpoint, store: TokenStore, clock: Clock
) -> None:
    seed = local_endpoint.server.seed()
    local_endpoint.drop = True
    auth = RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, local_endpoint.url, refresh_token=seed.refresh_token,
                           clock=clock)
    with pytest.raises(ZendeskApiError, match="not retried"):
        authorize_request(auth)
    assert len(local_endpoint.received) == 1  # Zendesk may have spent it: never sent twice
    assert local_endpoint.connects == 1
    assert store.load() is None


# --- how a failed token request is reported (on the mocked transport) ---------------------


def test_an_unknown_host_or_refused_token_endpoint_fails_at_once(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, zendesk_http: requests_mock.Adapter,
    _no_sleep: List[float],
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    refused = requests.exceptions.ConnectionError(
        MaxRetryError(None, TOKEN_URL, NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    )
    zendesk_http.register_uri("POST", TOKEN_URL, [{"exc": refused}, {"json": server.token}])
    with pytest.raises(ZendeskApiError, match="Could not connect to the Zendesk token endpoint"):
        requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5)
    assert len([r for r in zendesk_http.request_history if r.path == "/oauth/tokens"]) == 1
    assert _no_sleep == []
    assert store.load() == seed  # untouched: the next run may use it


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(requests.exceptions.ReadTimeout, id="read-timeout"),
        pytest.param(requests.exceptions.ConnectionError, id="dropped-after-sending"),
        pytest.param(requests.exceptions.ChunkedEncodingError, id="cut-off-answer"),
    ],
)
def test_failure_after_sending_is_not_retried(
    failure: type, server: RotatingTokenServer, store: TokenStore, clock: Clock,
    zendesk_http: requests_mock.Adapter,
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    zendesk_http.register_uri("POST", TOKEN_URL, exc=failure)
    with pytest.raises(ZendeskApiError, match="not retried") as info:
        requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5)
    assert len([r for r in zendesk_http.request_history if r.path == "/oauth/tokens"]) == 1
    assert store.load() == seed
    assert_no_secrets(str(info.value), server.secrets)


def test_server_error_from_the_token_endpoint_is_not_retried(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, zendesk_http: requests_mock.Adapter
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    zendesk_http.register_uri("POST", TOKEN_URL, status_code=503, json={"error": "unavailable"})
    with pytest.raises(ZendeskApiError, match="503"):
        requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5)
    assert len([r for r in zendesk_http.request_history if r.path == "/oauth/tokens"]) == 1
    assert store.load() == seed


# --- crashes ---------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


def test_crash_before_zendesk_answers_leaves_a_store_the_next_run_can_use(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)

    def die(body: Dict[str, Any]) -> None:
        raise Crash()

    server.on_token_request = die  # killed while the refresh request is in flight
    with pytest.raises(Crash):
        make_client(auth=make_auth(store, clock)).get("/groups")
    assert store.load() == seed
    server.on_token_request = None
    server.token_bodies.clear()
    next_run = make_client(auth=make_auth(store, clock))
    assert next_run.get("/groups")["groups"] == [{"id": 1}]
    assert server.refresh_tokens_sent() == [seed.refresh_token]


def test_crash_while_saving_the_new_pair_leaves_a_complete_store(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise Crash()

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Crash):
        make_client(auth=make_auth(store, clock)).get("/groups")
    monkeypatch.setattr(os, "replace", real_replace)
    assert server.api_calls == []  # the new access token was never used
    assert store.load() == seed  # the complete old pair, nothing half-written
    assert [p for p in os.listdir(store.path.parent) if p.endswith(".tmp")] == []
    # This is the one window tokens can be lost in (Zendesk rotated, the disk never got the
    # new pair). Within this process the spent token is never sent again:
    with pytest.raises(ZendeskAuthError, match="not sent again"):
        make_client(auth=make_auth(store, clock)).get("/groups")
    assert len(server.refresh_tokens_sent()) == 1
    # a new process reads the store fine and is told to authorize
    monkeypatch.setattr("zendesk.auth.tokens._SPENT_REFRESH_TOKENS", set())
    with pytest.raises(ZendeskAuthError, match="already used.*authorize"):
        make_client(auth=make_auth(store, clock)).get("/groups")


def test_save_failure_keeps_the_new_pair_and_retries_the_save(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    real_save = TokenStore.save
    failures = {"left": 2}

    def flaky_save(self: TokenStore, tokens: TokenSet) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        real_save(self, tokens)

    monkeypatch.setattr(TokenStore, "save", flaky_save)
    caplog.set_level(logging.DEBUG)
    client = make_client(auth=make_auth(store, clock))
    client.get("/groups")  # refreshed; save failed; the run goes on with the pair in memory
    assert store.load() == seed
    assert caplog.text.count("Could not write the rotated OAuth tokens") == 1
    client.get("/groups")  # save retried, fails again
    client.get("/groups")  # save retried, succeeds
    stored = store.load()
    assert stored is not None and stored.refresh_token in server.live_refresh
    assert server.refresh_tokens_sent() == [seed.refresh_token]
    assert "now stored" in caplog.text
    assert_no_secrets(caplog.text, server.secrets)


# --- client credentials -------------------------------------------------------------------


def test_client_credentials_grant_caches_until_near_expiry(
    server: RotatingTokenServer, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    auth = ClientCredentialsOAuth(CLIENT_ID, CLIENT_SECRET, TOKEN_URL, clock=clock)
    client = make_client(auth=auth)
    client.get("/groups")
    client.get("/groups")
    assert [b["grant_type"] for b in server.token_bodies] == ["client_credentials"]
    assert server.token_bodies[0]["scope"] == "read"
    assert "refresh_token" not in server.token_bodies[0]
    clock.now += 1700  # within the margin of a 30-minute token
    client.get("/groups")
    assert auth.fetch_count == 2
    assert len(set(server.api_calls)) == 2
    assert CLIENT_SECRET not in repr(auth)


def test_client_credentials_401_fetches_a_new_token_once(
    server: RotatingTokenServer, clock: Clock, make_client: Callable[..., ZendeskClient]
) -> None:
    auth = ClientCredentialsOAuth(CLIENT_ID, CLIENT_SECRET, TOKEN_URL, clock=clock)
    client = make_client(auth=auth)
    client.get("/groups")
    server.revoke(server.api_calls[-1])
    assert client.get("/groups")["groups"] == [{"id": 1}]
    assert auth.fetch_count == 2


def test_client_credentials_not_allowed_says_what_to_do(
    clock: Clock, zendesk_http: requests_mock.Adapter
) -> None:
    zendesk_http.register_uri("POST", TOKEN_URL, status_code=400,
                              json={"error": "unauthorized_client", "error_description": "grant not allowed"})
    auth = ClientCredentialsOAuth(CLIENT_ID, CLIENT_SECRET, TOKEN_URL, clock=clock)
    with pytest.raises(ZendeskAuthError, match="client credentials grant.*authorize") as info:
        requests.get(f"{API}/groups", auth=auth, timeout=5)
    assert CLIENT_SECRET not in str(info.value)




def test_token_url() -> None:
    assert token_url("https://acme.zendesk.com/") == TOKEN_URL



# --- secrets stay secret --------------------------------------------------------------------


def test_no_secret_in_logs_output_reprs_or_errors(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, make_client: Callable[..., ZendeskClient],
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # requests, urllib3 and dlt debug logs included
    seed = server.seed(expires_in=0)
    store.save(seed)
    auth = make_auth(store, clock)
    client = make_client(auth=auth)
    client.get("/groups")  # proactive refresh
    server.revoke(store.load().access_token)  # type: ignore[union-attr]
    client.get("/groups")  # 401 -> refresh -> retry
    texts = [repr(auth), str(auth), repr(store.load()), str(store.load()), repr(store)]
    server.live_refresh.clear()  # every refresh token now dead
    clock.now += 7200
    with pytest.raises(ZendeskAuthError) as info:
        client.get("/groups")
    texts.append(str(info.value))
    captured = capsys.readouterr()
    assert server.secrets >= {seed.refresh_token, seed.access_token}
    assert_no_secrets(caplog.text + captured.out + captured.err + "\n".join(texts), server.secrets)
