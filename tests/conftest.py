"""Shared fixtures: a started fake Zendesk and isolated dlt pipelines in tmp dirs (plain
helper functions live in tests/helpers)."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import dlt
import pytest

from tests.helpers import require_postgres
from zendesk_fake import FakeZendesk


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


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `postgres` need the server: skipped without it, failed in CI."""
    if item.get_closest_marker("postgres"):
        require_postgres()


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    """A fresh fake account per test: tests mutate it."""
    server = FakeZendesk(seed=3, tickets=150)
    server.start()
    try:
        yield server
    finally:
        server.stop()


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


#: Modules right under tests/ that run no pipeline end to end: the fast subset keeps them.
FAST_TOP_LEVEL = {"test_docs.py", "test_layers.py"}


def pytest_collection_modifyitems(items: Any) -> None:
    """Mark the end-to-end and fault tests (every module right under tests/ but the fast
    ones) `slow`: `pytest -m "not slow"` is the quick subset (unit, contract, the fake's own
    tests, docs and layers); the README's `pytest -q` still runs everything."""
    for item in items:
        path = item.path
        if path.parent.name == "tests" and path.name not in FAST_TOP_LEVEL:
            item.add_marker(pytest.mark.slow)
