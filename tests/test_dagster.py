"""The Dagster example (examples/dagster/definitions.py) materialized with Dagster's own API
against the fake Zendesk: exact after a run and after changes, one asset per table with its
row count, definitions that load with no secret and no network, and a second
materialization started while one runs refused cleanly.

Each materialization runs in a process of its own (dagster-io/dagster#34052). Needs
requirements-dagster.txt; `.ci/run` runs these in .venv-dagster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import dlt
import pytest

from tests.helpers import lock_held_elsewhere
from tests.helpers.truth import assert_matches_truth
from zendesk import select_tables

#: The tables the example's source loads: those on by default (one asset each).
DEFAULT_TABLES = select_tables(None)

pytest.importorskip("dagster_dlt")
pytestmark = pytest.mark.dagster

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "acme"


def account_env(fake: Any, tmp_path: Path, slow: bool = False, **extra: str) -> Dict[str, str]:
    """A deployment's environment: the account's settings in its own section."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOURCES__")}
    prefix = f"SOURCES__ZENDESK_{ACCOUNT.upper()}__"
    env.update({
        "PYTHONPATH": str(REPO_ROOT),
        "ZENDESK_ACCOUNTS": ACCOUNT,
        f"{prefix}SUBDOMAIN": fake.subdomain,
        f"{prefix}BASE_URL": fake.base_url,
        f"{prefix}CREDENTIALS__OAUTH_TOKEN": fake.oauth_token,
        f"{prefix}MAX_REQUESTS_PER_MINUTE": "100000",
        f"{prefix}EXPORT_REQUESTS_PER_MINUTE": "2" if slow else "100000",
        f"{prefix}RATE_LIMIT_WINDOW_SECONDS": "1" if slow else "60",
        **extra,
    })
    return env


def materialize(env: Dict[str, str], cwd: Path, *tables: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.dagster_child", *tables],
        cwd=str(cwd), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def outcome(process: subprocess.Popen, timeout: float = 120) -> Dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no result from the child (exit {process.returncode}): {err[-3000:]}"
    return json.loads(lines[-1])


def account_pipeline(tmp_path: Path) -> dlt.Pipeline:
    """The example's pipeline, attached from the test to read its destination."""
    return dlt.pipeline(
        pipeline_name=f"zendesk_{ACCOUNT}",
        pipelines_dir=str(tmp_path / "check_pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / f"zendesk_{ACCOUNT}.duckdb")),
        dataset_name=f"zendesk_{ACCOUNT}_data",
    )


def test_definitions_load_with_no_secret_no_network_and_no_file_of_ours(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SOURCES__", "DESTINATION__"))}
    env.update({"PYTHONPATH": str(REPO_ROOT), "ZENDESK_ACCOUNTS": "acme,globex", "DLT_DATA_DIR": str(tmp_path / "data")})
    probe = (
        "import json, socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('a connection was opened while loading the definitions')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from dagster import Definitions\n"
        "from tests.dagster_child import load_definitions\n"
        "defs = load_definitions().defs\n"
        "Definitions.validate_loadable(defs)\n"
        "graph = defs.resolve_asset_graph()\n"
        "print(json.dumps(sorted(key.to_user_string() for key in graph.get_all_asset_keys())))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    keys = json.loads(done.stdout.strip().splitlines()[-1])
    expected = sorted(f"zendesk/{account}/{table}" for account in ("acme", "globex") for table in DEFAULT_TABLES)
    assert keys == expected  # one asset per table per account; no hidden reader as an asset
    written = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "data").rglob("*") if p.is_file())
    # dlt.pipeline() itself writes each pipeline's state.json; nothing of ours (rate ledger,
    # token store, run lock) is written.
    assert all(path.endswith("/state.json") for path in written), written


def test_materialized_exact_after_a_run_a_selection_and_changes(fake: Any, tmp_path: Path) -> None:
    env = account_env(fake, tmp_path)
    first = outcome(materialize(env, tmp_path))
    assert first["success"], first["failures"]
    truth = fake.ground_truth()
    assert sorted(first["row_counts"]) == sorted(DEFAULT_TABLES)
    for table in DEFAULT_TABLES:
        assert first["row_counts"][table] == len(truth[table]), table
    pipeline = account_pipeline(tmp_path)
    assert_matches_truth(pipeline, truth)

    # A selection of one table of a shared export, then changes, then everything.
    assert fake.mutate(seed=91, fraction=0.05)["tickets_updated"]
    alone = outcome(materialize(env, tmp_path, "ticket_comments"))
    assert alone["success"], alone["failures"]
    assert sorted(alone["row_counts"]) == ["ticket_comments"]
    assert fake.mutate(seed=92, fraction=0.05)["tickets_updated"]
    again = outcome(materialize(env, tmp_path))
    assert again["success"], again["failures"]
    assert_matches_truth(account_pipeline(tmp_path), fake.ground_truth())



def test_a_second_materialization_during_the_first_is_refused_and_the_first_ends_exact(
    fake: Any, tmp_path: Path
) -> None:
    env = account_env(fake, tmp_path, slow=True)
    lock = Path(os.environ["DLT_DATA_DIR"]) / "pipelines" / f".zendesk_{ACCOUNT}.zendesk-run.lock"
    second = materialize(env, tmp_path, "--on-cue")  # Dagster's imports take seconds: done first
    assert second.stdout is not None and second.stdout.readline().strip() == "ready", second.communicate()
    first = materialize(env, tmp_path)
    deadline = time.monotonic() + 90
    while not lock_held_elsewhere(str(lock)):
        assert first.poll() is None, f"the first run ended before taking the lock: {first.communicate()}"
        assert time.monotonic() < deadline, "the first run never took the run lock"
        time.sleep(0.05)
    assert second.stdin is not None
    second.stdin.write("go\n")
    second.stdin.flush()
    refused = outcome(second, timeout=120)
    assert first.poll() is None, "the refusal must come while the first run is still going"
    assert not refused["success"]
    refusal = f"Another run of pipeline 'zendesk_{ACCOUNT}' is in progress"
    assert any(refusal in text for text in refused["failures"]), [text[-1500:] for text in refused["failures"]]
    result: Optional[Dict[str, Any]] = outcome(first, timeout=300)
    assert result is not None and result["success"], result and result["failures"]
    assert_matches_truth(account_pipeline(tmp_path), fake.ground_truth())
