"""oauth.py: refresh-token rotation, 401 handling, client credentials, `authorize`.

A small rotating token server (requests-mock callbacks) stands in for Zendesk: a
refresh grant returns a new pair and kills the old one at once, and a refresh token
presented twice is recorded in `replayed`. The API answers 401 to tokens that are
unknown, revoked or expired on the test's clock. The `zendesk_http` fixture (conftest)
answers under `PacedAdapter`, and also answers the token requests that go through plain
`requests`.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import threading
from typing import Any, Callable, Dict, List, Optional, Set

import pytest
import requests
import requests_mock
from urllib3.exceptions import MaxRetryError, NewConnectionError

from zendesk.client import ZendeskClient
from zendesk.errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from zendesk.oauth import (
    DEFAULT_ACCESS_TOKEN_EXPIRES_IN,
    ClientCredentialsOAuth,
    RefreshingOAuth,
    authorize_from_config,
    authorize_interactive,
    build_authorization_url,
    exchange_code,
    parse_code_answer,
    token_url,
)
from zendesk.token_store import TokenSet, TokenStore

BASE_URL = "https://acme.zendesk.com"
API = BASE_URL + "/api/v2"
TOKEN_URL = BASE_URL + "/oauth/tokens"
CLIENT_ID = "dlt_connector"
CLIENT_SECRET = "client-secret-5f1e9a"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RotatingTokenServer:
    """Zendesk's /oauth/tokens and an authenticated API, with rotation enforced."""

    def __init__(self, clock: Clock, ttl: Optional[float] = 1800.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.lock = threading.Lock()
        self.live_refresh: Dict[str, str] = {}  # refresh token -> its access token
        self.access: Dict[str, Optional[float]] = {}  # live access token -> expires_at
        self.spent: Set[str] = set()
        self.replayed: List[str] = []
        self.codes: Set[str] = set()
        self.issued = 0
        self.suffix = secrets.token_hex(3)  # unique per test: spent tokens are remembered process-wide
        self.issued_values: Set[str] = set()
        self.token_bodies: List[Dict[str, Any]] = []
        self.api_calls: List[Optional[str]] = []
        self.before_api_answer: Optional[Callable[[Optional[str]], None]] = None
        self.on_token_request: Optional[Callable[[Dict[str, Any]], None]] = None

    # everything secret the server ever issued or knows, for "never printed" assertions
    @property
    def secrets(self) -> Set[str]:
        return {CLIENT_SECRET, *self.issued_values, *self.codes}

    def _issue(self, with_refresh: bool = True) -> Dict[str, Any]:
        self.issued += 1
        access = f"access-{self.issued:03d}-{self.suffix}"
        self.access[access] = None if self.ttl is None else self.clock() + self.ttl
        self.issued_values.add(access)
        body: Dict[str, Any] = {"access_token": access, "token_type": "bearer", "scope": "read",
                                "expires_in": None if self.ttl is None else int(self.ttl)}
        if with_refresh:
            refresh = f"refresh-{self.issued:03d}-{self.suffix}"
            self.live_refresh[refresh] = access
            self.issued_values.add(refresh)
            body["refresh_token"] = refresh
        return body

    def seed(self, expires_in: Optional[float] = None) -> TokenSet:
        """A pair as `authorize` would have stored it; `expires_in` overrides the ttl."""
        body = self._issue()
        now = self.clock()
        if expires_in is not None:
            self.access[body["access_token"]] = now + expires_in
        expires_at = self.access[body["access_token"]]
        # issued one lifetime before it expires (a pair stored by an earlier run)
        issued_at = now if expires_at is None or self.ttl is None else expires_at - self.ttl
        return TokenSet(body["access_token"], body["refresh_token"], expires_at, issued_at, TOKEN_URL, CLIENT_ID)

    def revoke(self, access: str) -> None:
        self.access.pop(access, None)

    def token(self, request: Any, context: Any) -> Dict[str, Any]:
        body = request.json()
        self.token_bodies.append(body)
        if self.on_token_request is not None:
            self.on_token_request(body)
        with self.lock:
            if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
                context.status_code = 401
                return {"error": "invalid_client", "error_description": "Client authentication failed."}
            grant = body.get("grant_type")
            if grant == "refresh_token":
                presented = body.get("refresh_token")
                if presented in self.spent:
                    self.replayed.append(presented)
                if presented not in self.live_refresh:
                    context.status_code = 400
                    return {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid."}
                self.spent.add(presented)
                self.revoke(self.live_refresh.pop(presented))
                return self._issue()
            if grant == "authorization_code":
                if body.get("code") not in self.codes:
                    context.status_code = 400
                    return {"error": "invalid_grant", "error_description": "bad code"}
                self.codes.discard(body["code"])
                return self._issue()
            if grant == "client_credentials":
                return self._issue(with_refresh=False)
            context.status_code = 400
            return {"error": "unsupported_grant_type"}

    def api(self, request: Any, context: Any) -> Dict[str, Any]:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        self.api_calls.append(token)
        if self.before_api_answer is not None:
            self.before_api_answer(token)
        expires_at = self.access.get(token or "", -1.0)
        if token is None or expires_at == -1.0 or (expires_at is not None and self.clock() >= expires_at):
            context.status_code = 401
            return {"error": "Couldn't authenticate you"}
        if request.path.startswith("/api/v2/users/me"):
            return {"user": {"id": 1, "name": "Ada Admin", "email": "ada@acme.com", "role": "admin"}}
        return {"groups": [{"id": 1}], "meta": {"has_more": False}}

    def install(self, adapter: requests_mock.Adapter, base_url: str = BASE_URL) -> None:
        adapter.register_uri("POST", base_url + "/oauth/tokens", json=self.token)
        adapter.register_uri("GET", requests_mock.ANY, json=self.api)

    def refresh_tokens_sent(self) -> List[str]:
        return [b["refresh_token"] for b in self.token_bodies if b.get("grant_type") == "refresh_token"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock, zendesk_http: requests_mock.Adapter) -> RotatingTokenServer:
    fake = RotatingTokenServer(clock)
    fake.install(zendesk_http)
    return fake


@pytest.fixture
def store(tmp_path: Any) -> TokenStore:
    return TokenStore(tmp_path / "state" / "zendesk_tokens.json")


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    slept: List[float] = []
    monkeypatch.setattr("zendesk.oauth.time.sleep", slept.append)
    return slept


def make_auth(store: TokenStore, clock: Clock, **kwargs: Any) -> RefreshingOAuth:
    return RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, TOKEN_URL, clock=clock, **kwargs)


def assert_no_secrets(text: str, secrets: Set[str]) -> None:
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"secret(s) leaked: {len(leaked)}"


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
    auth = make_auth(store, clock, expires_in=600)
    make_client(auth=auth).get("/groups")
    tokens = auth.current_tokens()
    assert tokens.expires_at == clock() + 600
    assert store.load().expires_at == clock() + 600  # type: ignore[union-attr]


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

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    monkeypatch.setattr("time.sleep", sleep)
    client = make_client(auth=make_auth(store, clock))
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
    rotated = server.token(_Req({"grant_type": "refresh_token", "refresh_token": configured.refresh_token,
                                 "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}), _Ctx())
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


class _Req:
    def __init__(self, body: Dict[str, Any]) -> None:
        self._body = body

    def json(self) -> Dict[str, Any]:
        return self._body


class _Ctx:
    status_code = 200


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


def test_connection_never_opened_is_retried_with_the_same_token(
    server: RotatingTokenServer, store: TokenStore, clock: Clock, zendesk_http: requests_mock.Adapter,
    _no_sleep: List[float],
) -> None:
    seed = server.seed(expires_in=0)
    store.save(seed)
    zendesk_http.register_uri(
        "POST", TOKEN_URL,
        [{"exc": requests.exceptions.ConnectTimeout}, {"json": server.token}],
    )
    assert requests.get(f"{API}/groups", auth=make_auth(store, clock), timeout=5).status_code == 200
    posts = [r for r in zendesk_http.request_history if r.path == "/oauth/tokens"]
    assert len(posts) == 2  # the first never reached Zendesk: the token was not spent
    assert server.refresh_tokens_sent() == [seed.refresh_token]  # Zendesk saw it once
    assert _no_sleep == [1.0]


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
    monkeypatch.setattr("zendesk.oauth._SPENT_REFRESH_TOKENS", set())
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


# --- authorization code flow ----------------------------------------------------------------


def test_build_authorization_url() -> None:
    url = build_authorization_url(BASE_URL, "my client", "https://app.example.com/cb?x=1", "read", "st8")
    assert url == (
        "https://acme.zendesk.com/oauth/authorizations/new?response_type=code&client_id=my%20client"
        "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&scope=read&state=st8"
    )
    assert build_authorization_url(BASE_URL + "/", "c") == (
        "https://acme.zendesk.com/oauth/authorizations/new?response_type=code&client_id=c&scope=read"
    )


def test_token_url() -> None:
    assert token_url("https://acme.zendesk.com/") == TOKEN_URL


def test_parse_code_answer() -> None:
    assert parse_code_answer("  abc123 \n", "s") == "abc123"
    assert parse_code_answer("https://app.example.com/cb?code=abc123&state=s", "s") == "abc123"
    with pytest.raises(ZendeskAuthError, match="another sign-in"):
        parse_code_answer("https://app.example.com/cb?code=abc123&state=other", "s")
    with pytest.raises(ZendeskAuthError, match="did not authorize"):
        parse_code_answer("https://app.example.com/cb?error=access_denied&state=s", "s")
    with pytest.raises(ZendeskAuthError, match="No authorization code"):
        parse_code_answer("   ", "s")


def test_authorize_interactive_end_to_end(
    server: RotatingTokenServer, store: TokenStore, zendesk_http: requests_mock.Adapter,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    server.codes.add("code-7d1e4a")
    prompts: List[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "code-7d1e4a"

    caplog.set_level(logging.DEBUG)
    user = authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), input_fn=answer)
    out = capsys.readouterr().out
    assert user["email"] == "ada@acme.com"
    assert ("https://acme.zendesk.com/oauth/authorizations/new?response_type=code&client_id=dlt_connector"
            "&redirect_uri=http%3A%2F%2Flocalhost&scope=read&state=") in out
    assert server.token_bodies[0]["redirect_uri"] == "http://localhost"
    assert len(prompts) == 1
    exchange = server.token_bodies[0]
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "code-7d1e4a"
    stored = store.load()
    assert stored is not None and stored.refresh_token in server.live_refresh
    assert stored.token_url == TOKEN_URL and stored.client_id == CLIENT_ID
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    me = zendesk_http.last_request
    assert me.path == "/api/v2/users/me.json"
    assert me.headers["Authorization"] == f"Bearer {stored.access_token}"
    assert "Authorized as Ada Admin <ada@acme.com>, role admin" in out
    assert str(store.path) in out
    assert_no_secrets(out + caplog.text + "".join(prompts), server.secrets | {"code-7d1e4a"})
    # the stored pair is what the next run uses
    clock = Clock(stored.expires_at + 1)
    assert requests.get(f"{API}/groups", auth=RefreshingOAuth(store, CLIENT_ID, CLIENT_SECRET, TOKEN_URL,
                                                             clock=clock), timeout=5).status_code == 200
    assert server.refresh_tokens_sent() == [stored.refresh_token]


def test_authorize_accepts_the_redirect_address_and_checks_state(
    server: RotatingTokenServer, store: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    server.codes.add("code-2")
    redirect = "https://app.example.com/zendesk/callback"

    def paste_redirect(prompt: str) -> str:
        url = capsys.readouterr().out.split("     ", 1)[1].split()[0]
        state = url.split("state=")[1]
        assert f"redirect_uri={requests.utils.quote(redirect, safe='')}" in url
        return f"{redirect}?code=code-2&state={state}"

    authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), input_fn=paste_redirect,
                          redirect_uri=redirect)
    assert server.token_bodies[0]["redirect_uri"] == redirect
    assert store.load() is not None


def test_authorize_with_a_rejected_code_stores_nothing(
    server: RotatingTokenServer, store: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ZendeskAuthError, match="authorization code") as info:
        authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), input_fn=lambda _: "stale-code-1")
    assert store.load() is None
    assert "stale-code-1" not in str(info.value) + capsys.readouterr().out


def test_authorize_refuses_to_overwrite_another_accounts_store(
    server: RotatingTokenServer, store: TokenStore
) -> None:
    store.save(TokenSet("a", "r", None, None, "https://other.zendesk.com/oauth/tokens", CLIENT_ID))
    with pytest.raises(ZendeskConfigError, match="separate file"):
        authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), input_fn=lambda _: "x")
    assert server.token_bodies == []


