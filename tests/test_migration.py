"""Upgrading from release 0.1: the state and dataset 0.1 wrote, run on by this release, give
the fake's rows, no duplicate keys and no full reload.

Release 0.1 is commit `RELEASE_0_1` of this repository. Its tree is exported with `git
archive` and its source run in a subprocess (both releases are the package `zendesk`)
against the current fake Zendesk, which still serves every endpoint 0.1 reads. Then the
fake changes and this release runs on the same pipeline name, dlt data dir and dataset.
The same change is given to a second fake of the same seed, on which this release ran
from the start: what its incremental run reads is what the upgrade may read, besides the
one-time reads CHANGELOG.md names under "Upgrading from 0.1".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Dict, Iterator, Tuple

import dlt
import pytest

from tests.helpers import POSTGRES_URL, postgres_available, source_args
from tests.helpers.truth import assert_matches_truth
from zendesk import __version__, select_tables, zendesk_support
from zendesk.resources import TABLES_OF_0_1
from zendesk.tables.registry import TABLES_BY_NAME, ChangeDetection
from zendesk_fake import FakeZendesk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE_0_1 = "20571c0"

#: Tables the first run after 0.1 reads in full, once: user_identities and the history
#: tables are new siblings in the users and ticket events exports, so those exports are
#: read from the start for them, and their 0.1 siblings get their rows again (merge keys
#: make that harmless). Each name is in CHANGELOG.md's "Upgrading from 0.1".
RELOADED_ONCE = ("users", "user_identities", "ticket_comments", "ticket_audits", "ticket_field_history", "ticket_tag_history")

#: Release 0.1 run in a subprocess whose `zendesk` is 0.1's (its tree first on sys.path).
RUN_0_1 = """
import json, sys
import dlt
from zendesk import zendesk_support
args = json.loads(sys.argv[1])
kind, target = args["destination"]
destination = dlt.destinations.duckdb(target) if kind == "duckdb" else dlt.destinations.postgres(target)
pipeline = dlt.pipeline(pipeline_name=args["name"], pipelines_dir=args["pipelines_dir"],
                        destination=destination, dataset_name=args["dataset"])
pipeline.run(zendesk_support(**args["source"]))
"""

Destination = Tuple[str, str]


def release_0_1_tree(tmp_path: Any) -> str:
    """Release 0.1's files, exported from git (skip when the clone lacks that commit)."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to export release 0.1")
    found = subprocess.run(["git", "cat-file", "-e", f"{RELEASE_0_1}^{{commit}}"], cwd=REPO_ROOT, capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"commit {RELEASE_0_1} (release 0.1) is not in this clone (a shallow clone?)")
    tree = tmp_path / "release_0_1"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", RELEASE_0_1], cwd=REPO_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return str(tree)


