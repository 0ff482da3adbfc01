"""Many accounts in one deployment: three fake accounts whose ids overlap, each synced into its
own dataset by `zendesk.accounts`, must each equal their own account's truth; settings and
credentials never leak from one account to another."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import dlt
import pytest

from zendesk_fake import FakeZendesk
from tests.helpers.accounts import (
    SHARED_DATASET,
    account_views,
    accounts_env,
    dataset_reader,
    running_accounts,
    shared_dataset_reader,
)
from tests.helpers.truth import assert_matches_truth
from zendesk.accounts import (
    ZendeskAccount,
    ZendeskAccountsFailed,
    load_accounts,
    resolve_account_credentials,
    sync_account,
    sync_accounts,
)
from zendesk.auth.credentials import ZendeskOAuthRefreshCredentials, ZendeskOAuthTokenCredentials
from zendesk.errors import ZendeskConfigError


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, FakeZendesk]]:
    with running_accounts() as running:
        for key, value in accounts_env(running).items():
            monkeypatch.setenv(key, value)
        yield running


def test_three_accounts_with_overlapping_ids_each_equal_their_own_truth(
    fakes: Dict[str, FakeZendesk], tmp_path: Any
) -> None:
    ticket_ids = [{t["id"] for t in fake.ground_truth()["tickets"]} for fake in fakes.values()]
    assert ticket_ids[0] & ticket_ids[1] & ticket_ids[2], "the accounts' ids must overlap to prove anything"
    destination = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
    pipelines_dir = str(tmp_path / "pipelines")

    results = sync_accounts(destination=destination, pipelines_dir=pipelines_dir)
    assert list(results) == list(fakes)
    for name, fake in fakes.items():
        assert_matches_truth(dataset_reader(name, destination, pipelines_dir), fake.ground_truth())

    for seed, fake in enumerate(fakes.values(), start=40):
        assert fake.mutate(seed=seed, fraction=0.1)["tickets_updated"]
        fake.reset_counts()
    sync_accounts(destination=destination, pipelines_dir=pipelines_dir)
    for name, fake in fakes.items():
        assert fake.total_requests() > 0, f"{name} was not read"
        assert_matches_truth(dataset_reader(name, destination, pipelines_dir), fake.ground_truth())


def test_each_account_has_its_own_pipeline_state_and_runs_alone(fakes: Dict[str, FakeZendesk], tmp_path: Any) -> None:
    destination = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
    pipelines_dir = str(tmp_path / "pipelines")
    for fake in fakes.values():
        fake.reset_counts()
    sync_account("globex", tables=["groups"], destination=destination, pipelines_dir=pipelines_dir)
    assert fakes["globex"].total_requests() > 0
    assert fakes["acme"].total_requests() == fakes["initech"].total_requests() == 0
    pipeline = dlt.attach("zendesk_globex", pipelines_dir=pipelines_dir)
    assert pipeline.dataset_name == "zendesk_globex_data"
    assert "zendesk" in pipeline.state["sources"]


def test_one_failing_account_does_not_stop_the_others(fakes: Dict[str, FakeZendesk], tmp_path: Any) -> None:
    fakes["globex"].stop()
    destination = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
    pipelines_dir = str(tmp_path / "pipelines")
    with pytest.raises(ZendeskAccountsFailed, match="1 of 3 account.*globex") as failed:
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=["groups"])
    assert set(failed.value.results) == {"acme", "initech"}
    assert set(failed.value.failures) == {"globex"}
    for name in ("acme", "initech"):
        assert_matches_truth(dataset_reader(name, destination, pipelines_dir), fakes[name].ground_truth(), ["groups"])


def test_credentials_come_from_the_accounts_own_section_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN", "token-of-the-default-account")
    monkeypatch.setenv("SOURCES__ZENDESK_ACME__CREDENTIALS__OAUTH_TOKEN", "token-of-acme")
    acme, globex = load_accounts([{"name": "acme", "subdomain": "acme"}, {"name": "globex", "subdomain": "globex"}])
    credentials = resolve_account_credentials(acme)
    assert isinstance(credentials, ZendeskOAuthTokenCredentials)
    assert credentials.oauth_token == "token-of-acme"
    with pytest.raises(ZendeskConfigError, match=r"sources\.zendesk_globex\.credentials.*SOURCES__ZENDESK_GLOBEX__CREDENTIALS__"):
        resolve_account_credentials(globex)


def test_credentials_section_can_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENTS__ACME_EU__CREDENTIALS__OAUTH_TOKEN", "token-from-named-section")
    entry = {"name": "acme", "subdomain": "acme", "credentials_section": "clients.acme_eu.credentials"}
    (account,) = load_accounts([entry])
    credentials = resolve_account_credentials(account)
    assert isinstance(credentials, ZendeskOAuthTokenCredentials)
    assert credentials.oauth_token == "token-from-named-section"


@pytest.mark.parametrize(
    "configured, expected",
    [
        pytest.param(None, "~/.dlt/zendesk_tokens_acme.json", id="default-file-per-account"),
        pytest.param("/srv/tokens/acme.json", "/srv/tokens/acme.json", id="chosen-file-kept"),
        pytest.param(
            "postgresql://loader@db/ops?table=zd_tokens",
            "postgresql://loader@db/ops?table=zd_tokens&key=acme",
            id="postgres-keyed-by-account",
        ),
    ],
)
def test_each_account_gets_its_own_token_store(
    monkeypatch: pytest.MonkeyPatch, configured: Any, expected: str
) -> None:
    monkeypatch.setenv("SOURCES__ZENDESK_ACME__CREDENTIALS__CLIENT_ID", "client")
    monkeypatch.setenv("SOURCES__ZENDESK_ACME__CREDENTIALS__CLIENT_SECRET", "secret")
    monkeypatch.setenv("SOURCES__ZENDESK_ACME__CREDENTIALS__REFRESH_TOKEN", "refresh")
    if configured:
        monkeypatch.setenv("SOURCES__ZENDESK_ACME__CREDENTIALS__TOKEN_STORE_PATH", configured)
    (account,) = load_accounts([{"name": "acme", "subdomain": "acme"}])
    credentials = resolve_account_credentials(account)
    assert isinstance(credentials, ZendeskOAuthRefreshCredentials)
    assert credentials.token_store_path == expected


def test_accounts_list_is_read_from_env_json_without_secrets(fakes: Dict[str, FakeZendesk]) -> None:
    accounts = load_accounts()
    assert [a.name for a in accounts] == list(fakes)
    assert accounts[0] == ZendeskAccount(
        name="acme",
        subdomain="acme",
        dataset="zendesk_acme_data",
        credentials_section="sources.zendesk_acme.credentials",
        settings=accounts[0].settings,
    )
    assert accounts[0].settings["base_url"] == fakes["acme"].base_url
    assert accounts[0].pipeline_name == "zendesk_acme"


@pytest.mark.parametrize(
    "entries, message",
    [
        pytest.param(None, "No Zendesk accounts are listed", id="missing"),
        pytest.param([{"name": "Acme", "subdomain": "acme"}], "must start with a lowercase letter", id="bad-name"),
        pytest.param([{"name": "acme"}], "has no subdomain", id="no-subdomain"),
        pytest.param([{"name": "acme", "subdomain": "acme", "batch_size": 3}], "unknown setting.*batch_size", id="unknown-key"),
        pytest.param(
            [{"name": "acme", "subdomain": "a"}, {"name": "acme", "subdomain": "b"}], "listed twice.*acme", id="duplicate"
        ),
        pytest.param("[{not json", "not valid JSON", id="bad-json"),
        pytest.param(
            [{"name": "acme", "subdomain": "a", "credentials_section": "clients.acme"}],
            "must name a section ending in '.credentials'",
            id="credentials-section-shape",
        ),
    ],
)
def test_bad_accounts_lists_are_refused_with_what_to_fix(entries: Any, message: str) -> None:
    with pytest.raises(ZendeskConfigError, match=message):
        load_accounts(entries if entries is not None else [])


def test_authorize_one_account_then_sync_it_with_its_own_token_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Two accounts on one OAuth client: each sign-in lands in the account's own store, and
    the second never meets (or refuses) the first one's tokens."""
    from zendesk.accounts import authorize_account

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with running_accounts() as running:
        for key, value in accounts_env(running).items():
            if "OAUTH_TOKEN" not in key:
                monkeypatch.setenv(key, value)
        for name in ("acme", "globex"):
            fake = running[name]
            monkeypatch.setenv(f"SOURCES__ZENDESK_{name.upper()}__CREDENTIALS__CLIENT_ID", fake.oauth_client_id)
            monkeypatch.setenv(f"SOURCES__ZENDESK_{name.upper()}__CREDENTIALS__CLIENT_SECRET", fake.oauth_client_secret)
            user = authorize_account(
                name, input_fn=lambda _prompt, fake=fake: fake.issue_authorization_code(), print_fn=lambda *_a: None
            )
            assert user["role"] == "admin"
            assert (tmp_path / "dlt_data" / f"zendesk_tokens_{name}.json").is_file()  # dlt's data dir
        destination = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
        results = sync_accounts(["acme", "globex"], destination=destination, pipelines_dir=str(tmp_path / "p"), tables=["groups"])
        assert set(results) == {"acme", "globex"}
        for name in ("acme", "globex"):
            reader = dataset_reader(name, destination, str(tmp_path / "p"))
            assert_matches_truth(reader, running[name].ground_truth(), ["groups"])


