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
    from zendesk.settings import TABLES

    endpoints = {spec.endpoint.path for spec in TABLES}
    assert fake.total_requests() <= len(endpoints) + 1  # one per distinct endpoint plus /users/me
