"""The Airflow deployment on a real Airflow (`pytest -m airflow` in the venv `.ci/run` builds from
requirements-airflow.txt): the DAG folder parses offline, fast and without secrets, and
`dag.test()` syncs three fake accounts (overlapping ids) each to its own truth, first in full
and again after changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from typing import Any, Iterator

import dlt
import pytest

from tests.helpers.accounts import SHARED_DATASET, accounts_env, dataset_reader, running_accounts, shared_dataset_reader
from tests.helpers.truth import assert_matches_truth

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(
        find_spec("airflow") is None,
        reason="Airflow is not installed here; .ci/run runs these in .venv-airflow (requirements-airflow.txt)",
    ),
]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAG_ID = "zendesk_accounts"

PARSE_SCRIPT = """
import json, socket, sys, time
attempts = []
def refuse(self, address):
    attempts.append(str(address))
    raise OSError("no network while parsing DAGs")
socket.socket.connect = refuse
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
imported = sorted({m.split(".")[0] for m in set(sys.modules) - before} & {"dlt", "zendesk", "duckdb", "requests"})
print(json.dumps({
    "dag_ids": sorted(bag.dag_ids),
    "errors": {str(k): str(v)[:500] for k, v in bag.import_errors.items()},
    "seconds": [s.duration.total_seconds() for s in bag.dagbag_stats],
    "files": [str(s.file) for s in bag.dagbag_stats],
    "imported": imported,
    "attempts": attempts,
}))
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Airflow: its own AIRFLOW_HOME and metadata DB, migrated with the CLI."""
    home = str(tmp_path_factory.mktemp("airflow_home"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", home)
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", REPO_ROOT)
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield home


def test_dag_folder_parses_offline_without_secrets_and_fast(airflow_home: str) -> None:
    """The repository as DAG folder: `.airflowignore` keeps Airflow out of the source package
    (whose top-level symlink made it report a recursive loop), and parsing builds no source:
    it imports neither dlt nor the connector, reads no secret and opens no connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    parsed = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, REPO_ROOT], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    report = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dag_ids"] == [DAG_ID]
    assert report["files"] == [os.path.join("dags", "zendesk_accounts.py")]
    assert report["imported"] == []
    assert report["attempts"] == []
    # Airflow's own measure of the file's parse (the brief asks for under a second).
    assert report["seconds"][0] < 1.0, report


def _load_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag
    dag = DagBag(dag_folder=os.path.join(REPO_ROOT, "dags")).get_dag(DAG_ID)
    for task in dag.tasks:
        task.retries = 0  # a failure must fail the test, not wait for a retry
    return dag


def _sync_states(run: Any) -> dict:
    return {ti.rendered_map_index: ti.state for ti in run.get_task_instances() if ti.task_id == "sync"}


@pytest.mark.parametrize("shared", [False, True], ids=["dataset-per-account", "shared-dataset"])
def test_dag_syncs_every_account_to_its_own_truth_and_again_after_changes(
    airflow_home: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, shared: bool
) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    monkeypatch.setenv("DLT_LOCAL_DIR", str(warehouse))  # each account's DuckDB file lands here
    monkeypatch.setenv("DLT_PROJECT_DIR", REPO_ROOT)
    if shared:  # one DuckDB file, one dataset, every account in it
        monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(warehouse / "all.duckdb"))
    readers = str(tmp_path / "readers")
    with running_accounts() as fakes:
        for key, value in accounts_env(fakes, **({"dataset": SHARED_DATASET} if shared else {})).items():
            monkeypatch.setenv(key, value)
        dag = _load_dag()

        def check() -> None:
            for name, fake in fakes.items():
                if shared:
                    reader = shared_dataset_reader(name, str(warehouse / "all.duckdb"), readers)
                else:
                    destination = dlt.destinations.duckdb(str(warehouse / f"zendesk_{name}.duckdb"))
                    reader = dataset_reader(name, destination, readers)
                assert_matches_truth(reader, fake.ground_truth())

        first = dag.test()
        assert first.state == "success"
        assert _sync_states(first) == {name: "success" for name in fakes}
        check()

        for seed, fake in enumerate(fakes.values(), start=70):
            assert fake.mutate(seed=seed, fraction=0.1)["tickets_updated"]
            fake.reset_counts()
        second = dag.test()
        assert second.state == "success"
        assert all(fake.total_requests() > 0 for fake in fakes.values())
        check()
