"""The fake account's OAuth server: grants, token rotation, expiry and scopes.

Behaves like Zendesk's `/oauth/tokens` since refresh tokens became mandatory: a refresh
grant returns a new access token AND a new refresh token and revokes the old pair at
once, so a client that stores only the access token, or reuses a refresh token, breaks
here the way it would break against Zendesk. Every refresh token presented after it was
rotated is remembered in `used_refresh_tokens`, so a test can prove a client never does.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple
from urllib.parse import urlencode

Body = Dict[str, Any]

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: The OAuth client's registered Redirect URLs (Admin Center form), as `authorize` uses by default.
DEFAULT_REDIRECT_URLS = ("http://localhost",)
INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the"
    " redirection URI used in the authorization request, or was issued to another client.",
}
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed due to unknown client, no client authentication"
    " included, or unsupported authentication method.",
}


@dataclass
class AccessToken:
    """One issued access token; `expires_at` is an epoch, None for a non-expiring token."""

    value: str
    id: int
    scopes: List[str]
    created_at: float
    expires_at: Optional[float]
    refresh_token: Optional[str]
    revoked: bool = False


@dataclass(frozen=True)
class AuthorizationCode:
    scopes: Tuple[str, ...]
    redirect_uri: Optional[str]


class OAuthServer:
    """Token bookkeeping for one OAuth client; thread-safe."""

    def __init__(self, client_id: str, client_secret: str, permanent_token: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: Dict[str, AccessToken] = {}
        self._live_refresh: Dict[str, str] = {}  # refresh token -> the access token it belongs to
        self._rotated: Set[str] = set()
        self._codes: Dict[str, AuthorizationCode] = {}
        self._next_id = 1
        #: Lifetime in seconds of tokens issued from now on; None: they never expire.
        self.access_token_ttl: Optional[float] = None
        #: Refresh tokens presented again after they had been rotated.
        self.used_refresh_tokens: Set[str] = set()
        #: Successful refresh grants.
        self.refresh_count = 0
        #: The client's Redirect URLs: the consent page sends the browser only to one of these.
        self.redirect_urls: Tuple[str, ...] = DEFAULT_REDIRECT_URLS
        self._add_token(permanent_token, ["read", "write"], None, None)

    def _add_token(self, value: str, scopes: List[str], ttl: Optional[float], refresh: Optional[str]) -> AccessToken:
        now = self._clock()
        token = AccessToken(value, self._next_id, scopes, now, None if ttl is None else now + ttl, refresh)
        self._next_id += 1
        self._tokens[value] = token
        if refresh is not None:
            self._live_refresh[refresh] = value
        return token

    def authenticate(self, value: str) -> Optional[AccessToken]:
        """The token if it is known, not revoked and not expired."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.revoked:
                return None
            if token.expires_at is not None and self._clock() >= token.expires_at:
                return None
            return token

    def issue_authorization_code(self, scope: str = "read", redirect_uri: Optional[str] = None) -> str:
        """A single-use code, as the consent page would hand to the redirect URI."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthorizationCode(tuple(scope.split()), redirect_uri)
        return code

    def authorization_page(self, query: Mapping[str, str]) -> Tuple[int, str, Optional[str]]:
        """GET /oauth/authorizations/new, as if the signed-in admin had clicked Allow.

        Like Zendesk: `redirect_uri` is required and must be one of the client's Redirect
        URLs; the code is never shown on a page, the browser is redirected (302) to
        `redirect_uri?code=...&state=...`. Returns status, HTML body and the redirect target."""
        if query.get("response_type") != "code":
            return 400, _page("Invalid request", "response_type must be 'code'."), None
        if query.get("client_id") != self.client_id:
            return 400, _page("Invalid client", "The client_id is not registered with this account."), None
        redirect_uri = query.get("redirect_uri") or ""
        if not redirect_uri:
            return 400, _page("invalid_request", "Missing required parameter: redirect_uri"), None
        if redirect_uri not in self.redirect_urls:
            return 400, _page("invalid_request", "The redirect_uri is not one of this client's Redirect URLs."), None
        code = self.issue_authorization_code(query.get("scope") or "read", redirect_uri)
        params = {"code": code, **({"state": query["state"]} if query.get("state") else {})}
        target = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}"
        return 302, _page("Redirecting", f'<a href="{html.escape(target)}">Continue</a>', escape=False), target

    def token(self, params: Mapping[str, str], basic: Optional[Tuple[str, str]]) -> Tuple[int, Body]:
        """POST /oauth/tokens: status and JSON body for one grant request."""
        grant_type = params.get("grant_type")
        if grant_type not in GRANT_TYPES:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": f"grant_type must be one of {', '.join(GRANT_TYPES)}."}
        client_id, client_secret = basic if basic else (params.get("client_id"), params.get("client_secret"))
        if client_id != self.client_id or not client_secret or not secrets.compare_digest(client_secret, self.client_secret):
            return 401, dict(INVALID_CLIENT)
        try:
            ttl = self._ttl(params.get("expires_in"))
        except ValueError:
            return 400, {"error": "invalid_request", "error_description": "expires_in must be a positive integer."}
        with self._lock:
            if grant_type == "authorization_code":
                code = self._codes.pop(params.get("code") or "", None)
                if code is None or (code.redirect_uri and params.get("redirect_uri") != code.redirect_uri):
                    return 400, dict(INVALID_GRANT)
                return 200, self._grant(list(code.scopes), ttl, with_refresh=True)
            if grant_type == "refresh_token":
                presented = params.get("refresh_token") or ""
                if presented in self._rotated:
                    self.used_refresh_tokens.add(presented)
                    return 400, dict(INVALID_GRANT)
                old_access = self._live_refresh.pop(presented, None)
                if old_access is None:
                    return 400, dict(INVALID_GRANT)
                self._rotated.add(presented)
                old = self._tokens[old_access]
                old.revoked = True
                self.refresh_count += 1
                return 200, self._grant(old.scopes, ttl, with_refresh=True)
            scopes = (params.get("scope") or "read").split()
            return 200, self._grant(scopes, ttl, with_refresh=False)

    def _ttl(self, requested: Optional[str]) -> Optional[float]:
        """The lifetime of a new token: the client may ask for less than the configured one.

        Raises ValueError for an `expires_in` that is not a positive integer."""
        if requested in (None, ""):
            return self.access_token_ttl
        asked = int(str(requested))
        if asked <= 0:
            raise ValueError(requested)
        return float(asked) if self.access_token_ttl is None else min(float(asked), self.access_token_ttl)

    def _grant(self, scopes: List[str], ttl: Optional[float], with_refresh: bool) -> Body:
        refresh = secrets.token_urlsafe(32) if with_refresh else None
        token = self._add_token(secrets.token_urlsafe(32), scopes, ttl, refresh)
        body: Body = {"access_token": token.value, "token_type": "bearer", "scope": " ".join(scopes),
                      "expires_in": None if ttl is None else int(ttl)}
        if refresh is not None:
            body["refresh_token"] = refresh
        return body


def _page(title: str, body: str, escape: bool = True) -> str:
    content = f"<p>{html.escape(body)}</p>" if escape else body
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{content}</body></html>")
