"""Shared fixtures: a started fake Zendesk, isolated dlt pipelines in tmp dirs, DB helpers."""

from __future__ import annotations

import os
import socket
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import dlt
import pytest

from zendesk_fake import FakeZendesk
from zendesk import select_tables, zendesk_support
from zendesk.sync import run_until_drained

#: Rate limits high enough that pacing never slows a test (pacing has its own tests).
FAST_LIMITS = {"max_requests_per_minute": 100_000, "export_requests_per_minute": 100_000}


@pytest.fixture(autouse=True)
def _isolated_dlt(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No retry delays, no telemetry, and dlt's project files in the test's tmp dir."""
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "0")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt_data"))
    for key in list(os.environ):
        if key.startswith("SOURCES__"):
            monkeypatch.delenv(key)


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    """A fresh fake account per test: tests mutate it."""
    server = FakeZendesk(seed=3, tickets=150)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def source_args(fake: FakeZendesk, **overrides: Any) -> Dict[str, Any]:
    args: Dict[str, Any] = {
        "subdomain": fake.subdomain,
        "base_url": fake.base_url,
        "credentials": {"oauth_token": fake.oauth_token},
        **FAST_LIMITS,
    }
    args.update(overrides)
    return args


@pytest.fixture
def make_pipeline(tmp_path: Any) -> Callable[..., dlt.Pipeline]:
    def factory(name: str = "zd", destination: Any = None, dataset: str = "zendesk_data") -> dlt.Pipeline:
        return dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(tmp_path / "pipelines"),
            destination=destination or dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
            dataset_name=dataset,
        )

    return factory


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
        import re

        text = re.sub(r"\{t:(\w+)\}", lambda m: client.make_qualified_table_name(m.group(1)), sql)
        return [tuple(row) for row in client.execute_sql(text)]


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False
