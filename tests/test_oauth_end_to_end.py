"""OAuth against the fake Zendesk's token server: authorize, then a long run whose access
token expires between batches, with rotation that never reuses a refresh token."""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Iterator, List

import pytest

from zendesk_fake import FakeZendesk
from tests.helpers import query, sync
from zendesk.auth.authorize import authorize_interactive


@pytest.fixture
def account() -> Iterator[FakeZendesk]:
    """Large enough that the metric events export spans three pages (three batches)."""
    with FakeZendesk(seed=4, tickets=500) as server:
        yield server


def test_authorize_then_sync_refreshes_expiring_tokens_and_never_reuses_one(
    account: FakeZendesk, make_pipeline: Any, tmp_path: Any, capsys: Any, caplog: Any
) -> None:
    fake = account
    fake.configure(oauth_access_token_ttl=1)
    store = str(tmp_path / "tokens.json")
    printed: List[str] = []
    user = authorize_interactive(
        fake.subdomain,
        fake.oauth_client_id,
        fake.oauth_client_secret,
        store,
        base_url=fake.base_url,
        input_fn=lambda _prompt: fake.issue_authorization_code(),
        print_fn=printed.append,
    )
    assert user["role"] == "admin"
    assert any("/oauth/authorizations/new" in line and fake.oauth_client_id in line for line in printed)
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    first_refresh_token = json.load(open(store))["refresh_token"]

    credentials = {
        "client_id": fake.oauth_client_id,
        "client_secret": fake.oauth_client_secret,
        "token_store_path": store,
    }
    pipeline = make_pipeline()
    # One export page per batch, paced at one request per 1.5 s: every page after the first
    # finds the one-second access token expired, however fast the machine, so the run must
    # refresh (and rotate) it at least twice on the way.
    sync(
        pipeline,
        fake,
        credentials=credentials,
        batch_pages=1,
        tables=["ticket_metric_events", "groups"],
        export_requests_per_minute=1,
        rate_limit_window_seconds=1.5,
    )
    assert -(-len(fake.ground_truth()["ticket_metric_events"]) // 1000) >= 3

    assert fake.oauth_refresh_count() >= 2
    assert fake.used_refresh_tokens == set(), "a rotated-out refresh token was presented again"
    assert json.load(open(store))["refresh_token"] != first_refresh_token
    events = query(pipeline, "select count(*) from {t:ticket_metric_events}")[0][0]
    assert events == len(fake.ground_truth()["ticket_metric_events"])

    secrets = [fake.oauth_client_secret, first_refresh_token, json.load(open(store))["refresh_token"]]
    output = capsys.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in output.out and secret not in output.err and secret not in logged
        assert secret not in "\n".join(printed)