def test_shared_dataset_holds_all_accounts_side_by_side_each_exact(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    with running_accounts() as fakes:
        for key, value in accounts_env(fakes, dataset=SHARED_DATASET).items():
            monkeypatch.setenv(key, value)
        assert all(account.shared for account in load_accounts())
        path = str(tmp_path / "warehouse.duckdb")
        destination = dlt.destinations.duckdb(path)
        pipelines_dir = str(tmp_path / "pipelines")

        def check() -> None:
            for name, fake in fakes.items():
                assert_matches_truth(shared_dataset_reader(name, path, str(tmp_path / "r")), fake.ground_truth())

        sync_accounts(destination=destination, pipelines_dir=pipelines_dir)
        check()
        for seed, fake in enumerate(fakes.values(), start=90):
            assert fake.mutate(seed=seed, fraction=0.1)["group_memberships_removed"]
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir)
        check()
        schema = dlt.attach("zendesk_acme", pipelines_dir=pipelines_dir).default_schema
        assert [c for c, h in schema.get_table_columns("tickets").items() if h.get("primary_key")] == ["subdomain", "id"]
        sync_account("acme", destination=destination, pipelines_dir=pipelines_dir, full_refresh=True)
        check()


def test_shared_dataset_soft_deletions_retire_only_the_accounts_own_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    with running_accounts() as fakes:
        for key, value in accounts_env(fakes, dataset=SHARED_DATASET, deletions="soft").items():
            monkeypatch.setenv(key, value)
        path = str(tmp_path / "warehouse.duckdb")
        destination = dlt.destinations.duckdb(path)
        pipelines_dir = str(tmp_path / "pipelines")
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=["group_memberships"])
        removed = fakes["acme"].mutate(seed=5, fraction=0.05)["group_memberships_removed"]
        assert removed
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=["group_memberships"])
        import duckdb

        with duckdb.connect(path) as db:
            for name, fake in fakes.items():
                active = db.execute(
                    "select id from zendesk_all.group_memberships where subdomain = ? and _dlt_valid_to is null",
                    [name],
                ).fetchall()
                assert sorted(r[0] for r in active) == sorted(m["id"] for m in fake.ground_truth()["group_memberships"])
            retired = db.execute(
                "select subdomain, id from zendesk_all.group_memberships where _dlt_valid_to is not null"
            ).fetchall()
        assert sorted(retired) == sorted(("acme", i) for i in removed)


