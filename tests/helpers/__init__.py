"""Helpers the end-to-end tests share: source arguments for a fake account, a sync as
zendesk_pipeline.py runs it, SQL over a pipeline's destination, PostgreSQL's presence.

Tests import these from here and fixtures come from conftest.py, so no test module
imports another."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import dlt
import pytest

from zendesk import select_tables, zendesk_support
from zendesk.run import run_until_drained
from zendesk_fake import FakeZendesk

#: Rate limits high enough that pacing never slows a test (pacing has its own tests).
FAST_LIMITS = {"max_requests_per_minute": 100_000, "export_requests_per_minute": 100_000}

# Trust auth ignores the password, but dlt requires one to be set.
POSTGRES_URL = "postgresql://postgres:unused@127.0.0.1:5432/test"


def source_args(fake: FakeZendesk, **overrides: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {
        "subdomain": fake.subdomain,
        "base_url": fake.base_url,
        "credentials": {"oauth_token": fake.oauth_token},
        **FAST_LIMITS,
    }
    args.update(overrides)
    return args


def sync(
    pipeline: dlt.Pipeline,
    fake: FakeZendesk,
    tables: Optional[Sequence[str]] = None,
    refresh: Optional[str] = None,
    **overrides: Any,
) -> Any:
    """Run the source to completion, as zendesk_pipeline.py does."""
    audits_mode = overrides.get("audits_mode", "events")
    selected = select_tables(tables, audits_mode)
    args = source_args(fake, **overrides)
    return run_until_drained(
        pipeline,
        lambda batch: zendesk_support(**args).with_resources(*batch),
        selected,
        audits_mode=audits_mode,
        refresh=refresh,
    )


def query(pipeline: dlt.Pipeline, sql: str) -> List[tuple]:
    """Run SQL where `{t:name}` is replaced by the qualified table name."""
    with pipeline.sql_client() as client:
        text = re.sub(r"\{t:(\w+)\}", lambda m: client.make_qualified_table_name(m.group(1)), sql)
        return [tuple(row) for row in client.execute_sql(text)]


#: The destinations the end-to-end tests run on; the postgres one carries the `postgres`
#: mark (conftest.py: skipped without a server here, a failure in CI).
DESTINATIONS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def destination_for(kind: str, tmp_path: Any, name: str) -> Any:
    """The destination of kind "duckdb" (a file in `tmp_path`) or "postgres"."""
    if kind == "postgres":
        return dlt.destinations.postgres(POSTGRES_URL)
    return dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb"))


#: The exit code of `lock_held_elsewhere`'s probe when the lock is taken (a crash is not).
HELD = 3


def lock_held_elsewhere(path: str) -> bool:
    """Whether another process would find the exclusive lock on `path` taken (probed from
    a child process, as another run would try it)."""
    probe = (
        "import fcntl, os, sys\n"
        f"try:\n    fd = os.open({path!r}, os.O_RDWR)\nexcept FileNotFoundError:\n    sys.exit(0)\n"
        f"try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit({HELD})\n"
    )
    return subprocess.run([sys.executable, "-c", probe]).returncode == HELD


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


#: Set by .ci/run: a service the tests need (PostgreSQL) being down fails them instead of
#: skipping them, so a CI run cannot pass without having tested on it.
SERVICES_REQUIRED = "ZENDESK_TEST_SERVICES_REQUIRED"


def require_postgres() -> None:
    """Skip the calling test when no PostgreSQL answers on 127.0.0.1:5432, or fail it
    with the reason where the services are required."""
    if postgres_available():
        return
    reason = "no PostgreSQL server answers on 127.0.0.1:5432 (trust auth, user postgres, database test)"
    if os.environ.get(SERVICES_REQUIRED):
        pytest.fail(f"{reason}; {SERVICES_REQUIRED} is set, so this is a failure: start PostgreSQL", pytrace=False)
    pytest.skip(reason)


def column_types(pipeline: dlt.Pipeline) -> Dict[str, Dict[str, str]]:
    """Table -> column -> DuckDB type, as the destination holds them."""
    with pipeline.sql_client() as client:
        rows: List[Tuple[str, str, str]] = client.execute_sql(
            "select table_name, column_name, data_type from information_schema.columns where table_schema = %s",
            pipeline.dataset_name,
        )
    tables: Dict[str, Dict[str, str]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, {})[column] = data_type
    return tables


