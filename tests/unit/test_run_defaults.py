"""The measured dlt settings apply where the user set none, and never over theirs."""

from __future__ import annotations

import os
from pathlib import Path

import dlt
import pytest

from zendesk.run_defaults import RUN_DEFAULTS, _env_name, apply_run_defaults


@pytest.fixture
def unset_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start with none of the keys in the environment; restore the environment after."""
    for key in RUN_DEFAULTS:
        monkeypatch.setenv(_env_name(key), "placeholder")
        monkeypatch.delenv(_env_name(key))


def test_every_default_is_applied_when_nothing_is_configured(unset_defaults: None) -> None:
    assert set(apply_run_defaults()) == set(RUN_DEFAULTS)
    assert dlt.config.get("data_writer.buffer_max_items", int) == 1000
    assert dlt.config.get("load.workers", int) == 2
    assert dlt.config.get("destination.duckdb.credentials.global_config", dict) == {"memory_limit": "128MB"}


def test_a_value_the_user_set_is_kept(unset_defaults: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOAD__WORKERS", "8")
    applied = apply_run_defaults()
    assert "load.workers" not in applied
    assert os.environ["LOAD__WORKERS"] == "8"
    assert "data_writer.buffer_max_items" in applied


def test_duckdb_runs_with_the_memory_cap(unset_defaults: None, tmp_path: Path) -> None:
    apply_run_defaults()
    pipeline = dlt.pipeline(
        pipeline_name="run_defaults_probe",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "zd.duckdb")),
        dataset_name="probe",
    )
    pipeline.run([{"id": 1}], table_name="t")
    with pipeline.sql_client() as client:
        limit = client.execute_sql("SELECT current_setting('memory_limit')")[0][0]
    assert limit.endswith("MiB") and float(limit.split()[0]) <= 128, limit
