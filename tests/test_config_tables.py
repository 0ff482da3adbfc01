"""The account-configuration tables (every registry table whose changes are found by
fingerprint: groups, macros, brands, triggers, ...), through the plain
`pipeline.run(zendesk_support(tables=...))` over HTTP against the fake, on DuckDB and
Postgres: row-exact after the first run, after rows change and vanish in Zendesk, and
idle runs cost one request per endpoint and load nothing. The table list comes from the
registry, so a table added there is covered here without an edit."""

from __future__ import annotations

import uuid
from typing import Any, Iterator, List

import dlt
import pytest

from tests.helpers import DESTINATIONS, POSTGRES_URL, query, source_args
from tests.helpers.truth import assert_matches_truth
from zendesk import zendesk_support
from zendesk.tables.registry import API_PREFIX, TABLES, ChangeDetection
from zendesk_fake import FakeZendesk
from zendesk_fake.tables import DATA_TABLES

CONFIG = [spec for spec in TABLES if spec.change_detection is ChangeDetection.FINGERPRINT]
CONFIG_TABLES: List[str] = [spec.name for spec in CONFIG]

@pytest.fixture
def pipeline(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[dlt.Pipeline]:
    kind = request.param
    destination = (
        dlt.destinations.postgres(POSTGRES_URL) if kind == "postgres" else dlt.destinations.duckdb(str(tmp_path / "c.duckdb"))
    )
    made = dlt.pipeline(
        pipeline_name="zd_config",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=destination,
        dataset_name=f"zendesk_config_{uuid.uuid4().hex[:8]}",
    )
    try:
        yield made
    finally:
        if kind == "postgres":
            with made.sql_client() as client:
                client.drop_dataset()


def run(pipeline: dlt.Pipeline, fake: FakeZendesk) -> Any:
    info = pipeline.run(zendesk_support(tables=CONFIG_TABLES, **source_args(fake)))
    info.raise_on_failed_jobs()
    return info


def loaded_tables(info: Any) -> set:
    return {
        job.job_file_info.table_name
        for package in info.load_packages
        for job in package.jobs["completed_jobs"]
        if not job.job_file_info.table_name.startswith("_dlt")
    }


def test_the_fakes_fixed_lists_are_fingerprinted_tables() -> None:
    assert DATA_TABLES and set(DATA_TABLES) <= set(CONFIG_TABLES)


@pytest.mark.parametrize("pipeline", DESTINATIONS, indirect=True)
def test_config_tables_load_row_exact_then_follow_changes_and_deletions(
    fake: FakeZendesk, pipeline: dlt.Pipeline
) -> None:
    run(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth(), tables=CONFIG_TABLES)
    variants = query(pipeline, "select count(*) from {t:dynamic_content_items__variants}")[0][0]
    assert variants == sum(len(item["variants"]) for item in fake.ground_truth()["dynamic_content_items"])

    edits = fake.edit_lists()
    fake.mutate(seed=5, fraction=0.02)
    fake.add_custom_field("user", "integer")
    run(pipeline, fake)
    truth = fake.ground_truth()
    assert_matches_truth(pipeline, truth, tables=CONFIG_TABLES)
    for table, ids in edits.items():
        assert ids["deleted"], table
        assert not {row["id"] for row in truth[table]} & set(ids["deleted"]), table

    fake.reset_counts()
    idle = run(pipeline, fake)
    assert loaded_tables(idle) == set(), "nothing changed: nothing is loaded"
    truth = fake.ground_truth()
    expected = {
        API_PREFIX + spec.endpoint.path: len(truth[spec.per_parent.table]) if spec.per_parent else 1 for spec in CONFIG
    }
    assert fake.request_counts() == expected, "one request per list, and one per parent row for the tables listed per parent"
    assert_matches_truth(pipeline, truth, tables=CONFIG_TABLES)


def test_plan_gated_config_tables_are_skipped_with_a_warning(fake: FakeZendesk, tmp_path: Any) -> None:
    gated = [spec.name for spec in CONFIG if spec.plan_gated]
    fake.configure(plan_gated={name: 403 if i % 2 else 404 for i, name in enumerate(gated)})
    pipeline = dlt.pipeline(
        pipeline_name="zd_gated",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "g.duckdb")),
        dataset_name="zendesk_gated",
    )
    info = run(pipeline, fake)
    report = pipeline.state["sources"]["zendesk"]["run_report"]["skipped_tables"]
    skipped = set(gated) - {spec.name for spec in CONFIG if spec.defines_custom_fields}
    assert skipped <= set(report)
    open_tables = [name for name in CONFIG_TABLES if name not in gated]
    assert set(open_tables) <= loaded_tables(info)
    assert_matches_truth(pipeline, fake.ground_truth(), tables=open_tables)
