"""The user-facing entry points: `python zendesk_pipeline.py --demo` and `check` (the rest of
a new user's path is in test_first_hour.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any, Dict

import duckdb

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(tmp_path: Any, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    env.update(RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(tmp_path / "dlt_data"), **extra)
    return env


def test_demo_loads_every_table_into_duckdb(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "zendesk_pipeline.py"), "--demo"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from zendesk import select_tables

    loaded = select_tables(None)  # the tables a run loads when it names none
    with duckdb.connect(str(tmp_path / "zendesk_demo.duckdb"), read_only=True) as db:
        tables = {row[0] for row in db.sql(
            "select table_name from information_schema.tables where table_schema = 'zendesk_data'"
        ).fetchall()}
        assert set(loaded) <= tables
        for table in loaded:  # the summary gives what each table holds
            held = db.sql(f"select count(*) from zendesk_data.{table}").fetchall()[0][0]
            assert held > 0
            assert re.search(rf"^  {table}\s+{held:,} rows", done.stdout, re.M), (table, done.stdout)
    assert "the demo reloads everything on each run" in done.stdout.splitlines()[-1]
    rate = tmp_path / "dlt_data" / "zendesk" / "rate"
    assert not rate.exists() or not any(rate.iterdir()), "the demo left rate files in dlt's data folder"


def test_check_reports_the_user_and_which_tables_are_readable(fake: Any, tmp_path: Any) -> None:
    fake.configure(plan_gated={"sla_policies": 403})
    env = _env(
        tmp_path,
        SOURCES__ZENDESK__SUBDOMAIN=fake.subdomain,
        SOURCES__ZENDESK__BASE_URL=fake.base_url,
        SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=fake.oauth_token,
    )
    fake.reset_counts()
    done = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "zendesk_pipeline.py"), "check"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Connected as" in done.stdout
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "not available (403" in lines["sla_policies"]
    assert lines["tickets"].split()[1] == "ok"
    from zendesk.tables.registry import TABLES

    endpoints = {spec.endpoint.path for spec in TABLES}
    assert fake.total_requests() <= len(endpoints) + 1  # one per distinct endpoint plus /users/me


# --- command-line errors: exit codes and one-line messages -------------------------------

import pytest  # noqa: E402

from tests.helpers.cli import cli_env, run_cli  # noqa: E402


@pytest.mark.parametrize(
    "args, env, expected",
    [
        pytest.param(["--tables", "tickets,foo"], {}, "Unknown table(s): foo.", id="unknown-table"),
        pytest.param(["--start-date", "31/01/2024"], {}, "--start-date: start_date '31/01/2024' is not a date", id="bad-date"),
        pytest.param(["--pipeline-name", "acme/prod"], {}, "--pipeline-name 'acme/prod' cannot name", id="bad-pipeline-name"),
        pytest.param(["--pipeline-name", "acme", "--dataset", "acme"], {}, "choose another --dataset (for example acme_data)", id="catalog-clash"),
        pytest.param(
            ["--destination", "postgres", "--tables", "groups"], {"DESTINATION__POSTGRES__CREDENTIALS": None},
            "The postgres destination has no credentials: add [destination.postgres.credentials]", id="no-pg-credentials",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_request(
    fake: Any, tmp_path: Any, args: Any, env: Dict[str, Any], expected: str
) -> None:
    cwd = tmp_path / "run"
    fake.reset_counts()
    done = run_cli(cwd, cli_env(cwd, fake, **env), *args)
    assert done.returncode == 2, done.stderr[-2000:]
    assert expected in done.stderr.strip().splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr and "LookupTrace" not in done.stderr
    assert "does not apply" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # at most the base_url note before it
    assert fake.total_requests() == 0


def test_check_refuses_a_subdomain_the_base_url_does_not_answer_for(fake: Any, tmp_path: Any) -> None:
    cwd = tmp_path / "run"
    done = run_cli(cwd, cli_env(cwd, fake, SOURCES__ZENDESK__SUBDOMAIN="wrongsub"), "check")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "not for subdomain 'wrongsub'" in done.stderr and "Traceback" not in done.stderr
    assert run_cli(cwd, cli_env(cwd, fake), "check").returncode == 0


def test_a_run_with_base_url_says_the_subdomain_names_no_host_and_where_it_loaded(fake: Any, tmp_path: Any) -> None:
    cwd = tmp_path / "run"
    for _ in range(2):  # the second run loads nothing new
        done = run_cli(cwd, cli_env(cwd, fake), "--tables", "groups")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "base_url is set" in done.stderr and "check" in done.stderr
        assert "dataset zendesk_data:" in done.stdout and "None" not in done.stdout, done.stdout


def test_one_line_for_a_deadlock_between_accounts_creating_a_shared_dataset() -> None:
    from zendesk_pipeline import step_failed_message

    message = step_failed_message("load", RuntimeError('deadlock detected\nDETAIL: Process 1 waits for ...'))
    assert "\n" not in message and "rerun it, that is safe" in message


def test_an_account_summary_is_a_few_short_lines() -> None:
    from zendesk import TABLE_NAMES
    from zendesk.run import SyncResult
    from zendesk_pipeline import account_summary

    result = SyncResult(batches=3)
    for table in TABLE_NAMES:
        result.row_counts[table] = 123_456
    lines = account_summary("acme", result).splitlines()
    assert lines[0] == f"acme: 3 batch(es), {123_456 * len(TABLE_NAMES):,} rows loaded:"
    # about three tables a line: a few lines, none longer than 100 characters
    assert 2 <= len(lines) <= 2 + len(TABLE_NAMES) // 3 and max(map(len, lines)) <= 100, lines
    assert all(f"{table} 123,456" in " ".join(lines) for table in TABLE_NAMES)
    assert account_summary("acme", SyncResult(batches=1)) == "acme: 1 batch(es), 0 rows loaded (nothing changed)"