def test_authorize_with_closed_stdin_says_no_code_was_entered(server: RotatingTokenServer, store: TokenStore) -> None:
    def closed(prompt: str) -> str:
        raise EOFError

    with pytest.raises(ZendeskAuthError, match="No authorization code"):
        authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), input_fn=closed, print_fn=lambda *a: None)
    assert server.token_bodies == [] and store.load() is None


def test_authorize_needs_the_client(store: TokenStore) -> None:
    with pytest.raises(ZendeskConfigError, match="client_id and client_secret"):
        authorize_interactive("acme", "", "", str(store.path), input_fn=lambda _: "x")


def test_authorize_on_a_loopback_base_url(
    clock: Clock, zendesk_http: requests_mock.Adapter, store: TokenStore, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = RotatingTokenServer(clock)
    fake.install(zendesk_http, "http://127.0.0.1:8765")
    fake.codes.add("c-1")
    authorize_interactive("acme", CLIENT_ID, CLIENT_SECRET, str(store.path), base_url="http://127.0.0.1:8765",
                          input_fn=lambda _: "c-1")
    assert store.load().token_url == "http://127.0.0.1:8765/oauth/tokens"  # type: ignore[union-attr]
    assert "http://127.0.0.1:8765/oauth/authorizations/new?" in capsys.readouterr().out


def test_authorize_from_config_reads_the_source_settings(
    server: RotatingTokenServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cfg_tokens.json"
    monkeypatch.setenv("SOURCES__ZENDESK__SUBDOMAIN", "acme")
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__TOKEN_STORE_PATH", str(path))
    server.codes.add("c-9")
    authorize_from_config(input_fn=lambda _: "c-9")
    assert TokenStore(path).load() is not None
    assert_no_secrets(capsys.readouterr().out, server.secrets)


def test_exchange_code_binds_the_pair(server: RotatingTokenServer, clock: Clock) -> None:
    server.codes.add("c-5")
    tokens = exchange_code(BASE_URL, CLIENT_ID, CLIENT_SECRET, "c-5", clock=clock, expires_in=3600)
    assert tokens.token_url == TOKEN_URL and tokens.client_id == CLIENT_ID
    assert tokens.expires_at == clock() + 1800  # the server's cap
    assert server.token_bodies[0]["expires_in"] == 3600


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
