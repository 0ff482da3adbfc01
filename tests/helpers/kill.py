"""Plain runs in child processes (tests/plain_run_child.py), killed at chosen points of
dlt's run, and what the tests check after them: the kill tests and the benchmark's kill
matrix share these."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, List, Optional

import dlt

from tests.helpers import POSTGRES_URL, query
from zendesk import select_tables
from zendesk.tables.registry import TABLES_BY_NAME

REPO_ROOT = str(Path(__file__).resolve().parents[2])
#: Exit codes of tests/plain_run_child.py.
REFUSED = 3
NOT_KILLED = 4


class Target:
    """One pipeline's destination and working folder, as the children and the test see it."""

    def __init__(self, kind: str, workdir: Path, name: str = "zd_kill") -> None:
        self.kind = kind
        self.name = name
        self.pipelines_dir = str(workdir / "pipelines")
        self.dataset = f"zendesk_{uuid.uuid4().hex[:8]}"
        self.url = POSTGRES_URL if kind == "postgres" else str(workdir / f"{name}.duckdb")

    def pipeline(self) -> dlt.Pipeline:
        destination = dlt.destinations.postgres(self.url) if self.kind == "postgres" else dlt.destinations.duckdb(self.url)
        return dlt.pipeline(
            pipeline_name=self.name, pipelines_dir=self.pipelines_dir, destination=destination, dataset_name=self.dataset
        )

    def drop(self) -> None:
        if self.kind == "postgres":
            with self.pipeline().sql_client() as client:
                if client.has_dataset():
                    client.drop_dataset()

    def command(self, fake: Any, kill_at: Optional[str] = None, slow: bool = False) -> List[str]:
        command = [
            sys.executable, "-m", "tests.plain_run_child",
            "--pipelines-dir", self.pipelines_dir,
            "--pipeline-name", self.name,
            "--destination", self.url,
            "--dataset", self.dataset,
            "--base-url", fake.base_url,
            "--subdomain", fake.subdomain,
            "--token", fake.oauth_token,
        ]
        if kill_at:
            command += ["--kill-at", kill_at]
        if slow:
            # Two export requests per "minute" of one second: the run lasts a few seconds.
            command += ["--export-rpm", "2", "--window", "1"]
        return command

    def start(self, fake: Any, kill_at: Optional[str] = None, slow: bool = False) -> "subprocess.Popen[str]":
        env = {**os.environ, "PYTHONPATH": REPO_ROOT}
        return subprocess.Popen(
            self.command(fake, kill_at, slow), cwd=REPO_ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, fake: Any, kill_at: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
        process = self.start(fake, kill_at)
        out, err = process.communicate(timeout=300)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def keys_twice(pipeline: dlt.Pipeline) -> List[str]:
    """Tables (and nested tables) holding a key or a `_dlt_id` more than once."""
    found = []
    loaded = set(pipeline.default_schema.data_table_names())
    for table in select_tables(None):
        pk = TABLES_BY_NAME[table].primary_key
        if table in loaded and query(pipeline, f"select {pk} from {{t:{table}}} group by {pk} having count(*) > 1"):
            found.append(table)
    for table in pipeline.default_schema.data_table_names():
        if query(pipeline, f"select _dlt_id from {{t:{table}}} group by _dlt_id having count(*) > 1"):
            found.append(f"{table}._dlt_id")
    return found
