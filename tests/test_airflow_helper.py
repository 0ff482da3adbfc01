"""dlt's own Airflow helper over the source (`pytest -m airflow` in .venv-airflow): the DAG of
dlt's Airflow documentation, `PipelineTasksGroup(...).add_run(pipeline, zendesk_support(),
decompose=...)`, run with Airflow 3's `dag.test()` (every task in this one process, as in
issue 17's case 6), ends with every table equal to the fake's truth, first in full and
again after changes, whichever decomposition it uses."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers.truth import assert_matches_truth

DECOMPOSITIONS = ("serialize", "parallel", "parallel-isolated")

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(
        find_spec("airflow") is None,
        reason="Airflow is not installed here; run these in .venv-airflow (requirements-airflow.txt)",
    ),
]


DAG_FILE = """
import os

import dlt
import pendulum
from airflow.sdk import dag
from dlt.helpers.airflow_helper import PipelineTasksGroup

from zendesk import zendesk_support


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def load_zendesk():
    tasks = PipelineTasksGroup("zendesk", use_data_folder=False, wipe_local_data=True)
    pipeline = dlt.pipeline(
        pipeline_name="zendesk_airflow",
        dataset_name="zendesk_data",
        destination=dlt.destinations.duckdb(os.environ["ZD_TEST_WAREHOUSE"]),
    )
    source = zendesk_support(
        subdomain=os.environ["ZD_TEST_SUBDOMAIN"],
        base_url=os.environ["ZD_TEST_BASE_URL"],
        credentials={{"oauth_token": os.environ["ZD_TEST_TOKEN"]}},
        max_requests_per_minute=100_000,
        export_requests_per_minute=100_000,
    )
    tasks.add_run(pipeline, source, decompose="{decompose}", trigger_rule="all_done", retries=0)


load_zendesk()
"""


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway Airflow (its own AIRFLOW_HOME and metadata DB, migrated with the CLI)
    whose DAG folder holds one file per decomposition, as dlt's documentation writes it."""
    home = tmp_path_factory.mktemp("airflow_home")
    folder = home / "dags"
    folder.mkdir()
    for decompose in DECOMPOSITIONS:
        dag_id = f"zendesk_{decompose.replace('-', '_')}"
        (folder / f"{dag_id}.py").write_text(DAG_FILE.format(dag_id=dag_id, decompose=decompose), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(home))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield folder


def load_dag(folder: Path, decompose: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    return bag.get_dag(f"zendesk_{decompose.replace('-', '_')}")


def reader(warehouse: Path, tmp_path: Path) -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name="zendesk_reader",
        pipelines_dir=str(tmp_path / "reader"),
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name="zendesk_data",
    )


@pytest.mark.parametrize("decompose", DECOMPOSITIONS)
def test_the_documented_airflow_dag_ends_exact(
    dags_folder: Path, fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decompose: str
) -> None:
    warehouse = tmp_path / "zendesk.duckdb"
    monkeypatch.setenv("ZD_TEST_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("ZD_TEST_SUBDOMAIN", fake.subdomain)
    monkeypatch.setenv("ZD_TEST_BASE_URL", fake.base_url)
    monkeypatch.setenv("ZD_TEST_TOKEN", fake.oauth_token)
    for attempt in range(2):
        run = load_dag(dags_folder, decompose).test()
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == "success", states
        assert len(states) > 2, "the source was not decomposed into several tasks"
        assert_matches_truth(reader(warehouse, tmp_path), fake.ground_truth())
        if attempt == 0:
            fake.mutate(seed=81, fraction=0.05)
