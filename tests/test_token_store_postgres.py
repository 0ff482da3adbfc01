"""The Postgres token store on the real Postgres: round trips, no password shown, a lock that
holds across processes, and two workers on different "hosts" sharing one rotating refresh token
without an `invalid_grant`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from typing import Any, Dict, Iterator, List

import psycopg2
import pytest

from tests.helpers import FAST_LIMITS
from zendesk_fake import FakeZendesk
from zendesk.errors import ZendeskConfigError
from zendesk.auth.authorize import authorize_interactive
from zendesk.auth.stores import open_token_store
from zendesk.auth.token_store import TokenSet
from zendesk.auth.token_store_pg import PostgresTokenStore

pytestmark = pytest.mark.postgres

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _drop(table: str) -> None:
    connection = psycopg2.connect(DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    connection.close()


@pytest.fixture
def table() -> Iterator[str]:
    name = f"zd_tokens_{uuid.uuid4().hex[:10]}"
    yield name
    _drop(name)


def test_round_trip_per_key_and_no_table_yet(table: str) -> None:
    acme = open_token_store(f"{DSN}?table={table}&key=acme&sslmode=disable")
    globex = open_token_store(f"{DSN}?table={table}&key=globex")
    assert isinstance(acme, PostgresTokenStore)
    assert acme.load() is None  # the table does not exist yet
    acme.check_writable()
    pair = TokenSet("access-1f2", "refresh-9ab", 1234.0, 1000.0, "http://127.0.0.1/oauth/tokens", "client")
    acme.save(pair)
    assert acme.load() == pair
    assert globex.load() is None
    newer = TokenSet("access-3c4", "refresh-5de", 5678.0)
    with acme.locked(), acme.locked():  # re-entrant
        acme.save(newer)
        assert acme.load() == newer


def test_password_in_the_location_is_never_shown(table: str) -> None:
    store = open_token_store(f"postgresql://postgres:pw-7c1e9f@127.0.0.1:5432/test?table={table}")
    store.save(TokenSet("a", "r"))
    assert store.load() == TokenSet("a", "r")
    shown = f"{store.path} {store!r} {store!s}"
    assert "pw-7c1e9f" not in shown and "127.0.0.1:5432/test" in shown
    unreachable = open_token_store("postgresql://postgres:pw-7c1e9f@127.0.0.1:1/test")
    with pytest.raises(OSError) as failed:
        unreachable.load()
    assert "pw-7c1e9f" not in str(failed.value)
    with pytest.raises(ZendeskConfigError) as refused:
        unreachable.check_writable()
    assert "pw-7c1e9f" not in str(refused.value) and "does not refresh until it can save" in str(refused.value)


def test_entry_it_did_not_write_is_refused(table: str) -> None:
    store = open_token_store(f"{DSN}?table={table}&key=acme")
    store.save(TokenSet("a", "r"))
    connection = psycopg2.connect(DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET tokens = %s", ('{"something": "else"}',))
    connection.close()
    with pytest.raises(ZendeskConfigError, match="not one this connector wrote"):
        store.load()


def test_bad_table_name_is_refused() -> None:
    with pytest.raises(ZendeskConfigError, match="not a plain table name"):
        open_token_store(f"{DSN}?table=tokens;drop table x")


def test_lock_holds_against_another_process(table: str) -> None:
    """A holder in another process saves a new pair before it lets go: a load under the lock
    waits for it, so it can only ever see the new pair."""
    location = f"{DSN}?table={table}&key=acme"
    open_token_store(location).save(TokenSet("old-access", "old-refresh"))
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys\n"
            "from zendesk.auth.stores import open_token_store\n"
            "from zendesk.auth.token_store import TokenSet\n"
            f"store = open_token_store({location!r})\n"
            "with store.locked():\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.readline()\n"
            "    store.save(TokenSet('new-access', 'new-refresh'))\n"
        )],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        seen: List[Any] = []
        waiter_store = open_token_store(location)

        def load_under_lock() -> None:
            with waiter_store.locked():
                seen.append(waiter_store.load())

        waiter = threading.Thread(target=load_under_lock)
        waiter.start()
        waiter.join(timeout=1.0)
        assert not seen, "the lock let a second process in while the first held it"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        waiter.join(timeout=30)
        assert seen == [TokenSet("new-access", "new-refresh")]
    finally:
        holder.wait(timeout=30)


def _worker(fake: FakeZendesk, tmp_path: Any, host: str, store: str, refresh_token: str) -> "subprocess.CompletedProcess[str]":
    """One worker machine: its own working dir and DuckDB file, the account's secrets."""
    entry = {"name": "acme", "subdomain": fake.subdomain, "base_url": fake.base_url, **FAST_LIMITS}
    env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    env.update(
        RUNTIME__DLTHUB_TELEMETRY="false",
        DLT_DATA_DIR=str(tmp_path / host),
        SOURCES__ZENDESK__ACCOUNTS=json.dumps([entry]),
        SOURCES__ZENDESK_ACME__CREDENTIALS__CLIENT_ID=fake.oauth_client_id,
        SOURCES__ZENDESK_ACME__CREDENTIALS__CLIENT_SECRET=fake.oauth_client_secret,
        SOURCES__ZENDESK_ACME__CREDENTIALS__REFRESH_TOKEN=refresh_token,
        SOURCES__ZENDESK_ACME__CREDENTIALS__TOKEN_STORE_PATH=store,
    )
    os.makedirs(tmp_path / host, exist_ok=True)
    code = "from zendesk.accounts import sync_account; sync_account('acme', tables=['groups'])"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=str(tmp_path / host), env={**env, "PYTHONPATH": REPO_ROOT},
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("shared", [True, False], ids=["postgres-store-shared", "file-store-per-host"])
def test_second_worker_refreshes_after_the_first_rotated(tmp_path: Any, table: str, shared: bool) -> None:
    """Both workers start from the refresh token in their secrets; the first rotates it. With
    the shared Postgres store the second takes the rotated pair from the table; with a file
    per host (the control) it spends the dead seed and Zendesk answers invalid_grant."""
    with FakeZendesk(seed=5, tickets=30, subdomain="acme") as fake:
        fake.configure(oauth_access_token_ttl=1)
        seed_file = str(tmp_path / "seed_tokens.json")
        authorize_interactive(
            fake.subdomain, fake.oauth_client_id, fake.oauth_client_secret, seed_file,
            base_url=fake.base_url, input_fn=lambda _prompt: fake.issue_authorization_code(),
            print_fn=lambda *_args: None,
        )
        seed = json.load(open(seed_file))["refresh_token"]
        stores = [f"{DSN}?table={table}"] * 2 if shared else [str(tmp_path / f"host{i}" / "tokens.json") for i in (1, 2)]

        first = _worker(fake, tmp_path, "host1", stores[0], seed)
        assert first.returncode == 0, first.stderr[-3000:]
        second = _worker(fake, tmp_path, "host2", stores[1], seed)

        if shared:
            assert second.returncode == 0, second.stderr[-3000:]
            assert fake.used_refresh_tokens == set(), "a rotated-out refresh token was presented again"
            # Each worker refreshed at least once: its access token (one second) had expired.
            assert fake.oauth_refresh_count() >= 2
            stored = open_token_store(f"{DSN}?table={table}&key=acme").load()
            assert stored is not None and stored.refresh_token not in (None, seed)
            for output in (first.stdout + first.stderr, second.stdout + second.stderr):
                assert seed not in output and stored.refresh_token not in output
        else:
            assert second.returncode != 0
            assert seed in fake.used_refresh_tokens
