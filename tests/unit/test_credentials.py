"""credentials.py: union resolution order, auth(base_url), no secrets in repr/str/logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Type

import pytest
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth, HttpBasicAuth

from zendesk.auth.credentials import (
    API_TOKEN_END_DATE,
    ZendeskApiTokenCredentials,
    ZendeskCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthTokenCredentials,
)
from zendesk.errors import ZendeskConfigError
from zendesk.auth.tokens import ClientCredentialsOAuth, RefreshingOAuth
from zendesk.auth.token_store import TokenSet, TokenStore

BASE_URL = "https://acme.zendesk.com"
SECRETS = {"client-secret-3e9", "refresh-tok-71c", "oauth-tok-d02", "api-tok-5aa"}


@configspec
class SourceArgs(BaseConfiguration):
    """Stands in for the source's generated spec: one `credentials: ZendeskCredentials` field."""

    credentials: ZendeskCredentials = None


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default token store (~/.dlt/zendesk_tokens.json) lives in the test's tmp dir."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in ("CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "OAUTH_TOKEN", "EMAIL", "API_TOKEN", "TOKEN_STORE_PATH"):
        monkeypatch.delenv(f"SOURCES__ZENDESK__CREDENTIALS__{key}", raising=False)
    return tmp_path / "home"


def resolve(value: Dict[str, Any]) -> Any:
    return resolve_configuration(SourceArgs(), explicit_value={"credentials": value}).credentials


@pytest.mark.parametrize(
    "value, spec",
    [
        pytest.param({"client_id": "c1", "client_secret": "client-secret-3e9", "refresh_token": "refresh-tok-71c"},
                     ZendeskOAuthRefreshCredentials, id="refresh"),
        pytest.param({"client_id": "c1", "client_secret": "client-secret-3e9"},
                     ZendeskOAuthClientCredentials, id="client-credentials"),
        pytest.param({"oauth_token": "oauth-tok-d02"}, ZendeskOAuthTokenCredentials, id="oauth-token"),
        pytest.param({"email": "a@acme.com", "api_token": "api-tok-5aa"}, ZendeskApiTokenCredentials, id="api-token"),
    ],
)
def test_dict_resolves_to_the_most_specific_spec(value: Dict[str, Any], spec: Type[Any]) -> None:
    credentials = resolve(value)
    assert type(credentials) is spec
    for key, expected in value.items():
        assert getattr(credentials, key) == expected


def test_refresh_wins_when_an_access_token_is_configured_too() -> None:
    credentials = resolve({"client_id": "c1", "client_secret": "s", "refresh_token": "r", "oauth_token": "t"})
    assert isinstance(credentials, ZendeskOAuthRefreshCredentials)


def test_oauth_token_wins_over_api_token() -> None:
    credentials = resolve({"oauth_token": "t", "email": "a@acme.com", "api_token": "x"})
    assert isinstance(credentials, ZendeskOAuthTokenCredentials)


