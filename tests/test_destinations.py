"""Loading into a real SQL server: PostgreSQL on 127.0.0.1:5432 (skipped where none answers)."""

from __future__ import annotations

import uuid
from typing import Any

import dlt
import pytest

from tests.helpers import POSTGRES_URL, query, sync
from tests.helpers.truth import assert_matches_truth

pytestmark = pytest.mark.postgres


def test_postgres_holds_ground_truth_after_full_and_merge_runs(fake: Any, make_pipeline: Any) -> None:
    dataset = f"zendesk_{uuid.uuid4().hex[:8]}"
    pipeline = make_pipeline(name="zd_pg", destination=dlt.destinations.postgres(POSTGRES_URL), dataset=dataset)
    try:
        sync(pipeline, fake)
        assert_matches_truth(pipeline, fake.ground_truth())
        changes = fake.mutate(seed=51, fraction=0.05)
        sync(pipeline, fake)
        assert_matches_truth(pipeline, fake.ground_truth())
        updated = changes["tickets_updated"][0]
        expected = next(t for t in fake.ground_truth()["tickets"] if t["id"] == updated)
        assert query(pipeline, f"select status, generated_timestamp from {{t:tickets}} where id = {updated}") == [
            (expected["status"], expected["generated_timestamp"])
        ]
        columns = pipeline.default_schema.get_table_columns("tickets")
        custom = [c for c in columns if c.startswith("custom_")]
        assert custom and any(columns[c]["data_type"] == "bool" for c in custom)
    finally:
        with pipeline.sql_client() as client:
            client.drop_dataset()
