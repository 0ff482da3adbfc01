"""A real Airflow 3 deployment on this machine, started and stopped by a test.

Components, each a process group of its own (so one can be killed whole, as a machine dies):
the API server (REST API and the task execution API), the scheduler, the DAG processor, and
two Celery workers (CeleryExecutor; broker Redis, result backend Postgres). Airflow's metadata
lives in a Postgres database created for the deployment and dropped after it.

The two workers share nothing on disk: each has its own AIRFLOW_HOME (task logs), HOME,
TMPDIR and dlt data folder (`DLT_DATA_DIR`: the rate ledger), and its own loopback address
(127.0.0.2, 127.0.0.3), which it uses as its host name (`tests/airflow_host.py`) and where a
log server of its own serves its task logs to the API server, as a worker on another
machine would. What they do share is what a real deployment shares over the network:
Postgres (Airflow's database, the destination, the OAuth token store), Redis and the API.

Talks to Airflow through its public REST API (`/api/v2`) only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import psycopg2
import requests

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
WORKER_ADDRESSES = ("127.0.0.2", "127.0.0.3")
#: The settings that make a small deployment react in seconds rather than minutes.
FAST_SETTINGS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    # A killed worker's task is failed (and retried) this long after its last heartbeat.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
    "AIRFLOW__API__WORKERS": "1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broker_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    output: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.output.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class AirflowDeployment:
    """See the module docstring. `worker_env` goes to the workers only (the secrets live
    there); `dag_env` to every component that parses the DAG file."""

    root: Path
    python: str
    repo_root: str
    worker_env: Dict[str, str] = field(default_factory=dict)
    dag_env: Dict[str, str] = field(default_factory=dict)
    components: Dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.database = f"airflow_deploy_{tag}"
        self.queue = f"zendesk_deploy_{tag}"
        self.api_port = free_port()
        self.log_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.session = requests.Session()
        self._created_db = False

    # --- environment ---------------------------------------------------------------------

    def base_env(self, home: Path) -> Dict[str, str]:
        database = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.database}"
        inherited = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "SOURCES__", "DESTINATION__", "DLT_", "PYTEST"))
        }
        return {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": self.repo_root,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(self.repo_root, "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.airflow_host.hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": self._secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_port),
            **FAST_SETTINGS,
            **self.dag_env,
        }

    @property
    def _secret_key(self) -> str:
        if not hasattr(self, "_secret_key_value"):
            self._secret_key_value = secrets.token_urlsafe(32)
        return self._secret_key_value

    @property
    def _jwt_secret(self) -> str:
        if not hasattr(self, "_jwt_secret_value"):
            self._jwt_secret_value = secrets.token_urlsafe(32)
        return self._jwt_secret_value

    def worker_folders(self, name: str) -> Dict[str, Path]:
        base = self.root / name
        return {key: base / key for key in ("airflow_home", "home", "tmp", "dlt_data")}

    def worker_env_for(self, name: str, address: str) -> Dict[str, str]:
        folders = self.worker_folders(name)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            **self.base_env(folders["airflow_home"]),
            "HOME": str(folders["home"]),
            "TMPDIR": str(folders["tmp"]),
            "DLT_DATA_DIR": str(folders["dlt_data"]),
            "ZENDESK_TEST_AIRFLOW_WORKER_ADDRESS": address,
            **self.worker_env,
        }

    # --- processes -----------------------------------------------------------------------

    def _spawn(self, name: str, args: List[str], env: Dict[str, str]) -> Component:
        output = self.root / "output" / f"{name}.log"
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "ab") as sink:
            process = subprocess.Popen(
                [self.python, *args], env=env, cwd=str(self.root), stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        component = self.components[name] = Component(name, process, output)
        return component

    def start(self, timeout: float = 240) -> None:
        """Create the database, migrate it, start every component and wait until the API
        answers, the scheduler and DAG processor report healthy and the DAG is parsed."""
        self._create_database()
        control = self.base_env(self.root / "control")
        (self.root / "control").mkdir(parents=True, exist_ok=True)
        migrated = subprocess.run(
            [self.python, "-m", "airflow", "db", "migrate"], env=control, cwd=str(self.root),
            capture_output=True, text=True, timeout=timeout,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.stdout[-2000:]}\n{migrated.stderr[-3000:]}")
        self._spawn("api-server", ["-m", "airflow", "api-server", "--port", str(self.api_port)], control)
        self._spawn("scheduler", ["-m", "airflow", "scheduler"], control)
        self._spawn("dag-processor", ["-m", "airflow", "dag-processor"], control)
        for index, address in enumerate(WORKER_ADDRESSES, start=1):
            self.start_worker(f"worker{index}", address)
        self.wait_ready(timeout)

    def start_worker(self, name: str, address: str) -> None:
        env = self.worker_env_for(name, address)
        self._spawn(name, [
            "-m", "airflow", "celery", "worker", "--queues", self.queue, "--celery-hostname", f"{name}@{address}",
            "--skip-serve-logs", "--without-mingle", "--without-gossip",
        ], env)
        self.start_log_server(name)

    def start_log_server(self, name: str) -> None:
        """The worker's own log server, on the worker's own address (Airflow's `serve_logs`
        binds every address, so two of them cannot share a machine at one port)."""
        address = WORKER_ADDRESSES[int(name.removeprefix("worker")) - 1]
        self._spawn(f"{name}-logs", [
            "-m", "uvicorn", "airflow.utils.serve_logs.log_server:get_app", "--factory",
            "--host", address, "--port", str(self.log_port), "--log-level", "warning",
        ], self.worker_env_for(name, address))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            health = self.session.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
            if health.get("scheduler", {}).get("status") != "healthy":
                return False
            if health.get("dag_processor", {}).get("status") != "healthy":
                return False
            return self.session.get(f"{self.api_url}/api/v2/dags/zendesk_accounts", timeout=5).status_code == 200

        while time.monotonic() < deadline:
            self.raise_if_exited()
            try:
                if ready():
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise TimeoutError(f"Airflow was not ready after {timeout:.0f} s\n{self.diagnostics()}")

    def raise_if_exited(self, names: Optional[List[str]] = None) -> None:
        for name in names or list(self.components):
            component = self.components[name]
            code = component.process.poll()
            if code is not None and not getattr(component, "killed", False):
                raise RuntimeError(f"Airflow component {name} exited with {code}:\n{component.tail()}")

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group, as when its machine dies."""
        component = self.components[name]
        component.killed = True  # type: ignore[attr-defined]
        try:
            os.killpg(component.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        component.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL), drop the database, forget the queue."""
        for component in self.components.values():
            try:
                os.killpg(component.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        for component in self.components.values():
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (task processes the worker forked)
                os.killpg(component.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                component.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._forget_queue()
        self._drop_database()

    def diagnostics(self) -> str:
        return "\n".join(f"--- {c.name} (exit {c.process.poll()}) ---\n{c.tail(2000)}" for c in self.components.values())

    # --- databases -----------------------------------------------------------------------

    def _admin(self, statement: str) -> None:
        connection = psycopg2.connect(POSTGRES_ADMIN_DSN)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def _create_database(self) -> None:
        self._admin(f'CREATE DATABASE "{self.database}"')
        self._created_db = True

    def _drop_database(self) -> None:
        if self._created_db:
            self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._created_db = False

    def _forget_queue(self) -> None:
        """Drop the deployment's Redis keys (its queue and the messages left unacknowledged
        by a killed worker), so nothing of this run is ever redelivered elsewhere."""
        try:
            import redis
        except ImportError:
            return
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in client.scan_iter(match=f"*{self.queue}*"):
                client.delete(key)
            for key in ("unacked", "unacked_index", "unacked_mutex"):
                client.delete(key)
        except redis.RedisError:
            pass
        finally:
            client.close()

    # --- REST API ------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.api_url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.api("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> List[Dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"])

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> List[Dict[str, Any]]:
        """Every try of one task instance, oldest first (each with the host that ran it)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        found = self.api("GET", path)["task_instances"]
        return sorted(found, key=lambda t: t["try_number"])

    def log(self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
        """The task log as Airflow shows it, one event per line (fetched from the worker)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.api("GET", path, params={"map_index": map_index, "full_content": "true"})
        content = body.get("content") or []
        if isinstance(content, str):
            return content
        return "\n".join(_log_line(entry) for entry in content)

    def wait_run(self, dag_id: str, run_id: str, timeout: float, while_waiting: Optional[Callable[[], None]] = None) -> str:
        """The run's final state; fails early when a component dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            self.raise_if_exited()
            if while_waiting is not None:
                while_waiting()
            time.sleep(1)
        raise TimeoutError(f"DAG run {run_id} not finished after {timeout:.0f} s\n{self.diagnostics()}")


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    extra = {k: v for k, v in entry.items() if k not in ("event", "timestamp", "level", "logger")}
    line = f"{entry.get('timestamp', '')} {entry.get('level', '')} {entry.get('logger', '')}: {entry.get('event', '')}"
    return f"{line} {json.dumps(extra, default=str)}" if extra else line
