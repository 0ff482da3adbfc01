"""Helpers the end-to-end tests share: source arguments for a fake account, a sync as
zendesk_pipeline.py runs it, SQL over a pipeline's destination, PostgreSQL's presence.

Tests import these from here and fixtures come from conftest.py, so no test module
imports another."""

from __future__ import annotations

import re
import socket
from typing import Any, Dict, List, Optional, Sequence, Tuple

import dlt

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


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


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