def run_0_1(tree: str, fake: FakeZendesk, name: str, pipelines_dir: str, destination: Destination, dataset: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=tree, RUNTIME__LOG_LEVEL="ERROR")
    args = dict(name=name, pipelines_dir=pipelines_dir, destination=destination, dataset=dataset, source=source_args(fake))
    done = subprocess.run(
        [sys.executable, "-c", RUN_0_1, json.dumps(args)], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


def pipeline_on(name: str, pipelines_dir: str, destination: Destination, dataset: str) -> dlt.Pipeline:
    kind, target = destination
    factory = dlt.destinations.duckdb(target) if kind == "duckdb" else dlt.destinations.postgres(target)
    return dlt.pipeline(pipeline_name=name, pipelines_dir=pipelines_dir, destination=factory, dataset_name=dataset)


def changed_run(pipeline: dlt.Pipeline, fake: FakeZendesk) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Change the fake, run this release: the requests per endpoint and rows per table it read."""
    fake.mutate(seed=2, fraction=0.05)
    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake)))
    return fake.request_counts(), dict(pipeline.last_trace.last_normalize_info.row_counts)


@pytest.fixture(params=["duckdb", "postgres"])
def destination(request: Any, tmp_path: Any) -> Iterator[Callable[[str], Destination]]:
    """Where a pipeline's dataset goes: a DuckDB file, or Postgres (schemas dropped after)."""
    if request.param == "duckdb":
        yield lambda name: ("duckdb", str(tmp_path / f"{name}.duckdb"))
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield lambda name: ("postgres", POSTGRES_URL)


def test_an_upgrade_from_0_1_keeps_the_rows_and_reads_only_what_changed(
    tmp_path: Any, destination: Callable[[str], Destination]
) -> None:
    tree = release_0_1_tree(tmp_path)
    pipelines_dir = str(tmp_path / "pipelines")
    dataset = f"zd_migration_{uuid.uuid4().hex[:8]}"
    now = time.time() - 3600  # both fakes hold the same account
    upgraded_at, reference_at = destination("upgraded"), destination("reference")
    try:
        with FakeZendesk(seed=1, tickets=60, now=now) as fake:
            run_0_1(tree, fake, "zd_upgraded", pipelines_dir, upgraded_at, dataset)
            upgraded = pipeline_on("zd_upgraded", pipelines_dir, upgraded_at, dataset)
            assert "package_version" not in upgraded.state["sources"]["zendesk"]  # what 0.1 left
            upgrade_requests, upgrade_rows = changed_run(upgraded, fake)
            truth = fake.ground_truth()
            assert_matches_truth(upgraded, truth)  # every table, no duplicate keys
            assert upgraded.state["sources"]["zendesk"]["package_version"] == __version__

        with FakeZendesk(seed=1, tickets=60, now=now) as fake:
            reference = pipeline_on("zd_reference", pipelines_dir, reference_at, f"{dataset}_ref")
            reference.run(zendesk_support(**source_args(fake)))
            reference_requests, reference_rows = changed_run(reference, fake)
            assert ids(fake.ground_truth()) == ids(truth)  # the same account, the same change
    finally:
        drop_schemas(upgraded_at, dataset)

    # Requests: each endpoint as often as the incremental run, but one more for a list 0.1
    # fingerprinted that differs now (read again with nulls: 0.1's fingerprints hashed them).
    lists_of_0_1 = {
        "/api/v2" + TABLES_BY_NAME[name].endpoint.path
        for name in TABLES_OF_0_1
        if TABLES_BY_NAME[name].change_detection is ChangeDetection.FINGERPRINT
    }
    assert set(upgrade_requests) == set(reference_requests)
    for endpoint, count in upgrade_requests.items():
        allowed = reference_requests[endpoint] + (1 if endpoint in lists_of_0_1 else 0)
        assert count <= allowed, (endpoint, count, reference_requests[endpoint])

    # Rows: a table 0.1 loaded reads what the incremental run reads, but the named ones,
    # which read every row once; a table new in 0.2 gets its first, full load.
    for table in select_tables(None):
        got = upgrade_rows.get(table, 0)
        if table in RELOADED_ONCE or table not in TABLES_OF_0_1:
            assert got == len(truth[table]), (table, got, len(truth[table]))
        else:
            assert got == reference_rows.get(table, 0), (table, got, reference_rows.get(table, 0))
    quiet_lists = [t for t in ("macros", "ticket_fields", "ticket_forms") if not reference_rows.get(t)]
    assert quiet_lists, "the change touched every list; the no-reload check of lists proves nothing"
    assert any(reference_rows.get(table, 0) < len(truth[table]) for table in RELOADED_ONCE)


def test_the_tables_an_upgrade_reads_once_are_named_in_the_changelog() -> None:
    with open(os.path.join(REPO_ROOT, "CHANGELOG.md")) as changelog:
        text = changelog.read()
    section = text.split("### Upgrading from 0.1", 1)[1].split("\n## ", 1)[0]
    missing = [table for table in RELOADED_ONCE if f"`{table}`" not in section]
    assert not missing, f"CHANGELOG.md's 'Upgrading from 0.1' does not name {missing}"


def ids(truth: Dict[str, Any]) -> Dict[str, Any]:
    """The keys of each table's rows (timestamps of a change follow the wall clock)."""
    return {table: sorted(str(row[TABLES_BY_NAME[table].primary_key]) for row in rows) for table, rows in truth.items()}


def drop_schemas(destination: Destination, dataset: str) -> None:
    if destination[0] != "postgres":
        return
    import psycopg2  # the Postgres driver dlt's postgres destination uses

    with psycopg2.connect(POSTGRES_URL) as connection, connection.cursor() as cursor:
        for schema in (dataset, f"{dataset}_ref", f"{dataset}_staging", f"{dataset}_ref_staging"):
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
