"""Our DAG on a real Airflow 3 deployment (`pytest -m airflow_deploy`; .ci/run runs it in
.venv-airflow, built from requirements-airflow.txt and requirements-airflow-deploy.txt).

`tests/helpers/airflow_deployment.py` starts the API server, the scheduler, the DAG processor
and two Celery workers that share nothing on disk, over a metadata database of their own.
Three fake Zendesk accounts sign in with OAuth (rotating refresh tokens, access tokens that
expire within seconds) and keep their tokens in the Postgres token store; the accounts load
into Postgres. Every task therefore runs in its own process, on whichever worker takes it,
with a fresh pipeline folder: the state comes from the destination and the tokens from the
shared store, as in production. Checked through Airflow's REST API:

- two DAG runs, the second after changes in every fake: each account equals its truth;
- a worker SIGKILLed (its whole process group, as when its machine dies) in the middle of an
  account's task: Airflow fails the task once its heartbeat stops, retries it on the other
  worker, and the account ends exact, with no duplicate row and no refresh token spent twice;
- the task logs Airflow shows hold the progress lines, and a failing account's log holds the
  one-line reason, with no secret in any log.

Without Airflow, its Celery provider, Redis or Postgres these tests skip, except where
`ZENDESK_AIRFLOW_DEPLOY_REQUIRED=1` (CI), where a missing piece fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import dlt
import pytest

from tests.helpers import FAST_LIMITS, POSTGRES_URL, postgres_available, query
from tests.helpers.truth import assert_matches_truth
from zendesk_fake import FakeZendesk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAG_ID = "zendesk_accounts"
TOKENS_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRED = os.environ.get("ZENDESK_AIRFLOW_DEPLOY_REQUIRED") == "1"
#: Name, seed, tickets: a few hundred tickets in all, ids overlapping between accounts.
ACCOUNTS = (("acme", 21, 200), ("globex", 22, 120), ("initech", 23, 80))
#: Access tokens live this long: every task finds its token expired and refreshes (rotates).
ACCESS_TOKEN_SECONDS = 2
RUN_TIMEOUT = 240


def _missing() -> Optional[str]:
    """What this machine lacks for the deployment; found without importing Airflow (whose
    import configures it for the test process)."""
    for distribution in ("apache-airflow", "apache-airflow-providers-celery", "redis"):
        try:
            version(distribution)
        except PackageNotFoundError:
            return f"{distribution} is not installed (requirements-airflow*.txt)"
    if not postgres_available():
        return "PostgreSQL is not running on 127.0.0.1:5432"
    from tests.helpers.airflow_deployment import broker_reachable

    if not broker_reachable():
        return "Redis is not running on 127.0.0.1:6379"
    return None


MISSING = _missing()

pytestmark = [
    pytest.mark.airflow_deploy,
    pytest.mark.skipif(MISSING is not None and not REQUIRED, reason=f"{MISSING}; .ci/run runs these in .venv-airflow"),
    pytest.mark.timeout(420),
]


class Deployed:
    """The running deployment, the fakes behind it and where each account's rows land."""

    def __init__(self, airflow: Any, fakes: Dict[str, FakeZendesk], datasets: Dict[str, str], readers: str) -> None:
        self.airflow = airflow
        self.fakes = fakes
        self.datasets = datasets
        self.readers = readers
        self.timings: Dict[str, float] = {}
        #: Rows of each account's truth (all compared tables) at its last check.
        self.rows: Dict[str, int] = {}

    def reader(self, name: str) -> dlt.Pipeline:
        return dlt.pipeline(
            pipeline_name=f"reader_{self.datasets[name]}",
            pipelines_dir=self.readers,
            destination=dlt.destinations.postgres(POSTGRES_URL),
            dataset_name=self.datasets[name],
        )

    def run(self, run_id: str, while_waiting: Any = None) -> str:
        started = time.monotonic()
        self.airflow.trigger(DAG_ID, run_id)
        state = self.airflow.wait_run(DAG_ID, run_id, RUN_TIMEOUT, while_waiting)
        self.timings[run_id] = time.monotonic() - started
        return state

    def sync_tasks(self, run_id: str) -> Dict[str, Dict[str, Any]]:
        """The account tasks of a run by account name. By map index (the accounts' listed
        order), not by the name Airflow shows: a task waiting for its retry has none yet."""
        names = list(self.fakes)
        return {
            names[ti["map_index"]]: ti
            for ti in self.airflow.task_instances(DAG_ID, run_id)
            if ti["task_id"] == "sync"
        }

    def assert_exact(self) -> None:
        """Every account equals its truth; no table, nested ones included, holds a row twice;
        no refresh token was ever presented after its rotation."""
        for name, fake in self.fakes.items():
            reader = self.reader(name)
            truth = fake.ground_truth()
            assert_matches_truth(reader, truth)
            self.rows[name] = sum(len(rows) for rows in truth.values())
            tables = query(
                reader,
                "select table_name from information_schema.columns where table_schema = '%s'"
                " and column_name = '_dlt_id'" % self.datasets[name],
            )
            for (table,) in tables:
                rows, distinct = query(reader, f"select count(*), count(distinct _dlt_id) from {{t:{table}}}")[0]
                assert rows == distinct, f"{name}.{table}: {rows - distinct} duplicate row(s)"
            assert fake.used_refresh_tokens == set(), f"{name}: a rotated-out refresh token was presented again"


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    if MISSING is not None:
        pytest.fail(f"{MISSING} (ZENDESK_AIRFLOW_DEPLOY_REQUIRED=1: the deployment test must run here)")
    from tests.helpers.airflow_deployment import AirflowDeployment
    from zendesk.auth.authorize import authorize_interactive

    # Not under pytest's basetemp: other pytest sessions on the machine prune old basetemps,
    # and would delete a running worker's folders.
    root = Path(tempfile.mkdtemp(prefix="zendesk_airflow_deploy_"))
    tag = uuid.uuid4().hex[:8]
    tokens_table = f"zd_af_tokens_{tag}"
    store = f"{TOKENS_DSN}?table={tokens_table}"
    fakes = {name: FakeZendesk(seed=seed, tickets=tickets, subdomain=name) for name, seed, tickets in ACCOUNTS}
    datasets = {name: f"zd_af_{tag}_{name}" for name in fakes}
    airflow: Optional[AirflowDeployment] = None
    environment = pytest.MonkeyPatch()
    # The readers run in this process, where Airflow is importable: dlt would look up every
    # config key among Airflow Variables of a metadata database this process does not have.
    environment.setenv("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
    try:
        entries: List[Dict[str, Any]] = []
        worker_env = {"DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_URL}
        for name, fake in fakes.items():
            fake.start()
            fake.configure(oauth_access_token_ttl=ACCESS_TOKEN_SECONDS)
            # Sign each account in once, straight into the shared store (its key: the account).
            authorize_interactive(
                fake.subdomain, fake.oauth_client_id, fake.oauth_client_secret, f"{store}&key={name}",
                base_url=fake.base_url, input_fn=lambda _prompt, f=fake: f.issue_authorization_code(),
                print_fn=lambda *_args: None,
            )
            entries.append({
                "name": name, "subdomain": fake.subdomain, "base_url": fake.base_url, "dataset": datasets[name],
                "destination": "postgres", **FAST_LIMITS,
            })
            prefix = f"SOURCES__ZENDESK_{name.upper()}__CREDENTIALS__"
            worker_env[prefix + "CLIENT_ID"] = fake.oauth_client_id
            worker_env[prefix + "CLIENT_SECRET"] = fake.oauth_client_secret
            # The key is named although the accounts settings would add it: without it the
            # refresh credentials look for the stored pair under the key `default` while they
            # resolve, find none, and the client credentials grant is used instead (see the
            # report of issue 19).
            worker_env[prefix + "TOKEN_STORE_PATH"] = f"{store}&key={name}"
        worker_env["SOURCES__ZENDESK__ACCOUNTS"] = json.dumps(entries)
        airflow = AirflowDeployment(
            root=root, python=sys.executable, repo_root=REPO_ROOT, worker_env=worker_env,
            dag_env={"ZENDESK_DAG_SCHEDULE": "", "ZENDESK_DAG_RETRY_DELAY_SECONDS": "2"},
        )
        started = time.monotonic()
        airflow.start()
        deployment = Deployed(airflow, fakes, datasets, str(root / "readers"))
        deployment.timings["start"] = time.monotonic() - started
        yield deployment
        print(f"\nairflow deployment timings (s): {json.dumps({k: round(v, 1) for k, v in deployment.timings.items()})}")
        print(f"rows per account at the last check: {json.dumps(deployment.rows)}")
    finally:
        if airflow is not None:
            airflow.stop()
        for fake in fakes.values():
            fake.stop()
        environment.undo()
        _drop_postgres(tokens_table, list(datasets.values()))
        if os.environ.get("ZENDESK_AIRFLOW_DEPLOY_KEEP") == "1":
            print(f"\nthe deployment's folders (components' output, workers' homes): {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _drop_postgres(tokens_table: str, datasets: List[str]) -> None:
    import psycopg2

    connection = psycopg2.connect(TOKENS_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {tokens_table}")
            for dataset in datasets:
                cursor.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
                cursor.execute(f"DROP SCHEMA IF EXISTS {dataset}_staging CASCADE")
    finally:
        connection.close()


def test_every_account_exact_after_a_run_and_after_changes(deployed: Deployed) -> None:
    assert deployed.run("first") == "success", deployed.airflow.diagnostics()
    assert {name: ti["rendered_map_index"] for name, ti in deployed.sync_tasks("first").items()} == {
        name: name for name in deployed.fakes
    }
    deployed.assert_exact()

    for seed, fake in enumerate(deployed.fakes.values(), start=40):
        assert fake.mutate(seed=seed, fraction=0.1)["tickets_updated"]
        fake.reset_counts()
    assert deployed.run("second") == "success", deployed.airflow.diagnostics()
    assert all(fake.total_requests() > 0 for fake in deployed.fakes.values())
    assert all(fake.oauth_refresh_count() >= 2 for fake in deployed.fakes.values())
    deployed.assert_exact()

    # Both workers took tasks: the tasks really ran on separate "machines".
    hosts = {ti["hostname"] for run in ("first", "second") for ti in deployed.sync_tasks(run).values()}
    assert len(hosts) == 2, hosts


def test_worker_killed_mid_task_is_retried_elsewhere_and_logs_show_progress_and_reasons(deployed: Deployed) -> None:
    """One run with changes in which two things go wrong: the worker running `acme` dies
    (SIGKILL of its whole process group) after the task has made some requests, and
    `initech`'s OAuth client secret is wrong until its first try has failed."""
    from tests.helpers.airflow_deployment import WORKER_ADDRESSES

    victim, broken = "acme", "initech"
    fake = deployed.fakes[victim]
    for seed, each in enumerate(deployed.fakes.values(), start=60):
        each.mutate(seed=seed, fraction=0.2)
        each.reset_counts()
    # Pace the victim's account (two requests per two seconds) so that its task is surely
    # in the middle of its sync when the worker dies; the pace is lifted once it has died.
    fake.configure(rate_limit_per_minute=2, rate_window_seconds=2)
    secret = deployed.fakes[broken].oauth_client_secret
    deployed.fakes[broken].oauth.client_secret = "changed-by-an-admin"
    killed: Dict[str, Any] = {}

    def meanwhile() -> None:
        tasks = deployed.sync_tasks("third")
        if tasks.get(broken, {}).get("state") in ("up_for_retry", "failed"):
            deployed.fakes[broken].oauth.client_secret = secret  # the admin fixed the secret
        task = tasks.get(victim)
        if killed or not task or task["state"] != "running" or not task.get("hostname") or fake.total_requests() < 6:
            return
        worker = f"worker{WORKER_ADDRESSES.index(task['hostname']) + 1}"
        deployed.airflow.kill(worker)
        deployed.airflow.kill(f"{worker}-logs")
        killed.update(host=task["hostname"], worker=worker, at=time.time(), requests=fake.total_requests())
        fake.configure(rate_limit_per_minute=None, rate_window_seconds=60)

    try:
        state = deployed.run("third", while_waiting=meanwhile)
    finally:
        deployed.fakes[broken].oauth.client_secret = secret
    assert killed, "the victim's task was never seen running"
    assert state == "success", deployed.airflow.diagnostics()
    # The killed machine's disk survived (it rebooted): its log server serves its logs again.
    deployed.airflow.start_log_server(killed["worker"])

    tasks = deployed.sync_tasks("third")
    tries = deployed.airflow.tries(DAG_ID, "third", "sync", tasks[victim]["map_index"])
    assert tries[0]["hostname"] == killed["host"] and tries[0]["state"] == "failed", tries
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] != killed["host"], tries
    deployed.assert_exact()

    ended = datetime.fromisoformat(tries[-1]["end_date"].replace("Z", "+00:00")).timestamp()
    deployed.timings["kill_to_retry_success"] = ended - killed["at"]
    print(
        f"\nkilled {killed['worker']} ({killed['host']}) after {killed['requests']} requests of {victim};"
        f" try {tries[-1]['try_number']} on {tries[-1]['hostname']} succeeded {ended - killed['at']:.1f} s after the kill"
    )

    # What an operator reads in Airflow: progress lines of a sync, and a failure's reason.
    last = tries[-1]
    log = deployed.airflow.log(DAG_ID, "third", "sync", last["map_index"], last["try_number"])
    assert f"Zendesk account {victim}: syncing" in log, log[-3000:]
    assert ", export complete" in log and "rows" in log, log[-3000:]
    assert "batch(es) loaded" in log, log[-3000:]

    broken_tries = deployed.airflow.tries(DAG_ID, "third", "sync", tasks[broken]["map_index"])
    assert broken_tries[0]["state"] == "failed" and broken_tries[-1]["state"] == "success", broken_tries
    # The worker killed above may have been running the broken account's first try too: that
    # try then ends with no reason in its log (its process died mid-sync). Otherwise the
    # reason's line reaches the log a moment after Airflow records the failure.
    first_try_killed = broken_tries[0].get("hostname") == killed["host"]
    deadline = time.monotonic() + 60
    while True:
        failed = deployed.airflow.log(DAG_ID, "third", "sync", tasks[broken]["map_index"], 1)
        reasons = [line for line in failed.splitlines() if f"Zendesk account {broken} failed: Zendesk rejected the OAuth client" in line]
        if reasons or first_try_killed or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert reasons or first_try_killed, failed[-3000:]
    assert all("PipelineStepFailed" not in line for line in reasons)  # the reason itself, not dlt's wrapping
    for text in (log, failed):
        assert secret not in text and "changed-by-an-admin" not in text
