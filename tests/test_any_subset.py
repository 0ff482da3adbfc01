"""Any subset of tables, chosen by any means, loses nothing.

`source.with_resources(...)` (what Dagster's asset selection and dlt's Airflow task split
do) may select one table of an export that several tables share. Each such table keeps
its own position in the shared reader, so a later run of the whole source still brings
every change to the table that was left out, on the plain `pipeline.run`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import source_args
from tests.helpers.truth import assert_matches_truth
from zendesk import zendesk_support
from zendesk.resources import TABLES_OF_0_1
from zendesk.tables.registry import TABLES, siblings

#: Every table that shares its export with another table (derived from the registry).
SHARED = [spec.name for spec in TABLES if len(siblings(spec.name)) > 1]


def test_the_registry_has_shared_exports() -> None:
    assert SHARED, "no table shares an export: this module would test nothing"


@pytest.mark.parametrize("table", SHARED)
def test_one_sibling_alone_then_the_whole_source_equals_the_truth(fake: Any, make_pipeline: Any, table: str) -> None:
    pipeline = make_pipeline(name=f"zd_subset_{table}")
    left_out = [name for name in siblings(table) if name != table]

    def run_alone() -> None:
        info = pipeline.run(zendesk_support(**source_args(fake)).with_resources(table))
        assert not info.has_failed_jobs
        loaded = set(pipeline.default_schema.data_table_names())
        assert table in loaded and not loaded & set(left_out), loaded

    run_alone()  # a first run of one sibling: the others have never been read
    assert fake.mutate(seed=81, fraction=0.05)["tickets_updated"]
    run_alone()  # the selected sibling moves on; the others stay where they were
    assert fake.mutate(seed=82, fraction=0.05)["tickets_updated"]
    pipeline.run(zendesk_support(**source_args(fake)))
    assert_matches_truth(pipeline, fake.ground_truth())

    assert fake.mutate(seed=83, fraction=0.05)["tickets_updated"]
    pipeline.run(zendesk_support(**source_args(fake)))
    assert_matches_truth(pipeline, fake.ground_truth())


def test_a_pipeline_from_before_positions_per_table_resumes_where_it_stood(fake: Any, make_pipeline: Any) -> None:
    """A reader state of 0.1's shape (one dlt incremental, `after_cursor`,
    `next_start_time`) becomes the position of every sibling 0.1 had: an export whose
    siblings all date from 0.1 is not read again. A sibling added since (user_identities,
    the history tables) got nothing from 0.1, so it starts from the start, and its export
    is read once more (tests/test_migration.py runs 0.1 itself)."""
    pipeline = make_pipeline(name="zd_subset_legacy")
    pipeline.run(zendesk_support(**source_args(fake)))
    full_state = pipeline.state  # a copy: edited, then saved whole
    state = full_state["sources"]["zendesk"]["resources"]
    readers = {spec.reader for spec in TABLES if spec.reader}
    for reader in readers:
        position = next(iter(state[reader]["positions"].values()))
        legacy = {"incremental": {"x": {}}, "drained": True}
        if position["cursor"] is None:
            legacy["next_start_time"] = position["time"]
        else:
            cursor = next(s.endpoint for s in TABLES if s.reader == reader).export_cursor
            legacy["incremental"] = {cursor: {"last_value": position["time"]}}
            legacy["after_cursor"] = position["cursor"]
        state[reader] = legacy
    pipeline._save_state(full_state)  # what an upgraded pipeline finds on disk
    pipeline.run(zendesk_support(**source_args(fake)))
    counts = pipeline.last_trace.last_normalize_info.row_counts
    truth = fake.ground_truth()
    # A time-based export repeats its last second (merge makes that harmless); nothing more.
    new_siblings = {spec.reader for spec in TABLES if spec.reader and spec.name not in TABLES_OF_0_1}
    again = {spec.name: counts.get(spec.name, 0) for spec in TABLES if spec.reader and spec.reader not in new_siblings}
    assert again and all(n * 10 < len(truth[table]) for table, n in again.items()), f"an export was read again: {again}"
    for spec in TABLES:
        if spec.reader in new_siblings and spec.name not in TABLES_OF_0_1:
            assert counts.get(spec.name, 0) == len(truth[spec.name]), spec.name
    assert_matches_truth(pipeline, truth)