def test_shared_dataset_list_that_empties_removes_only_that_accounts_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # A whole-list table (replaced, or fingerprinted) whose list empties in one account:
    # that account's rows go, and every other account's rows stay.
    from zendesk.tables.registry import TABLES, ChangeDetection
    from zendesk_fake.tables import ENDPOINT_TABLES, stored_rows

    whole = [spec.name for spec in TABLES if spec.default and spec.change_detection in (ChangeDetection.FINGERPRINT, ChangeDetection.REPLACE)]
    with running_accounts() as fakes:
        for key, value in accounts_env(fakes, dataset=SHARED_DATASET).items():
            monkeypatch.setenv(key, value)
        path = str(tmp_path / "warehouse.duckdb")
        destination = dlt.destinations.duckdb(path)
        pipelines_dir = str(tmp_path / "pipelines")
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=whole)
        acme = fakes["acme"]
        for table in ENDPOINT_TABLES:
            rows = stored_rows(acme.account, table)
            if table.name in whole and rows is not None:
                rows.clear()
        acme.refresh()
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=whole)
        for name in ("globex", "initech"):
            reader = account_views(destination, SHARED_DATASET, name, str(tmp_path / "r"), whole)
            assert_matches_truth(reader, fakes[name].ground_truth(), whole)
        import duckdb

        with duckdb.connect(path) as db:
            left = {
                table: db.execute(f"select count(*) from {SHARED_DATASET}.{table} where subdomain = 'acme'").fetchone()[0]
                for table in whole
            }
        assert left == {table: 0 for table in whole}


