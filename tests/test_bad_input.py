"""Bad settings and bad answers: each fails with an error that says what to fix, and nothing
reaches the destination (no data tables in the DuckDB file, no loaded or pending package).

Settings errors must also fail before any request is sent; a 401 must stop the run after
the first answers; an answer that is not JSON must stop the run before anything of it,
or of any other table of that run, is written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Sequence

import duckdb
import pytest
import requests
from dlt.pipeline.exceptions import PipelineStepFailed

import zendesk
from tests.helpers import sync
from tests.helpers.cli import cli_env, run_cli
from tests.helpers.truth import assert_matches_truth
from zendesk.errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError, ZendeskSourceError


# --------------------------------------------------------------------------- helpers


def duckdb_tables(path: Path) -> List[str]:
    """Every table in a DuckDB file (none if the file was never created)."""
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as db:
        return [f"{s}.{t}" for s, t in db.sql("select table_schema, table_name from information_schema.tables").fetchall()]


def loaded_package_dirs(pipelines_dir: Path) -> List[Path]:
    """Load packages dlt moved to `load/loaded` (i.e. loaded into the destination), any pipeline."""
    return [p for p in pipelines_dir.glob("*/load/loaded/*") if p.is_dir()]


def assert_nothing_written(pipeline: Any, db_path: Path) -> None:
    tables = duckdb_tables(db_path)
    assert tables == [], f"tables were created in the destination: {tables}"
    assert pipeline.list_completed_load_packages() == []
    assert not pipeline.has_pending_data, "a package is waiting to be loaded by the next run"
    assert pipeline.list_extracted_load_packages() == [] and pipeline.list_normalized_load_packages() == []


def error_chain(exc: BaseException) -> List[BaseException]:
    chain = [exc]
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 20:
        chain.append(nxt)
    return chain


def zendesk_error(exc: BaseException) -> ZendeskSourceError:
    """The source's own error inside dlt's step-failure wrappers."""
    found = [e for e in error_chain(exc) if isinstance(e, ZendeskSourceError)]
    assert found, f"no Zendesk error inside {type(exc).__name__}: {exc}"
    return found[0]


@pytest.fixture
def sent_requests(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """URLs of every HTTP request that reached the transport (any host)."""
    sent: List[str] = []
    original = requests.adapters.HTTPAdapter.send

    def record(self: Any, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", record)
    return sent


def assert_cli_wrote_nothing(cwd: Path) -> None:
    assert duckdb_tables(cwd / "zendesk.duckdb") == []
    assert loaded_package_dirs(cwd / "dlt_data" / "pipelines") == []


# --------------------------------------------------------------------------- settings


def _future_date() -> str:
    return (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%m/%d/%Y")


SETTINGS_CASES = [
    pytest.param({"subdomain": ""}, ["subdomain is not set", "sources.zendesk.subdomain", "SOURCES__ZENDESK__SUBDOMAIN"], id="missing-subdomain"),
    pytest.param({"subdomain": "   "}, ["subdomain is not set", "'acme' for https://acme.zendesk.com"], id="blank-subdomain"),
    pytest.param({"subdomain": "acme corp"}, ["'acme corp' is not a Zendesk subdomain", "account prefix", "'acme'"], id="subdomain-with-space"),
    pytest.param({"subdomain": "acme.example.com"}, ["'acme.example.com' is not a Zendesk subdomain", "account prefix"], id="subdomain-foreign-host"),
    pytest.param({"base_url": "https://evil.example.com"}, ["points to 'evil.example.com'", "fakeacme.zendesk.com", "remove base_url"], id="base-url-foreign-host"),
    pytest.param({"base_url": "https://fakeacme.zendesk.com.evil.example.com/api"}, ["points to 'fakeacme.zendesk.com.evil.example.com'", "remove base_url"], id="base-url-lookalike-host"),
    pytest.param({"base_url": "https://other.zendesk.com"}, ["points to 'other.zendesk.com'", "fakeacme.zendesk.com"], id="base-url-other-account"),
    pytest.param({"base_url": "http://fakeacme.zendesk.com"}, ["is not HTTPS", "127.0.0.1 or localhost"], id="base-url-plain-http-official-host"),
    pytest.param({"base_url": "http://10.0.0.7:8080"}, ["is not HTTPS", "127.0.0.1 or localhost"], id="base-url-plain-http-lan-host"),
    pytest.param({"start_date": "01/31/2999"}, ["start_date 01/31/2999 is in the future", "past date"], id="start-date-far-future"),
    pytest.param({"start_date": "__in_two_days__"}, ["is in the future", "leave it empty"], id="start-date-in-two-days"),
    pytest.param({"start_date": "31-01-2024"}, ["'31-01-2024' is not a date", "MM/DD/YYYY", "01/31/2024", "ISO 8601"], id="start-date-day-first"),
    pytest.param({"start_date": "yesterday"}, ["'yesterday' is not a date", "MM/DD/YYYY"], id="start-date-word"),
    pytest.param({"export_rate_scope": "per_account"}, ["export_rate_scope must be one of shared, per_endpoint", "'per_account'"], id="export-rate-scope"),
]


@pytest.mark.parametrize("overrides, expected", SETTINGS_CASES)
def test_bad_setting_fails_before_any_request_and_writes_nothing(
    fake: Any, make_pipeline: Any, tmp_path: Path, sent_requests: List[str], overrides: Dict[str, str], expected: Sequence[str]
) -> None:
    if overrides.get("start_date") == "__in_two_days__":
        overrides = {"start_date": _future_date()}
    pipeline = make_pipeline()
    with pytest.raises(ZendeskConfigError) as caught:
        sync(pipeline, fake, **overrides)
    message = str(caught.value)
    for words in expected:
        assert words in message, f"{words!r} not in: {message}"
    assert sent_requests == [], "a bad setting must fail before any request is sent"
    assert fake.total_requests() == 0
    assert_nothing_written(pipeline, tmp_path / "zd.duckdb")


def test_unknown_table_is_refused_naming_it_and_the_choices(fake: Any, make_pipeline: Any, tmp_path: Path) -> None:
    with pytest.raises(ZendeskConfigError) as caught:
        zendesk.select_tables(["tickets", "nope", "Users"])
    message = str(caught.value)
    assert "Unknown table(s): nope, Users." in message
    assert "Choose from: " + ", ".join(zendesk.TABLE_NAMES) in message
    pipeline = make_pipeline()
    with pytest.raises(ZendeskConfigError, match="Unknown table"):
        sync(pipeline, fake, tables=["nope"])
    assert fake.total_requests() == 0
    assert_nothing_written(pipeline, tmp_path / "zd.duckdb")


def test_unknown_table_on_the_command_line(fake: Any, tmp_path: Path) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake), "--tables", "tickets,nope")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Unknown table(s): nope." in done.stderr
    assert "Choose from: tickets, ticket_metrics" in done.stderr
    assert "Traceback" not in done.stderr
    assert fake.total_requests() == 0
    assert_cli_wrote_nothing(cwd)


@pytest.mark.parametrize(
    "subdomain, expected",
    [("acme corp", "'acme corp' is not a Zendesk subdomain"), ("acme.example.com", "'acme.example.com' is not a Zendesk subdomain")],
)
def test_malformed_subdomain_on_the_command_line(fake: Any, tmp_path: Path, subdomain: str, expected: str) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake, SOURCES__ZENDESK__SUBDOMAIN=subdomain))
    assert done.returncode == 1, done.stderr[-2000:]
    assert expected in done.stderr and "account prefix" in done.stderr
    assert "Traceback" not in done.stderr
    assert fake.total_requests() == 0
    assert_cli_wrote_nothing(cwd)


def test_future_start_date_on_the_command_line(fake: Any, tmp_path: Path) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake), "--start-date", _future_date())
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is in the future" in done.stderr
    assert fake.total_requests() == 0
    assert_cli_wrote_nothing(cwd)


def test_missing_settings_on_the_command_line_say_what_to_set(tmp_path: Path) -> None:
    cwd = tmp_path / "empty"
    done = run_cli(cwd, cli_env(cwd))
    assert not (cwd / ".dlt").exists()
    assert done.returncode == 2, done.stdout[-1000:] + done.stderr[-2000:]
    err = done.stderr
    assert "Zendesk settings are missing (subdomain, credentials)" in err
    for words in ("--demo", "[sources.zendesk]", 'subdomain = "acme"', "SOURCES__ZENDESK__SUBDOMAIN",
                  "SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN", "oauth_token", "api_token", "client_id", "authorize"):
        assert words in err, f"{words!r} not in the message: {err}"
    assert "Traceback" not in err
    assert_cli_wrote_nothing(cwd)


def test_missing_subdomain_alone_on_the_command_line(fake: Any, tmp_path: Path) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake, SOURCES__ZENDESK__SUBDOMAIN=None))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Zendesk settings are missing (subdomain)" in done.stderr
    assert "SOURCES__ZENDESK__SUBDOMAIN" in done.stderr and "--demo" in done.stderr
    assert fake.total_requests() == 0
    assert_cli_wrote_nothing(cwd)


# --------------------------------------------------------------------------- bad answers


@pytest.mark.parametrize(
    "endpoint",
    [
        "/api/v2/incremental/tickets/cursor",  # cursor export (tickets + ticket_metrics)
        "/api/v2/incremental/ticket_events",  # time export (comments + audits)
        "/api/v2/ticket_fields",  # list that also types the ticket custom columns
    ],
)
def test_answer_that_is_not_json_stops_the_run_and_nothing_of_it_is_written(
    fake: Any, make_pipeline: Any, tmp_path: Path, endpoint: str
) -> None:
    fake.configure(malformed_json_paths=[endpoint])
    pipeline = make_pipeline()
    with pytest.raises(PipelineStepFailed) as caught:
        sync(pipeline, fake)
    error = zendesk_error(caught.value)
    assert isinstance(error, ZendeskApiError)
    message = str(error)
    assert message.startswith(f"{endpoint} answered 200 with a body that is not valid JSON"), message
    assert "nothing from this run was written" in message and "Rerun" in message
    assert fake.status_counts().get(f"malformed {endpoint}", 0) >= 1
    # Nothing at all of that run, not even the tables whose answers were fine.
    assert_nothing_written(pipeline, tmp_path / "zd.duckdb")

    # No cursor moved past data that was never loaded: once the answers are whole again,
    # the next run loads everything.
    fake.configure(malformed_json_paths=[])
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())


@pytest.mark.parametrize(
    "credentials, detail",
    [
        pytest.param({"oauth_token": "not-the-right-token-7f3a"}, "invalid_token", id="oauth-token"),
        pytest.param({"email": "admin@fakeacme.com", "api_token": "not-the-right-api-token-9c1"}, "Couldn't authenticate you", id="api-token"),
    ],
)
def test_rejected_credentials_stop_the_run_at_once(
    fake: Any, make_pipeline: Any, tmp_path: Path, credentials: Dict[str, str], detail: str
) -> None:
    pipeline = make_pipeline()
    with pytest.raises(PipelineStepFailed) as caught:
        sync(pipeline, fake, credentials=credentials)
    error = zendesk_error(caught.value)
    assert isinstance(error, ZendeskAuthError)
    message = str(error)
    assert "Zendesk rejected the credentials (401" in message and detail in message
    assert "Check the credentials" in message and "SOURCES__ZENDESK__CREDENTIALS__" in message
    # Resources extract on dlt's 5 worker threads, so up to 5 first requests can be in
    # flight together; once one 401 came back the client sends nothing more, and none is
    # retried.
    assert fake.total_requests() <= 5, fake.request_counts()
    assert all(key.startswith("401 ") for key in fake.status_counts()), fake.status_counts()
    assert_nothing_written(pipeline, tmp_path / "zd.duckdb")


def test_rejected_token_on_the_command_line(fake: Any, tmp_path: Path) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN="not-the-right-token-7f3a"))
    assert done.returncode == 1, done.stderr[-2000:]
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("The extract step failed: Zendesk rejected the credentials (401"), last_line
    assert "Check the credentials in .dlt/secrets.toml or the SOURCES__ZENDESK__CREDENTIALS__* env vars" in last_line
    assert "Traceback" not in done.stderr
    assert fake.total_requests() <= 5, fake.request_counts()
    assert_cli_wrote_nothing(cwd)


def test_answer_that_is_not_json_on_the_command_line(fake: Any, tmp_path: Path) -> None:
    endpoint = "/api/v2/incremental/tickets/cursor"
    fake.configure(malformed_json_paths=[endpoint])
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake))
    assert done.returncode == 1, done.stderr[-2000:]
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"The extract step failed: {endpoint} answered 200 with a body that is not valid JSON"), last_line
    assert "Traceback" not in done.stderr
    assert_cli_wrote_nothing(cwd)