def test_client_id_and_secret_with_a_stored_refresh_token_resolve_to_refresh(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    TokenStore(path).save(TokenSet("a", "refresh-tok-71c", None, None, BASE_URL + "/oauth/tokens", "c1"))
    credentials = resolve({"client_id": "c1", "client_secret": "s", "token_store_path": str(path)})
    assert isinstance(credentials, ZendeskOAuthRefreshCredentials)
    assert credentials.refresh_token is None  # taken from the store when the auth runs


def test_default_store_after_authorize_makes_client_id_and_secret_resolve_to_refresh(_isolated_home: Path) -> None:
    TokenStore("~/.dlt/zendesk_tokens.json").save(TokenSet("a", "r", None, None, None, "c1"))
    assert (_isolated_home.parent / "dlt_data" / "zendesk_tokens.json").exists()  # dlt's data dir
    assert isinstance(resolve({"client_id": "c1", "client_secret": "s"}), ZendeskOAuthRefreshCredentials)


def test_store_of_another_client_does_not_turn_client_credentials_into_refresh(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    TokenStore(path).save(TokenSet("a", "r", None, None, None, "other-client"))
    TokenStore("~/.dlt/zendesk_tokens.json").save(TokenSet("a", "r", None, None, None, "other-client"))
    assert isinstance(resolve({"client_id": "c1", "client_secret": "s"}), ZendeskOAuthClientCredentials)


def test_nothing_configured_is_a_missing_field_error() -> None:
    with pytest.raises(ConfigFieldMissingException):
        resolve_configuration(SourceArgs(), sections=("sources", "zendesk"))


def test_env_vars_resolve_in_the_source_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID", "c1")
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_SECRET", "client-secret-3e9")
    creds = resolve_configuration(SourceArgs(), sections=("sources", "zendesk")).credentials
    assert isinstance(creds, ZendeskOAuthClientCredentials)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__REFRESH_TOKEN", "refresh-tok-71c")
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__TOKEN_STORE_PATH", "/var/lib/zd/tokens.json")
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__ACCESS_TOKEN_EXPIRES_IN", "172800")
    creds = resolve_configuration(SourceArgs(), sections=("sources", "zendesk")).credentials
    assert isinstance(creds, ZendeskOAuthRefreshCredentials)
    assert creds.token_store_path == "/var/lib/zd/tokens.json"
    assert creds.access_token_expires_in == 172800


# --- auth(base_url) ------------------------------------------------------------------------


def test_refresh_auth_targets_the_accounts_token_endpoint(_isolated_home: Path) -> None:
    creds = resolve({"client_id": "c1", "client_secret": "client-secret-3e9", "refresh_token": "refresh-tok-71c"})
    auth = creds.auth(BASE_URL)
    assert isinstance(auth, RefreshingOAuth)
    assert auth.token_endpoint == "https://acme.zendesk.com/oauth/tokens"
    assert auth.store.path == _isolated_home.parent / "dlt_data" / "zendesk_tokens.json"  # dlt's data dir
    assert auth.client_id == "c1"


def test_client_credentials_auth() -> None:
    auth = resolve({"client_id": "c1", "client_secret": "client-secret-3e9"}).auth("http://127.0.0.1:9000/")
    assert isinstance(auth, ClientCredentialsOAuth)
    assert auth.token_endpoint == "http://127.0.0.1:9000/oauth/tokens"
    assert auth.scope == "read"


def test_token_and_api_token_auth(caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(ZendeskOAuthTokenCredentials(oauth_token="oauth-tok-d02").auth(BASE_URL), BearerTokenAuth)
    caplog.set_level(logging.WARNING)
    auth = ZendeskApiTokenCredentials(email="a@acme.com", api_token="api-tok-5aa").auth(BASE_URL)
    assert isinstance(auth, HttpBasicAuth)
    assert API_TOKEN_END_DATE == "2027-04-30"
    assert "2027-04-30" in caplog.text and "OAuth" in caplog.text
    assert "api-tok-5aa" not in caplog.text


def test_bad_expires_in_is_a_config_error() -> None:
    creds = ZendeskOAuthRefreshCredentials(client_id="c", client_secret="s", refresh_token="r")
    creds.access_token_expires_in = -5
    with pytest.raises(ZendeskConfigError, match="access_token_expires_in"):
        creds.auth(BASE_URL)


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "creds",
    [
        pytest.param(lambda: ZendeskOAuthRefreshCredentials(
            client_id="c1", client_secret="client-secret-3e9", refresh_token="refresh-tok-71c"), id="refresh"),
        pytest.param(lambda: ZendeskOAuthClientCredentials(client_id="c1", client_secret="client-secret-3e9"),
                     id="client-credentials"),
        pytest.param(lambda: ZendeskOAuthTokenCredentials(oauth_token="oauth-tok-d02"), id="oauth-token"),
        pytest.param(lambda: ZendeskApiTokenCredentials(email="a@acme.com", api_token="api-tok-5aa"), id="api-token"),
    ],
)
def test_no_secret_in_repr_or_str(creds: Any) -> None:
    spec = creds()
    text = repr(spec) + str(spec) + f"{spec}" + repr([spec]) + repr(spec.auth(BASE_URL))
    assert not [s for s in SECRETS if s in text]
    assert "***" in text


def test_no_secret_in_resolved_union_repr() -> None:
    holder = resolve_configuration(
        SourceArgs(),
        explicit_value={"credentials": {"client_id": "c1", "client_secret": "client-secret-3e9",
                                        "refresh_token": "refresh-tok-71c"}},
    )
    assert not [s for s in SECRETS if s in repr(holder.credentials) + str(holder.credentials)]


@pytest.mark.parametrize(
    "content, said",
    [
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"   \n", "is empty", id="blank"),
        pytest.param(b"\x00garbage{", "cannot be parsed", id="garbage"),
        pytest.param(b'{"tokens": "x"}', "cannot be parsed", id="another-format"),
        pytest.param(b'{"version": 1, "access_token": "a", "refresh_token": null, "client_id": "c1"}',
                     "holds no refresh token", id="no-refresh-token"),
    ],
)
def test_an_untrustworthy_token_store_stops_instead_of_switching_grants(
    tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with pytest.raises(Exception) as raised:
        resolve({"client_id": "c1", "client_secret": "client-secret-3e9", "token_store_path": str(path)})
    error = raised.value
    while not isinstance(error, ZendeskConfigError) and (error.__cause__ or error.__context__):
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    assert isinstance(error, ZendeskConfigError), raised.value
    message = str(error)
    assert str(path) in message and said in message and "\n" not in message
    assert "client-secret-3e9" not in message


def test_token_store_path_is_a_secret_and_its_password_is_never_shown() -> None:
    from dlt.common.configuration import is_secret_hint

    assert is_secret_hint(ZendeskOAuthRefreshCredentials.get_resolvable_fields()["token_store_path"])
    location = "postgresql://loader:pg-pass-93f@db:5432/ops?password=pg-pass-93f&table=t"
    creds = ZendeskOAuthRefreshCredentials()
    creds.client_id, creds.token_store_path = "c1", location
    assert "pg-pass-93f" not in repr(creds) and "pg-pass-93f" not in str(creds)
