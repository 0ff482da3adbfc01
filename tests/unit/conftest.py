"""Unit-test fixtures: no retry delays, and a requests-mock transport *under* our adapter.

`requests_mock.Mocker()` patches `requests.Session.get_adapter`, so it would replace the
client's `PacedAdapter` altogether: no pacing, no host check, no Retry-After fix, no
request counting would be exercised. The `zendesk_http` fixture instead patches
`HTTPAdapter.send` (what `PacedAdapter.send` calls through `super()`) to answer from a
`requests_mock.Adapter`, so every request still goes through `PacedAdapter` first.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest
import requests_mock
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from tests.unit.token_server import Clock, RotatingTokenServer
from zendesk.api.client import ZendeskClient
from zendesk.api.rate_limit import RateBudget
from zendesk.auth.token_store import TokenStore

BASE_URL = "https://acme.zendesk.com"
API = BASE_URL + "/api/v2"


@pytest.fixture(autouse=True)
def _fast_retries(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's `Client.__init__` is wrapped with RuntimeConfiguration injection
    (dlt/sources/helpers/requests/__init__.py), so these env vars reach every
    ZendeskClient built inside a test."""
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "0")
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))


@pytest.fixture
def zendesk_http(monkeypatch: pytest.MonkeyPatch) -> requests_mock.Adapter:
    """A mock transport answering every request that PacedAdapter lets through."""
    mock = requests_mock.Adapter()

    def send(self: HTTPAdapter, request: Any, **kwargs: Any) -> Any:
        return mock.send(request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", send)
    return mock


class _NoAuth(AuthBase):
    def __call__(self, request: Any) -> Any:
        return request


@pytest.fixture
def make_client(zendesk_http: requests_mock.Adapter) -> Callable[..., ZendeskClient]:
    """Build a ZendeskClient on the mocked transport, with pacing that never waits."""

    def factory(
        auth: Optional[AuthBase] = None,
        headers: Optional[dict] = None,
        base_url: str = BASE_URL,
    ) -> ZendeskClient:
        budget = RateBudget(max_requests_per_minute=100_000, export_requests_per_minute=100_000)
        return ZendeskClient(base_url, auth or _NoAuth(), budget, headers=headers)

    return factory


@pytest.fixture
def clock() -> Clock:
    """A clock the OAuth tests move by hand."""
    return Clock()


@pytest.fixture
def server(clock: Clock, zendesk_http: requests_mock.Adapter) -> RotatingTokenServer:
    """Zendesk's token endpoint and API, answering under `PacedAdapter`."""
    fake = RotatingTokenServer(clock)
    fake.install(zendesk_http)
    return fake


@pytest.fixture
def store(tmp_path: Any) -> TokenStore:
    """An empty token store in the test's own folder."""
    return TokenStore(tmp_path / "state" / "zendesk_tokens.json")
