"""A rotating OAuth token server for the unit tests of `tokens.py` and `authorize.py`.

requests-mock callbacks stand in for Zendesk: a refresh grant returns a new pair and
kills the old one at once, and a refresh token presented twice is recorded in
`replayed`. The API answers 401 to tokens that are unknown, revoked or expired on the
test's clock. The fixtures that install it are in `conftest.py`.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Callable, Dict, List, Optional, Set

import requests_mock

from zendesk.auth.token_store import TokenSet

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



class TokenRequest:
    """The part of a requests-mock request that `RotatingTokenServer.token` reads."""

    def __init__(self, body: Dict[str, Any]) -> None:
        self._body = body

    def json(self) -> Dict[str, Any]:
        return self._body


class TokenContext:
    """The part of a requests-mock context that `RotatingTokenServer.token` writes."""

    status_code = 200


def assert_no_secrets(text: str, secrets: Set[str]) -> None:
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"secret(s) leaked: {len(leaked)}"
