"""The user-facing entry points: `python zendesk_pipeline.py --demo`, `check`, and `dlt init`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, Dict

import duckdb
import pytest

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
    assert "rows loaded" in done.stdout
    with duckdb.connect(str(tmp_path / "zendesk_demo.duckdb"), read_only=True) as db:
        tables = {row[0] for row in db.sql(
            "select table_name from information_schema.tables where table_schema = 'zendesk_data'"
        ).fetchall()}
        from zendesk import TABLE_NAMES

        assert set(TABLE_NAMES) <= tables
        assert db.sql("select count(*) from zendesk_data.tickets").fetchall()[0][0] > 0


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
    assert fake.total_requests() <= 16  # one per distinct endpoint plus /users/me


@pytest.mark.skipif(shutil.which("git") is None, reason="dlt init reads the repository with git")
def test_dlt_init_from_this_repo_gives_a_project_that_runs(fake: Any, tmp_path: Any) -> None:
    """`dlt init zendesk duckdb --location <this repo>` copies the source and the script;
    the new project then loads from the fake Zendesk."""
    project = tmp_path / "project"
    project.mkdir()
    dlt_cli = os.path.join(os.path.dirname(sys.executable), "dlt")
    done = subprocess.run(
        [dlt_cli, "init", "zendesk", "duckdb", "--location", REPO_ROOT, "--non-interactive"],
        cwd=project, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (project / "zendesk" / "__init__.py").is_file()
    assert (project / "zendesk_pipeline.py").is_file()
    assert "sources.zendesk" in (project / ".dlt" / "secrets.toml").read_text()
    # What the user does next: fill in secrets.toml (dlt init wrote placeholders for the
    # OAuth client fields; this account uses an access token instead).
    (project / ".dlt" / "secrets.toml").write_text(
        "[sources.zendesk]\n"
        f'subdomain = "{fake.subdomain}"\n'
        f'base_url = "{fake.base_url}"\n'
        "export_requests_per_minute = 10000\n\n"
        "[sources.zendesk.credentials]\n"
        f'oauth_token = "{fake.oauth_token}"\n'
    )
    env = _env(tmp_path)
    run = subprocess.run(
        [sys.executable, "zendesk_pipeline.py", "--tables", "tickets,groups"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with duckdb.connect(str(project / "zendesk.duckdb"), read_only=True) as db:
        assert db.sql("select count(*) from zendesk_data.tickets").fetchall()[0][0] == len(fake.ground_truth()["tickets"])
