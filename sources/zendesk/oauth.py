"""Zendesk OAuth: refresh-token rotation, the client credentials grant, and `authorize`.

Zendesk's access tokens expire (30 minutes by default, 48 hours at most) and every
refresh answers with a new refresh token while invalidating the old one. So:

- `RefreshingOAuth` refreshes before a token expires and, when a request still gets a
  401, refreshes once and re-sends that request once. The new pair is written to the
  `TokenStore` *before* the new access token is used, and a refresh token that Zendesk
  answered for is never sent again.
- `ClientCredentialsOAuth` gets tokens with the client credentials grant (client id and
  secret only), where the OAuth client allows it; nothing to store.
- `authorize_interactive` is the `python zendesk_pipeline.py authorize` command: sign in
  in a browser, paste the code, tokens are stored and checked with `GET /api/v2/users/me`.

Token requests go to `{base_url}/oauth/tokens` with plain `requests` and a timeout, not
through the run's paced, retrying session: a retrying session could send a refresh token
twice. No secret (client secret, access or refresh token, authorization code) is ever
logged, printed or put into an exception message.

**When a refresh is retried.** A refresh token is spent as soon as Zendesk processes the
request, so a refresh is retried with the same token only when the request provably
never reached Zendesk and trying again may help: the connection timed out before it
opened. An unknown host or a refused connection fails at once (a wrong subdomain, not a
passing fault), the store untouched. After anything else (a read timeout, a dropped connection, any HTTP answer,
5xx included) the token may be spent, and re-sending it would at best be rejected and at
worst be seen as a replayed token; the run stops instead, with the store untouched. The
next run tries the stored token again: if Zendesk had not processed the request it
works, otherwise Zendesk answers `invalid_grant` and the message says to run `authorize`.
The only window that can lose tokens is between Zendesk's answer and the rename of the
new store file (a few milliseconds), i.e. the process being killed at that instant.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional, Set
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests
from requests.auth import AuthBase

from .client import never_connected
from .config import is_placeholder, normalize_subdomain, resolve_base_url
from .errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .token_store import DEFAULT_TOKEN_STORE_PATH, TokenSet, TokenStore

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/tokens"
AUTHORIZE_PATH = "/oauth/authorizations/new"
USER_AGENT = "zendesk-dlt-source/1.0"
DEFAULT_SCOPE = "read"
#: Refresh when the access token has less than this left (or half its lifetime, if shorter).
DEFAULT_REFRESH_MARGIN_SECONDS = 120.0
#: Access token lifetime asked for when none is configured: Zendesk's default TTL, sent
#: explicitly so that every token's expiry is known (see `token_lifetime`).
DEFAULT_ACCESS_TOKEN_EXPIRES_IN = 1800
TOKEN_REQUEST_TIMEOUT = 30.0
#: Attempts to open a connection to the token endpoint when it timed out (see "When a
#: refresh is retried"); an unknown host or a refused connection is not retried.
CONNECT_ATTEMPTS = 3
AUTHORIZE_COMMAND = "python zendesk_pipeline.py authorize"
#: Where Zendesk sends the browser after sign-in, unless `redirect_uri` is set. Zendesk
#: requires a redirect URI and accepts plain http only for localhost: nothing needs to
#: listen there, the user copies the address (which carries the code) from the browser.
DEFAULT_REDIRECT_URI = "http://localhost"


def token_url(base_url: str) -> str:
    """The OAuth token endpoint of the account at `base_url`."""
    return base_url.rstrip("/") + TOKEN_PATH


def token_lifetime(configured: Optional[int]) -> int:
    """The `expires_in` to send with an authorization code or refresh token grant.

    What Zendesk documents (announcements "Announcing support for OAuth refresh token
    grant type and OAuth access and refresh token expirations", support.zendesk.com
    article 9182123625370, and "Announcing the required expiration of global OAuth access
    and refresh tokens", article 10212201463962): `POST /oauth/tokens` takes `expires_in`
    (access token) and `refresh_token_expires_in` for both the `authorization_code` and
    the `refresh_token` grants, and an expiry that is set is applied and enforced. Access
    tokens live 30 minutes by default, 5 minutes at least and 48 hours at most; refresh
    tokens 30 days by default, 7 to 90 days. A refresh answers with a new access token and
    a new refresh token and invalidates the previous pair.

    Asking for the lifetime on every grant, the default included, means the source always
    knows when its access token expires and refreshes ahead of it, instead of learning it
    from a 401 (which, after a long pacing wait, came back a second time and ended runs).
    """
    return int(configured) if configured else DEFAULT_ACCESS_TOKEN_EXPIRES_IN


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


#: Fingerprints of refresh tokens Zendesk has answered for, process-wide: a run builds a
#: new auth object per batch, and none of them may send a spent token again.
_SPENT_REFRESH_TOKENS: Set[str] = set()
_SPENT_LOCK = threading.Lock()


def _bearer_of(request: requests.PreparedRequest) -> Optional[str]:
    header = request.headers.get("Authorization") or ""
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def _format_epoch(epoch: Optional[float]) -> str:
    if epoch is None:
        return "never (per Zendesk)"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the token endpoint -------------------------------------------------------------------


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server: the connection never opened."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)
    ):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


def _post_token_request(
    url: str, body: Dict[str, Any], timeout: float, http: Optional[requests.Session]
) -> requests.Response:
    """POST one grant to the token endpoint; retried only while no connection could be opened."""
    send = http.post if http is not None else requests.post
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return send(
                url,
                json=body,
                timeout=timeout,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if _never_sent(exc) and not never_connected(exc) and attempt < CONNECT_ATTEMPTS:
                # A connect timeout may pass; an unknown host or a refused connection won't.
                logger.warning(
                    "Could not connect to %s (%s); trying again (attempt %d of %d).",
                    url, type(exc).__name__, attempt + 1, CONNECT_ATTEMPTS,
                )
                time.sleep(float(attempt))
                continue
            if _never_sent(exc):
                raise ZendeskApiError(
                    f"Could not connect to the Zendesk token endpoint {url} ({type(exc).__name__})."
                    " Check the subdomain and the network, then rerun: the stored tokens were not"
                    " used and are still valid."
                ) from None
            raise ZendeskApiError(
                f"The request to the Zendesk token endpoint {url} failed after it was sent"
                f" ({type(exc).__name__}). It is not retried because Zendesk may already have"
                " spent the refresh token; the token store is unchanged. Rerun: if Zendesk then"
                f" rejects the stored token, run `{AUTHORIZE_COMMAND}`."
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _error_fields(response: requests.Response) -> Dict[str, str]:
    """`error` and `error_description` of an OAuth error body; nothing else is echoed."""
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    fields = {}
    for key in ("error", "error_description"):
        value = body.get(key)
        if isinstance(value, str) and value:
            fields[key] = value[:300]
    return fields


def _parse_grant(
    response: requests.Response,
    grant: str,
    url: str,
    clock: Callable[[], float],
    previous_refresh_token: Optional[str] = None,
    store_path: Optional[str] = None,
    requested_expires_in: Optional[int] = None,
) -> TokenSet:
    """The token pair from a token endpoint answer, or an actionable error.

    The access token expires after the `expires_in` of the answer; an answer without one
    gets the lifetime that was asked for (`requested_expires_in`), which Zendesk enforces.
    """
    status = response.status_code
    if status == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        access = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access:
            raise ZendeskApiError(
                f"The Zendesk token endpoint {url} answered 200 without an access token"
                f" ({grant} grant). Check that base_url points to Zendesk.",
                status,
            )
        refresh = body.get("refresh_token") or previous_refresh_token
        expires_in = body.get("expires_in")
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = requested_expires_in
        now = clock()
        expires_at = float(now + float(expires_in)) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
        return TokenSet(access, refresh if isinstance(refresh, str) else None, expires_at, now)

    fields = _error_fields(response)
    error = fields.get("error", "")
    detail = " - ".join(fields.values()) or f"HTTP {status}"
    store_hint = f" It writes new tokens to {store_path}." if store_path else ""
    if error == "invalid_client" or status == 401:
        raise ZendeskAuthError(
            f"Zendesk rejected the OAuth client at {url} ({detail}). Check client_id and"
            " client_secret in .dlt/secrets.toml (or SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID /"
            " __CLIENT_SECRET): they are the identifier and secret of the OAuth client in Admin"
            " Center > Apps and integrations > APIs > OAuth clients."
        )
    if error == "invalid_grant" and grant == "refresh_token":
        raise ZendeskAuthError(
            f"Zendesk rejected the OAuth refresh token ({detail}): it was already used (Zendesk"
            " rotates it on every refresh) or it has expired or been revoked. The connector"
            f" will not retry it. Run `{AUTHORIZE_COMMAND}` to sign in again.{store_hint}"
        )
    if error == "invalid_grant" and grant == "authorization_code":
        raise ZendeskAuthError(
            f"Zendesk rejected the authorization code ({detail}): codes are single use and expire"
            f" within minutes, and the redirect_uri must match the one used to sign in. Run"
            f" `{AUTHORIZE_COMMAND}` again and paste the new code right away."
        )
    if error in ("unauthorized_client", "unsupported_grant_type") and grant == "client_credentials":
        raise ZendeskAuthError(
            f"This OAuth client may not use the client credentials grant ({detail}). Configure a"
            f" refresh token instead: run `{AUTHORIZE_COMMAND}`."
        )
    if status in (400, 403):
        raise ZendeskAuthError(
            f"Zendesk refused the {grant} grant at {url} ({detail}). Check the OAuth client's"
            f" settings (allowed grants, scopes), then run `{AUTHORIZE_COMMAND}`.{store_hint}"
        )
    raise ZendeskApiError(
        f"The Zendesk token endpoint {url} answered {status} ({detail}) to the {grant} grant."
        " Rerun later; the token store is unchanged.",
        status,
    )


# --- bearer auth that renews its token ----------------------------------------------------


class _RenewingBearerAuth(AuthBase):
    """Sets `Authorization: Bearer`, and on a 401 renews the token once and re-sends once.

    Holds what both grants need to ask Zendesk's token endpoint for a new token."""

    def __init__(
        self,
        grant: str,
        client_id: str,
        client_secret: str,
        token_endpoint: str,
        expires_in: Optional[int],
        refresh_margin: float,
        timeout: float,
        clock: Callable[[], float],
        http: Optional[requests.Session],
    ) -> None:
        if not client_id or not client_secret:
            raise ZendeskConfigError(f"{grant} needs both client_id and client_secret.")
        self._lock = threading.RLock()
        self.client_id = str(client_id)
        self._client_secret = str(client_secret)
        self.token_endpoint = token_endpoint
        self._expires_in = expires_in
        self._refresh_margin = float(refresh_margin)
        self._timeout = timeout
        self._clock = clock
        self._http = http
        self._tokens: Optional[TokenSet] = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, client_secret=***,"
            f" token_endpoint={self.token_endpoint!r}{self._repr_extra()})"
        )

    def _repr_extra(self) -> str:
        return ""

    def _current_token(self) -> str:
        """A token that is not about to expire (renewing it first if needed)."""
        raise NotImplementedError

    def _renew_after_401(self, failed_token: str) -> Optional[str]:
        """The token to re-send with after `failed_token` got a 401, or None to give up."""
        raise NotImplementedError

    def _expiring(self, tokens: Optional[TokenSet]) -> bool:
        if tokens is None or not tokens.access_token:
            return True
        if tokens.expires_at is None:
            return False
        margin = self._refresh_margin
        if tokens.issued_at is not None:
            # A short-lived token (tests, or a small expires_in) is not refreshed on every request.
            margin = min(margin, max(0.0, tokens.expires_at - tokens.issued_at) / 2)
        return self._clock() >= tokens.expires_at - margin

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._current_token()}"
        hooks = request.hooks.setdefault("response", [])
        if self._handle_401 not in hooks:
            request.register_hook("response", self._handle_401)
        return request

    def _handle_401(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if response.status_code != 401:
            return response
        failed = _bearer_of(response.request)
        if failed is None or getattr(response.connection, "send", None) is None:
            return response
        token = self._renew_after_401(failed)
        if not token or token == failed:
            return response
        # Re-send once, the way requests' HTTPDigestAuth does: on the same transport adapter
        # (so pacing and the host check apply), without dispatching hooks again (no loop).
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        # The session's own retries (429/5xx) re-send the original request object: fresh token there too.
        response.request.headers["Authorization"] = f"Bearer {token}"
        logger.info("Re-sending %s %s once with the renewed OAuth token.", retry.method, urlsplit(retry.url or "").path)
        second = response.connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
        return second


class RefreshingOAuth(_RenewingBearerAuth):
    """OAuth bearer auth that refreshes with a rotating refresh token and never loses it.

    Thread-safe: one lock guards the token pair, so concurrent requests that all hit a
    401 cause a single refresh; a request whose failed token is no longer the current
    one is just re-sent with the current token.

    Which refresh token is used: the store's, when it holds one for this account and
    client; the configured `refresh_token` only seeds an empty store. A configured token
    that differs from the stored one is older: the store's came from rotating it (or from
    `authorize`), and the configured one was spent by that rotation. To start over with
    another token, run `authorize` (or delete the store file).

    Before each refresh the store is re-read under its lock, so a pair rotated meanwhile
    by another process sharing the file is picked up instead of spending a dead token.

    Args:
        store: Where the pair is kept between runs; written before a new token is used.
        client_id, client_secret: The OAuth client.
        token_endpoint: `{base_url}/oauth/tokens`.
        refresh_token: The configured refresh token; used only when the store has none.
        expires_in: Access token lifetime to ask for, in seconds (Zendesk: 300-172800);
            None: Zendesk's default (30 minutes), asked for explicitly.
        refresh_margin: Refresh when less than this is left (at most half the lifetime).
        timeout: Timeout of token requests, in seconds.
        clock: Epoch seconds; tests pass a fake.
        http: Session for token requests; default: plain `requests`.
    """

    def __init__(
        self,
        store: TokenStore,
        client_id: str,
        client_secret: str,
        token_endpoint: str,
        *,
        refresh_token: Optional[str] = None,
        expires_in: Optional[int] = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        timeout: float = TOKEN_REQUEST_TIMEOUT,
        clock: Callable[[], float] = time.time,
        http: Optional[requests.Session] = None,
    ) -> None:
        super().__init__(
            "OAuth refresh", client_id, client_secret, token_endpoint, expires_in, refresh_margin, timeout, clock, http
        )
        self.store = store
        self._configured_refresh_token = str(refresh_token) if refresh_token else None
        self._unsaved: Optional[TokenSet] = None
        #: Successful refreshes by this object (for logs and tests).
        self.refresh_count = 0

    def _repr_extra(self) -> str:
        return f", store={str(self.store.path)!r}"

    # --- the current pair ---------------------------------------------------------------

    def _load_own(self) -> Optional[TokenSet]:
        """The store's pair, refusing one that belongs to another account or client."""
        stored = self.store.load()
        if stored is None:
            return None
        foreign_url = stored.token_url is not None and stored.token_url != self.token_endpoint
        foreign_client = stored.client_id is not None and stored.client_id != self.client_id
        if foreign_url or foreign_client:
            raise ZendeskConfigError(
                f"The OAuth token store at {self.store.path} holds tokens of another Zendesk"
                f" account or OAuth client ({stored.token_url}, client {stored.client_id}), not of"
                f" {self.token_endpoint} with client {self.client_id}. Use one token_store_path per"
                " account and client; the file was left untouched."
            )
        return stored

    def _initial(self) -> TokenSet:
        stored = self._load_own()
        if stored is not None and stored.refresh_token:
            if self._configured_refresh_token and self._configured_refresh_token != stored.refresh_token:
                logger.info(
                    "A refresh_token is configured, but the token store %s holds a newer one from an"
                    " earlier rotation or `authorize`; using the stored one (the configured token"
                    " was spent by that rotation).",
                    self.store.path,
                )
            return stored
        if self._configured_refresh_token:
            return TokenSet(None, self._configured_refresh_token, None, None, self.token_endpoint, self.client_id)
        raise ZendeskAuthError(
            "No OAuth refresh token: none is configured (sources.zendesk.credentials.refresh_token)"
            f" and the token store at {self.store.path} holds none. Run `{AUTHORIZE_COMMAND}` to"
            " sign in and store one, or set token_store_path to the file `authorize` wrote."
        )

    def _ensure_loaded(self) -> TokenSet:
        if self._tokens is None:
            self._tokens = self._initial()
        return self._tokens

    def current_tokens(self) -> TokenSet:
        """The pair in use (loading it from the store on first use); its repr hides secrets."""
        with self._lock:
            return self._ensure_loaded()

    def _current_token(self) -> str:
        with self._lock:
            tokens = self._ensure_loaded()
            if self._unsaved is not None:
                self._save(self._unsaved)
            if self._expiring(tokens):
                self._refresh(failed_token=None)
            assert self._tokens is not None and self._tokens.access_token
            return self._tokens.access_token

    def _renew_after_401(self, failed_token: str) -> Optional[str]:
        with self._lock:
            tokens = self._ensure_loaded()
            if tokens.access_token == failed_token:
                logger.info("Zendesk answered 401 to the current OAuth access token; refreshing it once.")
                self._refresh(failed_token=failed_token)
            return self._tokens.access_token if self._tokens else None

    # --- refresh ------------------------------------------------------------------------

    def _refresh(self, failed_token: Optional[str]) -> None:
        """Swap the pair for a new one; the new pair is stored before it is used."""
        with self.store.locked():
            if self._unsaved is None:
                # (With a pair that could not be saved, the store holds a spent token: skip it.)
                latest = self._load_own()
                current = self._tokens
                if (
                    latest is not None
                    and latest.refresh_token
                    and (current is None or latest.refresh_token != current.refresh_token)
                ):
                    # Another process sharing the store rotated the pair meanwhile (or ran
                    # `authorize`): its pair is the newer one, ours was spent. Adopt it.
                    self._tokens = latest
                    if latest.access_token != failed_token and not self._expiring(latest):
                        logger.info("Using the OAuth tokens another run stored in %s.", self.store.path)
                        return
            self.store.check_writable()
            assert self._tokens is not None
            spent = self._tokens.refresh_token
            if not spent:
                raise ZendeskAuthError(
                    f"The OAuth access token expired and there is no refresh token. Run `{AUTHORIZE_COMMAND}`."
                )
            new = self._request_refresh(spent).bound_to(self.token_endpoint, self.client_id)
            self._save(new)
            self._tokens = new
            self.refresh_count += 1
            logger.info(
                "Refreshed the Zendesk OAuth access token; the new pair is stored in %s. It expires %s.",
                self.store.path,
                _format_epoch(new.expires_at),
            )

    def _request_refresh(self, refresh_token: str) -> TokenSet:
        fingerprint = _fingerprint(refresh_token)
        with _SPENT_LOCK:
            spent = fingerprint in _SPENT_REFRESH_TOKENS
        if spent:
            # Zendesk already answered for this token in this process; sending it again is a replay.
            raise ZendeskAuthError(
                "The OAuth refresh token was already used by this run and is not sent again."
                f" Run `{AUTHORIZE_COMMAND}` to sign in again; it writes new tokens to {self.store.path}."
            )
        body: Dict[str, Any] = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "expires_in": token_lifetime(self._expires_in),
        }
        response = _post_token_request(self.token_endpoint, body, self._timeout, self._http)
        # Zendesk has answered: from here on this token counts as spent, whatever the answer.
        with _SPENT_LOCK:
            _SPENT_REFRESH_TOKENS.add(fingerprint)
        tokens = _parse_grant(
            response, "refresh_token", self.token_endpoint, self._clock,
            previous_refresh_token=refresh_token, store_path=str(self.store.path),
            requested_expires_in=body["expires_in"],
        )
        if tokens.refresh_token == refresh_token:
            with _SPENT_LOCK:
                _SPENT_REFRESH_TOKENS.discard(fingerprint)  # not rotated: Zendesk still accepts it
        return tokens

    def _save(self, tokens: TokenSet) -> None:
        """Write the pair; if the disk refuses, keep it in memory and retry on every request.

        Raising instead would drop the only copy of a refresh token Zendesk has already
        rotated to, locking the user out for certain.
        """
        try:
            self.store.save(tokens)
        except OSError as exc:
            if self._unsaved is None:
                logger.error(
                    "Could not write the rotated OAuth tokens to %s (%s). They are kept in memory and"
                    " saving is retried before every request; if this run ends before it succeeds, the"
                    " next run cannot refresh and you must run `%s`.",
                    self.store.path, exc.strerror or type(exc).__name__, AUTHORIZE_COMMAND,
                )
            self._unsaved = tokens
            return
        if self._unsaved is not None:
            logger.warning("The rotated OAuth tokens are now stored in %s.", self.store.path)
        self._unsaved = None


