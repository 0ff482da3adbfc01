"""Credential specs, resolved by dlt from secrets.toml, env vars or code.

dlt tries the members of `ZendeskCredentials` in order and takes the first that
resolves fully, so an OAuth token wins over an API token when both are configured
(Zendesk retires API tokens on 2027-04-30).
"""

from __future__ import annotations

import logging
from typing import Union

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth, HttpBasicAuth
from requests.auth import AuthBase

logger = logging.getLogger(__name__)

API_TOKEN_END_DATE = "2027-04-30"


@configspec
class ZendeskOAuthTokenCredentials(CredentialsConfiguration):
    """An OAuth access token, sent as `Authorization: Bearer ...`."""

    oauth_token: TSecretStrValue = None

    def auth(self) -> AuthBase:
        return BearerTokenAuth(token=self.oauth_token)

    def __repr__(self) -> str:
        return "ZendeskOAuthTokenCredentials(oauth_token=***)"


@configspec
class ZendeskApiTokenCredentials(CredentialsConfiguration):
    """Email + API token, sent as HTTP basic auth with the user `{email}/token`."""

    email: str = None
    api_token: TSecretStrValue = None

    def auth(self) -> AuthBase:
        logger.warning(
            "Authenticating with an API token: Zendesk stops accepting API tokens on %s."
            " Switch to OAuth (see the README, section Credentials).",
            API_TOKEN_END_DATE,
        )
        return HttpBasicAuth(username=f"{self.email}/token", password=self.api_token)

    def __repr__(self) -> str:
        return f"ZendeskApiTokenCredentials(email={self.email!r}, api_token=***)"


ZendeskCredentials = Union[ZendeskOAuthTokenCredentials, ZendeskApiTokenCredentials]