def test_the_script_syncs_every_account_with_account_all(fakes: Dict[str, FakeZendesk], tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    import duckdb

    repo = __file__.rsplit("/tests/", 1)[0]
    done = subprocess.run(
        [sys.executable, f"{repo}/zendesk_pipeline.py", "--account", "all", "--tables", "groups,users"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": repo}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert max(len(line) for line in done.stdout.splitlines()) <= 100, done.stdout
    for name, fake in fakes.items():
        assert f"{name}: 1 batch(es)" in done.stdout
        with duckdb.connect(str(tmp_path / f"zendesk_{name}.duckdb"), read_only=True) as db:
            for table in ("groups", "users"):
                held = db.execute(f"select count(*) from zendesk_{name}_data.{table}").fetchone()[0]
                assert held == len(fake.ground_truth()[table]), (name, table)


# --- datasets shared by accounts: decided on the resolved target, one DuckDB file, migrations --


def _accounts(fakes: Dict[str, FakeZendesk], **per_account: Dict[str, Any]) -> Dict[str, str]:
    """accounts_env for the named fakes only, each entry updated with its own settings."""
    import json

    chosen = {name: fakes[name] for name in per_account}
    env = accounts_env(chosen)
    entries = json.loads(env["SOURCES__ZENDESK__ACCOUNTS"])
    for entry in entries:
        entry.update(per_account[entry["name"]])
    env["SOURCES__ZENDESK__ACCOUNTS"] = json.dumps(entries)
    return env


def _set_env(monkeypatch: pytest.MonkeyPatch, env: Dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_sharing_is_decided_on_the_destination_given_for_the_run() -> None:
    entries = [
        {"name": "acme", "subdomain": "acme", "dataset": "all"},
        {"name": "globex", "subdomain": "globex", "dataset": "all", "destination": "postgres"},
    ]
    assert not any(a.shared for a in load_accounts(entries))
    assert all(a.shared for a in load_accounts(entries, destination="postgres"))
    assert all(a.shared for a in load_accounts(entries, destination=dlt.destinations.duckdb("x.duckdb")))


@pytest.fixture
def pg_prefix() -> Iterator[str]:
    import uuid

    from tests.helpers import POSTGRES_URL, require_postgres
    from tests.helpers.accounts import drop_postgres_schemas

    require_postgres()
    prefix = f"zd_acc_{uuid.uuid4().hex[:8]}"
    yield prefix
    drop_postgres_schemas(POSTGRES_URL, prefix)


def test_script_destination_makes_accounts_share_a_postgres_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, pg_prefix: str
) -> None:
    """acme (no destination) and globex (postgres) in one dataset, `--destination postgres`:
    both stamped and keyed (subdomain, id), each account's tickets all there."""
    import os
    import subprocess
    import sys

    from tests.helpers import POSTGRES_URL

    dataset = f"{pg_prefix}_all"
    with running_accounts() as fakes:
        env = _accounts(fakes, acme={"dataset": dataset}, globex={"dataset": dataset, "destination": "postgres"})
        env["DESTINATION__POSTGRES__CREDENTIALS"] = POSTGRES_URL
        repo = __file__.rsplit("/tests/", 1)[0]
        done = subprocess.run(
            [sys.executable, f"{repo}/zendesk_pipeline.py", "--account", "all", "--destination", "postgres",
             "--tables", "tickets"],
            cwd=tmp_path, env={**os.environ, **env, "PYTHONPATH": repo}, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        destination = dlt.destinations.postgres(POSTGRES_URL)
        for name in ("acme", "globex"):
            reader = account_views(destination, dataset, name, str(tmp_path / "r"), ["tickets"])
            assert_matches_truth(reader, fakes[name].ground_truth(), ["tickets"])


def test_accounts_sharing_a_dataset_on_default_duckdb_share_one_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import duckdb

    monkeypatch.setenv("DLT_LOCAL_DIR", str(tmp_path))
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS", raising=False)
    with running_accounts() as fakes:
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": SHARED_DATASET}, globex={"dataset": SHARED_DATASET}))
        sync_accounts(pipelines_dir=str(tmp_path / "pipelines"), tables=["groups"])
        assert sorted(p.name for p in tmp_path.glob("*.duckdb")) == [f"{SHARED_DATASET}_shared.duckdb"]
        with duckdb.connect(str(tmp_path / f"{SHARED_DATASET}_shared.duckdb"), read_only=True) as db:
            for name in ("acme", "globex"):
                held = db.execute(f"select id from {SHARED_DATASET}.groups where subdomain = ?", [name]).fetchall()
                assert sorted(r[0] for r in held) == sorted(g["id"] for g in fakes[name].ground_truth()["groups"])


def test_an_account_added_to_a_single_account_postgres_dataset_shares_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, pg_prefix: str
) -> None:
    """acme alone in its dataset (keys on id, no subdomain column), then globex listed in it
    too: the next runs adopt acme's rows as acme's and both accounts are exact."""
    from tests.helpers import POSTGRES_URL

    dataset = f"{pg_prefix}_one"
    tables = ["groups", "users"]
    destination = dlt.destinations.postgres(POSTGRES_URL)
    pipelines_dir = str(tmp_path / "pipelines")
    with running_accounts() as fakes:
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": dataset}))
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=tables)
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": dataset}, globex={"dataset": dataset}))
        sync_accounts(["globex", "acme"], destination=destination, pipelines_dir=pipelines_dir, tables=tables)
        for name in ("acme", "globex"):
            reader = account_views(destination, dataset, name, str(tmp_path / "r"), tables)
            assert_matches_truth(reader, fakes[name].ground_truth(), tables)


def test_an_account_moved_into_a_shared_dataset_loads_in_full_and_refreshes_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    path = str(tmp_path / "warehouse.duckdb")
    destination = dlt.destinations.duckdb(path)
    pipelines_dir = str(tmp_path / "pipelines")
    tables = ["groups", "users", "organizations"]
    with running_accounts() as fakes:
        _set_env(monkeypatch, _accounts(fakes, acme={}, globex={"dataset": SHARED_DATASET}, initech={"dataset": SHARED_DATASET}))
        sync_accounts(destination=destination, pipelines_dir=pipelines_dir, tables=tables)
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": SHARED_DATASET}, globex={"dataset": SHARED_DATASET}, initech={"dataset": SHARED_DATASET}))
        sync_account("acme", destination=destination, pipelines_dir=pipelines_dir, tables=tables)
        for name, fake in fakes.items():
            reader = account_views(destination, SHARED_DATASET, name, str(tmp_path / "r"), tables)
            assert_matches_truth(reader, fake.ground_truth(), tables)

        fakes["acme"].mutate(seed=3, fraction=0.2)
        fakes["acme"].reset_counts()
        sync_account("acme", destination=destination, pipelines_dir=pipelines_dir, tables=tables, full_refresh=True)
        assert fakes["acme"].total_requests() > 0
        for name, fake in fakes.items():
            reader = account_views(destination, SHARED_DATASET, name, str(tmp_path / "r"), tables)
            assert_matches_truth(reader, fake.ground_truth(), tables)


def test_a_rejected_token_names_the_accounts_own_section(fakes: Dict[str, FakeZendesk], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SOURCES__ZENDESK_GLOBEX__CREDENTIALS__OAUTH_TOKEN", "not-globex-token-5e1")
    destination = dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(ZendeskAccountsFailed) as failed:
        sync_accounts(["acme", "globex"], destination=destination, pipelines_dir=str(tmp_path / "p"), tables=["groups"])
    message = str(failed.value.failures["globex"])
    assert "401" in message and "SOURCES__ZENDESK_GLOBEX__CREDENTIALS__" in message, message
    assert "[sources.zendesk_globex.credentials]" in message
    assert "SOURCES__ZENDESK__CREDENTIALS__" not in message and "not-globex-token" not in message
    assert set(failed.value.results) == {"acme"}


def test_an_account_added_to_a_single_account_duckdb_dataset_shares_one_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """On default DuckDB, acme alone writes zendesk_acme.duckdb; once globex lists the same
    dataset, both load into the shared file, acme in full (its cursors were the old file's)."""
    monkeypatch.setenv("DLT_LOCAL_DIR", str(tmp_path))
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS", raising=False)
    pipelines_dir = str(tmp_path / "pipelines")
    tables = ["groups", "users"]
    with running_accounts() as fakes:
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": SHARED_DATASET}))
        sync_accounts(pipelines_dir=pipelines_dir, tables=tables)
        assert (tmp_path / "zendesk_acme.duckdb").is_file()
        _set_env(monkeypatch, _accounts(fakes, acme={"dataset": SHARED_DATASET}, globex={"dataset": SHARED_DATASET}))
        sync_accounts(["globex", "acme"], pipelines_dir=pipelines_dir, tables=tables)
        destination = dlt.destinations.duckdb(str(tmp_path / f"{SHARED_DATASET}_shared.duckdb"))
        for name in ("acme", "globex"):
            reader = account_views(destination, SHARED_DATASET, name, str(tmp_path / "r"), tables)
            assert_matches_truth(reader, fakes[name].ground_truth(), tables)


def test_an_account_whose_dataset_is_named_like_its_duckdb_file_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zendesk.accounts import account_destination

    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS", raising=False)
    clash, fine = load_accounts(
        [{"name": "globex", "subdomain": "globex", "dataset": "zendesk_globex"}, {"name": "acme", "subdomain": "acme"}]
    )
    with pytest.raises(ZendeskConfigError, match=r"dataset zendesk_globex is also the name of its DuckDB file.*zendesk_globex_data"):
        account_destination(clash)
    assert account_destination(fine) == "duckdb"
    assert account_destination(clash, "postgres") == "postgres"
