"""A fixture server over the recorded payloads, and a pipeline run over it into DuckDB."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import dlt
import pytest

from tests.conftest import FAST_LIMITS
from tests.contract.fixture_server import FixtureZendesk
from zendesk import zendesk_support


@pytest.fixture
def recorded() -> Iterator[FixtureZendesk]:
    server = FixtureZendesk().start()
    try:
        yield server
    finally:
        server.stop()


def run_recorded(pipeline: dlt.Pipeline, server: FixtureZendesk, **overrides: Any) -> Any:
    """The plain `pipeline.run(zendesk_support(...))` over the recorded payloads."""
    args: Dict[str, Any] = {
        "subdomain": "company",
        "base_url": server.base_url,
        "credentials": {"oauth_token": "recorded-payloads"},
        **FAST_LIMITS,
        **overrides,
    }
    info = pipeline.run(zendesk_support(**args))
    info.raise_on_failed_jobs()
    return info


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


