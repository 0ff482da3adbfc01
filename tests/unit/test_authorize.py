"""authorize.py: the authorization URL, the code exchange, and the `authorize` command."""

from __future__ import annotations

import logging
import os
import stat
from typing import Any, List

import pytest
import requests
import requests_mock

from tests.unit.token_server import (
    API,
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URL,
    Clock,
    RotatingTokenServer,
    assert_no_secrets,
)
from zendesk.auth.authorize import (
    authorize_from_config,
    authorize_interactive,
    build_authorization_url,
    exchange_code,
    parse_code_answer,
)
from zendesk.errors import ZendeskAuthError, ZendeskConfigError
from zendesk.auth.token_store import TokenSet, TokenStore
from zendesk.auth.tokens import RefreshingOAuth


def test_build_authorization_url() -> None:
    url = build_authorization_url(BASE_URL, "my client", "https://app.example.com/cb?x=1", "read", "st8")
    assert url == (
        "https://acme.zendesk.com/oauth/authorizations/new?response_type=code&client_id=my%20client"
        "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&scope=read&state=st8"
    )
    assert build_authorization_url(BASE_URL + "/", "c") == (
        "https://acme.zendesk.com/oauth/authorizations/new?response_type=code&client_id=c&scope=read"
    )




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
