"""The measured dlt and malloc settings apply where the user set none, and never over theirs."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import dlt
import pytest

from zendesk.run.defaults import MALLOC_ARENAS, RUN_DEFAULTS, _env_name, apply_run_defaults, limit_malloc_arenas

REPO_ROOT = Path(__file__).resolve().parents[2]


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


ARENA_PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "cap":
    from zendesk.run.defaults import limit_malloc_arenas
    print(limit_malloc_arenas())
barrier = threading.Barrier(8)
held = []
def allocate():
    barrier.wait()
    held.append([bytearray(200_000) for _ in range(5)])
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas_used(mode: str, env: Dict[str, str]) -> Tuple[str, int]:
    """Eight threads allocate at once; glibc's malloc_stats lists each arena they used."""
    done = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=True
    )
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are a glibc feature")
def test_threads_share_two_malloc_arenas_once_capped() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    _, uncapped = _arenas_used("none", env)
    assert uncapped > MALLOC_ARENAS, "without the cap the probe's threads must spread over more arenas"
    printed, capped = _arenas_used("cap", env)
    assert printed == str(MALLOC_ARENAS)
    assert capped <= MALLOC_ARENAS


def test_a_users_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is None