class ClientCredentialsOAuth(_RenewingBearerAuth):
    """OAuth bearer auth from the client credentials grant (client id + secret only).

    Zendesk allows this grant only for confidential OAuth clients set up for it. The token
    is cached until shortly before it expires; a 401 fetches a new one once and re-sends
    the request once. There is no refresh token, so nothing is stored.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_endpoint: str,
        *,
        scope: str = DEFAULT_SCOPE,
        expires_in: Optional[int] = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        timeout: float = TOKEN_REQUEST_TIMEOUT,
        clock: Callable[[], float] = time.time,
        http: Optional[requests.Session] = None,
    ) -> None:
        super().__init__(
            "The client credentials grant",
            client_id,
            client_secret,
            token_endpoint,
            expires_in,
            refresh_margin,
            timeout,
            clock,
            http,
        )
        self.scope = scope
        #: Tokens fetched by this object (for logs and tests).
        self.fetch_count = 0

    def _fetch(self) -> None:
        body: Dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "scope": self.scope,
        }
        if self._expires_in:
            body["expires_in"] = int(self._expires_in)
        response = _post_token_request(self.token_endpoint, body, self._timeout, self._http)
        self._tokens = _parse_grant(
            response, "client_credentials", self.token_endpoint, self._clock,
            requested_expires_in=body.get("expires_in"),
        )
        self.fetch_count += 1
        logger.info(
            "Got a Zendesk OAuth access token with the client credentials grant; it expires %s.",
            _format_epoch(self._tokens.expires_at),
        )

    def _current_token(self) -> str:
        with self._lock:
            if self._expiring(self._tokens):
                self._fetch()
            assert self._tokens is not None and self._tokens.access_token
            return self._tokens.access_token

    def _renew_after_401(self, failed_token: str) -> Optional[str]:
        with self._lock:
            if self._tokens is None or self._tokens.access_token == failed_token:
                self._fetch()
            return self._tokens.access_token if self._tokens else None


# --- authorization code flow (the `authorize` command) ------------------------------------


def build_authorization_url(
    base_url: str,
    client_id: str,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    state: Optional[str] = None,
) -> str:
    """`{base_url}/oauth/authorizations/new?response_type=code&client_id=...&redirect_uri=...&scope=read&state=...`

    `redirect_uri` and `state` are left out when None. The redirect URI must be one of
    those registered on the OAuth client.
    """
    params = [("response_type", "code"), ("client_id", client_id)]
    if redirect_uri:
        params.append(("redirect_uri", redirect_uri))
    params.append(("scope", scope))
    if state:
        params.append(("state", state))
    return f"{base_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(params, quote_via=quote)}"


def exchange_code(
    base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    expires_in: Optional[int] = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT,
    clock: Callable[[], float] = time.time,
    http: Optional[requests.Session] = None,
) -> TokenSet:
    """Trade an authorization code for a token pair at `{base_url}/oauth/tokens`.

    Returns the pair bound to this token endpoint and client (not yet stored).
    """
    url = token_url(base_url)
    body: Dict[str, Any] = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope,
    }
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    body["expires_in"] = token_lifetime(expires_in)
    response = _post_token_request(url, body, timeout, http)
    tokens = _parse_grant(response, "authorization_code", url, clock, requested_expires_in=body["expires_in"])
    return tokens.bound_to(url, client_id)


def parse_code_answer(answer: str, expected_state: Optional[str]) -> str:
    """The code from what the user pasted: the code itself, or the address redirected to.

    Raises `ZendeskAuthError` when the answer is empty, carries an OAuth error, or its
    `state` does not match the one sent (a mixed-up or forged redirect).
    """
    text = (answer or "").strip()
    if "code=" in text or "error=" in text or "?" in text:
        query = parse_qs(urlsplit(text).query if "?" in text else text)
        if "error" in query:
            raise ZendeskAuthError(
                f"Zendesk did not authorize the connector ({query['error'][0]}). Run"
                f" `{AUTHORIZE_COMMAND}` again and approve the access request."
            )
        state = query.get("state", [None])[0]
        if expected_state and state is not None and state != expected_state:
            raise ZendeskAuthError(
                "The pasted address belongs to another sign-in (its state does not match). Run"
                f" `{AUTHORIZE_COMMAND}` again and paste the address of this sign-in."
            )
        text = (query.get("code") or [""])[0].strip()
    if not text:
        raise ZendeskAuthError(f"No authorization code was entered. Run `{AUTHORIZE_COMMAND}` again.")
    return text


def authorize_interactive(
    subdomain: str,
    client_id: str,
    client_secret: str,
    token_store_path: str = DEFAULT_TOKEN_STORE_PATH,
    base_url: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., Any] = print,
    *,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    expires_in: Optional[int] = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT,
) -> Dict[str, Any]:
    """`python zendesk_pipeline.py authorize`: sign in, store the tokens, check them.

    Prints the authorization URL for the account and client with `redirect_uri` (one of
    the OAuth client's Redirect URLs; default `DEFAULT_REDIRECT_URI`), asks for the
    address Zendesk redirected the browser to (or just its code), exchanges it at
    `/oauth/tokens` with the same redirect URI, writes the pair to the token store, and
    confirms with `GET /api/v2/users/me`. Nothing secret is printed. Raises
    `ZendeskConfigError` / `ZendeskAuthError` / `ZendeskApiError` with what to fix.

    Returns:
        The signed-in user (`/users/me`'s `user` object).
    """
    account = normalize_subdomain(subdomain)
    root = resolve_base_url(account, base_url)
    redirect_uri = redirect_uri or DEFAULT_REDIRECT_URI
    if not client_id or not client_secret or is_placeholder(client_id) or is_placeholder(client_secret):
        raise ZendeskConfigError(
            "authorize needs the OAuth client: set client_id and client_secret under"
            " [sources.zendesk.credentials] in .dlt/secrets.toml (or the env vars"
            " SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID and __CLIENT_SECRET)."
        )
    endpoint = token_url(root)
    store = TokenStore(token_store_path)
    stored = store.load()
    if stored is not None and (
        (stored.token_url and stored.token_url != endpoint) or (stored.client_id and stored.client_id != client_id)
    ):
        raise ZendeskConfigError(
            f"The token store at {store.path} holds tokens of another account or OAuth client"
            f" ({stored.token_url}, client {stored.client_id}); overwriting it would lock that one"
            " out. Set token_store_path to a separate file for this account."
        )
    store.check_writable()  # before a single-use code is spent

    state = secrets.token_urlsafe(16)
    url = build_authorization_url(root, client_id, redirect_uri, scope, state)
    print_fn(f"Authorize this connector to read {root}:")
    print_fn("  1. Open this address in a browser and sign in as a Zendesk admin:")
    print_fn(f"     {url}")
    print_fn(f"  2. Click Allow. Zendesk then sends the browser to {redirect_uri}?code=...")
    print_fn("     (that page may fail to load; only its address matters). The code is valid for 2 minutes.")
    try:
        answer = input_fn("  3. Paste that whole address from the address bar (or just the code) here: ")
    except EOFError:  # stdin closed: nothing was entered
        answer = ""
    code = parse_code_answer(answer, state)

    tokens = exchange_code(root, client_id, client_secret, code, redirect_uri, scope, expires_in, timeout)
    with store.locked():
        store.save(tokens)

    try:
        me = requests.get(
            f"{root}/api/v2/users/me.json",
            headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json",
                     "User-Agent": USER_AGENT},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ZendeskApiError(
            f"The tokens are stored in {store.path}, but {root} could not be reached to check them"
            f" ({type(exc).__name__}). Run `python zendesk_pipeline.py check` when the network is back."
        ) from None
    if me.status_code != 200:
        raise ZendeskAuthError(
            f"Zendesk issued tokens (stored in {store.path}) but answered {me.status_code} to"
            " GET /api/v2/users/me with them. Check that the OAuth client's scope includes 'read'"
            f" and run `{AUTHORIZE_COMMAND}` again."
        )
    try:
        user = me.json().get("user") or {}
    except (ValueError, AttributeError):
        user = {}
    print_fn(
        f"Authorized as {user.get('name')} <{user.get('email')}>, role {user.get('role')}, on {root}."
    )
    if user.get("role") != "admin":
        print_fn("  Warning: the incremental exports need an admin; sign in as an admin for a full sync.")
    print_fn(f"Tokens stored in {store.path} (mode 0600); keep this file out of the destination and of version control.")
    print_fn(_expiry_note(tokens))
    print_fn(
        "Runs use it with client_id and client_secret under [sources.zendesk.credentials]"
        + ("" if str(token_store_path) == DEFAULT_TOKEN_STORE_PATH else f' and token_store_path = "{token_store_path}"')
        + "; no refresh_token setting is needed."
    )
    return dict(user)


def _expiry_note(tokens: TokenSet) -> str:
    """When the new access token expires, as Zendesk's answer said (it may not say)."""
    if tokens.expires_at is None:
        return (
            "Zendesk's answer did not say when the access token expires; runs refresh it"
            " when Zendesk rejects it."
        )
    minutes = max(1, round((tokens.expires_at - (tokens.issued_at or time.time())) / 60))
    return (
        f"The access token expires in {minutes} minutes ({_format_epoch(tokens.expires_at)});"
        " runs refresh it before then, by themselves."
    )


def authorize_from_config(
    base_url: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., Any] = print,
    redirect_uri: Optional[str] = None,
) -> Dict[str, Any]:
    """`authorize` with the settings the source reads (`sources.zendesk...`, secrets or env).

    Reads `subdomain`, `base_url` and, under `credentials`, `client_id`, `client_secret`,
    `token_store_path`, `redirect_uri` and `access_token_expires_in`. Placeholders
    (`<configure me>`, `...`) count as unset.
    """
    import dlt

    def setting(key: str) -> Any:
        for lookup in (dlt.secrets.get, dlt.config.get):
            try:
                value = lookup(key)
            except Exception:  # a provider that cannot answer is the same as unset
                value = None
            if value is not None and not is_placeholder(value):
                return value
        return None

    subdomain = setting("sources.zendesk.subdomain")
    if not subdomain:
        normalize_subdomain(None)  # raises the "subdomain is not set" message
    expires_in = setting("sources.zendesk.credentials.access_token_expires_in")
    return authorize_interactive(
        str(subdomain),
        setting("sources.zendesk.credentials.client_id"),
        setting("sources.zendesk.credentials.client_secret"),
        setting("sources.zendesk.credentials.token_store_path") or DEFAULT_TOKEN_STORE_PATH,
        base_url=base_url or setting("sources.zendesk.base_url"),
        input_fn=input_fn,
        print_fn=print_fn,
        redirect_uri=redirect_uri or setting("sources.zendesk.credentials.redirect_uri"),
        expires_in=int(expires_in) if expires_in else None,
    )
