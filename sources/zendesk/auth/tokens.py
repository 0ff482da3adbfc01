"""Runtime OAuth: bearer auths that renew their token, and the token endpoint.

Zendesk's access tokens expire (30 minutes by default, 48 hours at most) and every
refresh answers with a new refresh token while invalidating the old one. So:

- `RefreshingOAuth` refreshes before a token expires and, when a request still gets a
  401, refreshes once and re-sends that request once. The new pair is written to the
  `TokenStore` *before* the new access token is used, and a refresh token that Zendesk
  answered for is never sent again.
- `ClientCredentialsOAuth` gets tokens with the client credentials grant (client id and
  secret only), where the OAuth client allows it; nothing to store.

Token requests go to `{base_url}/oauth/tokens` on a session of their own with a timeout,
not through the run's paced, retrying session: a retrying session could send a refresh
token twice. No secret (client secret, access or refresh token, authorization code) is
ever logged, printed or put into an exception message. The `authorize` command that
gets the first pair lives in `authorize.py`.

**When a token request is retried.** A refresh token is spent as soon as Zendesk
processes the request, so a request is retried only when it provably never reached
Zendesk and trying again may help: the connection timed out before it opened (urllib3's
connect retries, see `token_session`). An unknown host or a refused connection fails at
once (a wrong subdomain, not a passing fault), the store untouched. After anything else
(a read timeout, a dropped connection, any HTTP answer, 5xx included) the token may be
spent, and re-sending it would at best be rejected and at worst be seen as a replayed
token; the run stops instead, with the store untouched. The next run tries the stored
token again: if Zendesk had not processed the request it works, otherwise Zendesk
answers `invalid_grant` and the message says to run `authorize`. The only window that
can lose tokens is between Zendesk's answer and the rename of the new store file, i.e.
the process being killed at that instant.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional, Set
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProxyError
from urllib3.util import Retry

from ..api.client import USER_AGENT, never_connected
from ..errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .token_store import TokenSet, TokenStore

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/tokens"
DEFAULT_SCOPE = "read"
#: Refresh when the access token has less than this left (or half its lifetime, if shorter).
DEFAULT_REFRESH_MARGIN_SECONDS = 120.0
#: Access token lifetime asked for when none is configured: Zendesk's default TTL, sent
#: explicitly so that every token's expiry is known (see `token_lifetime`).
DEFAULT_ACCESS_TOKEN_EXPIRES_IN = 1800
TOKEN_REQUEST_TIMEOUT = 30.0
#: Attempts to open a connection to the token endpoint when it timed out (see "When a
#: token request is retried"); an unknown host or a refused connection is not retried.
CONNECT_ATTEMPTS = 3
AUTHORIZE_COMMAND = "python zendesk_pipeline.py authorize"


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


def format_epoch(epoch: Optional[float]) -> str:
    """An expiry for messages: a UTC time, or "never" when Zendesk gave none."""
    if epoch is None:
        return "never (per Zendesk)"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- the token endpoint -------------------------------------------------------------------


class _ConnectTimeoutRetry(Retry):
    """urllib3's connect retries, narrowed to connection attempts that timed out.

    urllib3 counts a refused connection and an unknown host as connect errors too
    (`NewConnectionError` subclasses `ConnectTimeoutError`); they mean a wrong subdomain
    or base_url, not a passing fault, so they end the request at once. So does a proxy
    that failed, since whether it forwarded the request is unknown."""

    def increment(  # type: ignore[override]
        self,
        method: Optional[str] = None,
        url: Optional[str] = None,
        response: Any = None,
        error: Optional[Exception] = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        if isinstance(error, (NewConnectionError, ProxyError)):
            raise MaxRetryError(_pool, url or "", error) from error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        logger.warning(
            "Could not connect to the Zendesk token endpoint %s (%s); trying again.",
            url, type(error).__name__,
        )
        return retry


def token_session(endpoint: str) -> requests.Session:
    """A session for the token endpoint that retries only connections that never opened.

    `read=0` with POST (not an idempotent method) re-raises any error after the request
    was sent at once; `status=0` and no Retry-After handling leave every answer to
    `parse_grant`.
    """
    retry = _ConnectTimeoutRetry(
        total=None,
        connect=CONNECT_ATTEMPTS - 1,
        read=0,
        redirect=0,
        status=0,
        other=0,
        backoff_factor=1.0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount(endpoint, HTTPAdapter(max_retries=retry))
    return session


def post_token_request(http: requests.Session, url: str, body: Dict[str, Any], timeout: float) -> requests.Response:
    """POST one grant to the token endpoint; an error says whether the token may be spent."""
    try:
        return http.post(
            url,
            json=body,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        if isinstance(exc, requests.exceptions.ConnectTimeout) or never_connected(exc):
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


#: Request fields whose values must never come back in a message.
_SECRET_FIELDS = ("client_secret", "refresh_token", "code", "code_verifier", "access_token", "password")


def _sent_secrets(request: Optional[requests.PreparedRequest]) -> Set[str]:
    """The secret values a token request carried (its JSON or form body, Basic auth)."""
    found: Set[str] = set()
    if request is None:
        return found
    body = request.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        fields = json.loads(text)
    except ValueError:
        fields = dict(parse_qsl(text, keep_blank_values=True))
    if isinstance(fields, dict):
        found.update(str(fields[key]) for key in _SECRET_FIELDS if fields.get(key))
    scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            found.add(base64.b64decode(encoded.strip()).decode("utf-8").partition(":")[2])
    return {value for value in found if len(value) >= 4}


def _error_fields(response: requests.Response) -> Dict[str, str]:
    """`error` and `error_description` of an OAuth error body; nothing else is echoed, and
    any secret the request sent is masked: a misbehaving endpoint may echo the refresh
    token or the client secret it was given."""
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    sent = _sent_secrets(response.request)
    fields = {}
    for key in ("error", "error_description"):
        value = body.get(key)
        if isinstance(value, str) and value:
            for secret in sorted(sent, key=len, reverse=True):
                value = value.replace(secret, "***")
            fields[key] = value[:300]
    return fields


def parse_grant(
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
        self._http = token_session(token_endpoint)
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
    ) -> None:
        super().__init__(
            "OAuth refresh", client_id, client_secret, token_endpoint, expires_in, refresh_margin, timeout, clock
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
                format_epoch(new.expires_at),
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
        response = post_token_request(self._http, self.token_endpoint, body, self._timeout)
        # Zendesk has answered: from here on this token counts as spent, whatever the answer.
        with _SPENT_LOCK:
            _SPENT_REFRESH_TOKENS.add(fingerprint)
        tokens = parse_grant(
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
        response = post_token_request(self._http, self.token_endpoint, body, self._timeout)
        self._tokens = parse_grant(
            response, "client_credentials", self.token_endpoint, self._clock,
            requested_expires_in=body.get("expires_in"),
        )
        self.fetch_count += 1
        logger.info(
            "Got a Zendesk OAuth access token with the client credentials grant; it expires %s.",
            format_epoch(self._tokens.expires_at),
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
