"""Credential specs, resolved by dlt from secrets.toml, env vars or code.

`ZendeskCredentials` is a Union; dlt tries its members in order and takes the first
that resolves fully, so the order is most specific first:

1. `ZendeskOAuthRefreshCredentials`: client_id + client_secret + refresh_token (or a
   token store that already holds one, e.g. written by `python zendesk_pipeline.py
   authorize`). Access tokens are refreshed before they expire and on a 401; rotated
   refresh tokens are written to the token store before use.
2. `ZendeskOAuthClientCredentials`: client_id + client_secret only, for OAuth clients
   allowed the client credentials grant.
3. `ZendeskOAuthTokenCredentials`: a fixed OAuth access token (expires unless it was
   issued without an expiry; not refreshed).
4. `ZendeskApiTokenCredentials`: email + API token, still accepted with a warning:
   Zendesk stops all API tokens on 2027-04-30.

Every spec's `auth(base_url)` returns the requests `AuthBase` for the account at
`base_url`. No spec shows a secret in its repr() or str().
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Union

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import AnyType, TSecretStrValue
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth, HttpBasicAuth
from requests.auth import AuthBase

from ..config import is_placeholder
from ..errors import ZendeskConfigError
from .tokens import DEFAULT_SCOPE, ClientCredentialsOAuth, RefreshingOAuth, token_url
from .stores import open_token_store, shown_location
from .token_store import DEFAULT_TOKEN_STORE_PATH

logger = logging.getLogger(__name__)

API_TOKEN_END_DATE = "2027-04-30"

__all__ = [
    "API_TOKEN_END_DATE",
    "DEFAULT_TOKEN_STORE_PATH",
    "ZendeskCredentials",
    "ZendeskOAuthRefreshCredentials",
    "ZendeskOAuthClientCredentials",
    "ZendeskOAuthTokenCredentials",
    "ZendeskApiTokenCredentials",
]


def _masked(value: Optional[str]) -> Optional[str]:
    return "***" if value else None


def _check_expires_in(value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if seconds <= 0:
        raise ZendeskConfigError(
            f"access_token_expires_in must be a number of seconds (Zendesk allows 300 to 172800), not {value!r}."
        )
    return seconds


def _naming_settings(auth: AuthBase, settings: str) -> AuthBase:
    """Tag `auth` with the settings a 401 asks the user to fix (the client reads
    `settings_hint` when Zendesk rejects the credentials)."""
    auth.settings_hint = settings  # type: ignore[attr-defined]
    return auth


@configspec
class _ZendeskCredentialsBase(CredentialsConfiguration):
    """A placeholder (`<configure me>` as `dlt init` writes it, or `...`) counts as unset, so
    dlt moves on to the credential kind the user did fill in and a placeholder is never
    sent to Zendesk."""

    @classmethod
    def is_field_resolved(cls, value: Any, hint: AnyType) -> bool:
        if is_placeholder(value):
            return False
        return super().is_field_resolved(value, hint)


@configspec
class ZendeskOAuthRefreshCredentials(_ZendeskCredentialsBase):
    """OAuth client + rotating refresh token; access tokens are refreshed as needed.

    Attributes:
        client_id: The OAuth client's unique identifier.
        client_secret: The OAuth client's secret.
        refresh_token: A refresh token to start from. Needed only while the token store
            holds none: after `python zendesk_pipeline.py authorize` or the first rotation,
            the store's token is newer and wins (the configured one has been spent by that
            rotation), so it may be removed from the secrets.
        token_store_path: The file the rotated tokens are written to (atomically, mode
            0600), or a `postgresql://` location. Keep it outside the destination and out
            of version control; one store per account and OAuth client. Default:
            `zendesk_tokens.json` in dlt's data dir (`DLT_DATA_DIR`, else `~/.dlt` for most
            users), beside the rate state; a store left at `~/.dlt` by an older release is
            still read until the first rotation moves it. A secret in dlt's sense (a Postgres location
            may carry a password): set it in secrets.toml or an env var, never config.toml;
            dlt's trace shows it as `<secret>`.
        access_token_expires_in: Lifetime to ask for new access tokens, in seconds
            (Zendesk allows 300 to 172800); unset: Zendesk's default, 1800, asked for
            explicitly so that the expiry of every token is known.
    """

    # Empty, not None: `dlt init` writes a `<configure me>` placeholder for every field of
    # the Union's first member that has no default, and dlt warns about each placeholder
    # on every run, whichever kind the user fills in. An empty string is no default to
    # `is_field_resolved` (a placeholder), so the fields stay required for dlt's choice of
    # kind, and a `dlt init` project starts with no credential placeholder at all.
    client_id: str = ""
    client_secret: TSecretStrValue = ""
    refresh_token: TSecretStrValue = ""
    token_store_path: TSecretStrValue = DEFAULT_TOKEN_STORE_PATH
    access_token_expires_in: Optional[int] = None

    def on_partial(self) -> None:
        """Resolve without `refresh_token` when the token store already holds one.

        dlt calls this when required fields are missing. `refresh_token` is required for
        union resolution (so client id + secret alone pick the client credentials grant),
        except when the store has a refresh token for this client.
        """
        if is_placeholder(self.refresh_token):
            self.refresh_token = None
        if not (self.client_id and self.client_secret) or self.refresh_token:
            return
        if is_placeholder(self.client_id) or is_placeholder(self.client_secret):
            return
        store = open_token_store(self.token_store_path or DEFAULT_TOKEN_STORE_PATH)
        # An unreadable store raises here, naming it: falling through to the client
        # credentials grant would switch grants without a word.
        stored = store.load()
        if stored is None:
            return
        if not stored.refresh_token and stored.client_id in (None, str(self.client_id)):
            raise ZendeskConfigError(
                f"The OAuth token store {store.path} holds no refresh token. Run `python"
                " zendesk_pipeline.py authorize` to sign in again, or set refresh_token."
            )
        if stored.client_id in (None, str(self.client_id)):  # another client's store is not ours
            self.resolve()

    def auth(self, base_url: str) -> AuthBase:
        return RefreshingOAuth(
            open_token_store(self.token_store_path or DEFAULT_TOKEN_STORE_PATH),
            self.client_id,
            self.client_secret,
            token_url(base_url),
            refresh_token=self.refresh_token or None,
            expires_in=_check_expires_in(self.access_token_expires_in),
        )

    def __repr__(self) -> str:
        return (
            f"ZendeskOAuthRefreshCredentials(client_id={self.client_id!r},"
            f" client_secret={_masked(self.client_secret)}, refresh_token={_masked(self.refresh_token)},"
            f" token_store_path={shown_location(self.token_store_path)!r})"
        )

    def __str__(self) -> str:
        return self.__repr__()


@configspec
class ZendeskOAuthClientCredentials(_ZendeskCredentialsBase):
    """OAuth client credentials grant: client id + secret, where the client allows it.

    Attributes:
        client_id: The OAuth client's unique identifier.
        client_secret: The OAuth client's secret.
        scope: Scope to ask for; `read` is what every table needs.
        access_token_expires_in: Lifetime to ask for, in seconds; unset: the client's default.
    """

    client_id: str = None
    client_secret: TSecretStrValue = None
    scope: str = DEFAULT_SCOPE
    access_token_expires_in: Optional[int] = None

    def auth(self, base_url: str) -> AuthBase:
        return ClientCredentialsOAuth(
            self.client_id,
            self.client_secret,
            token_url(base_url),
            scope=self.scope or DEFAULT_SCOPE,
            expires_in=_check_expires_in(self.access_token_expires_in),
        )

    def __repr__(self) -> str:
        return (
            f"ZendeskOAuthClientCredentials(client_id={self.client_id!r},"
            f" client_secret={_masked(self.client_secret)})"
        )

    def __str__(self) -> str:
        return self.__repr__()


@configspec
class ZendeskOAuthTokenCredentials(_ZendeskCredentialsBase):
    """An OAuth access token, sent as `Authorization: Bearer ...` (never refreshed)."""

    oauth_token: TSecretStrValue = None

    def auth(self, base_url: str) -> AuthBase:
        return _naming_settings(
            BearerTokenAuth(token=self.oauth_token),
            "oauth_token (__OAUTH_TOKEN), an OAuth access token that is valid, not expired and has the read scope",
        )

    def __repr__(self) -> str:
        return f"ZendeskOAuthTokenCredentials(oauth_token={_masked(self.oauth_token)})"

    def __str__(self) -> str:
        return self.__repr__()


@configspec
class ZendeskApiTokenCredentials(_ZendeskCredentialsBase):
    """Email + API token, sent as HTTP basic auth with the user `{email}/token`."""

    email: str = None
    api_token: TSecretStrValue = None

    def auth(self, base_url: str) -> AuthBase:
        logger.warning(
            "Authenticating with an API token: Zendesk stops accepting API tokens on %s."
            " Switch to OAuth (see the README, section Credentials).",
            API_TOKEN_END_DATE,
        )
        auth = HttpBasicAuth(username=f"{self.email}/token", password=self.api_token)
        return _naming_settings(
            auth, "email and api_token (__EMAIL, __API_TOKEN), an admin's email and an active API token"
        )

    def __repr__(self) -> str:
        return f"ZendeskApiTokenCredentials(email={self.email!r}, api_token={_masked(self.api_token)})"

    def __str__(self) -> str:
        return self.__repr__()


ZendeskCredentials = Union[
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthTokenCredentials,
    ZendeskApiTokenCredentials,
]
