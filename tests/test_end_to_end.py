"""The real pipeline, over HTTP, against the fake Zendesk, into a DuckDB file: every table
must hold exactly the fake's ground truth, after a first run, after changes, and after a run
with nothing to do."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from tests.helpers import query, sync
from tests.helpers.truth import assert_matches_truth, assert_ticket_custom_fields, ticket_custom_columns
from zendesk import select_tables
from zendesk.tables.registry import TABLES


def table_counts(pipeline: Any) -> Dict[str, int]:
    return {t: query(pipeline, f"select count(*) from {{t:{t}}}")[0][0] for t in select_tables(None)}


def test_full_then_incremental_then_idle_runs_equal_ground_truth(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    assert_ticket_custom_fields(pipeline, fake)

    changes = fake.mutate(seed=11, fraction=0.05)
    assert changes
    fake.reset_counts()
    sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    assert_ticket_custom_fields(pipeline, fake)

    before = table_counts(pipeline)
    fake.reset_counts()
    sync(pipeline, fake)
    assert table_counts(pipeline) == before
    assert_matches_truth(pipeline, fake.ground_truth())
    idle_requests = fake.total_requests()
    # One request per endpoint of the registry (each list once, each export's empty page).
    loaded = set(select_tables(None))
    assert idle_requests <= len({spec.endpoint.path for spec in TABLES if spec.name in loaded}), fake.request_counts()


def test_new_custom_field_becomes_a_column_without_reset(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["tickets", "users", "organizations"])
    created = {kind: fake.add_custom_field(kind, "integer") for kind in ("ticket", "user", "organization")}
    sync(pipeline, fake, tables=["tickets", "users", "organizations"])
    ticket_column = ticket_custom_columns(pipeline)[str(created["ticket"]["id"])]
    for table, column in (
        ("tickets", ticket_column),
        ("users", f"custom_{created['user']['key']}"),
        ("organizations", f"custom_{created['organization']['key']}"),
    ):
        columns = pipeline.default_schema.get_table_columns(table)
        assert columns[column]["data_type"] == "bigint", (table, column)
        filled = query(pipeline, f"select count({column}) from {{t:{table}}}")[0][0]
        assert filled > 0, (table, column)


@pytest.mark.parametrize("table", ["tickets", "ticket_comments", "groups", "tags"])
def test_selecting_one_table_loads_it_and_its_siblings_only(fake: Any, make_pipeline: Any, table: str) -> None:
    from zendesk.tables.registry import siblings

    pipeline = make_pipeline()
    sync(pipeline, fake, tables=[table])
    loaded = {t for t in pipeline.default_schema.data_table_names() if not t.startswith("_dlt")}
    top_level = {t for t in loaded if "__" not in t}
    assert top_level == set(siblings(table))


def test_full_refresh_reloads_everything_from_the_start(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    first_loads = {row[0] for row in query(pipeline, "select load_id from {t:_dlt_loads}")}
    sync(pipeline, fake, refresh="drop_resources")
    assert_matches_truth(pipeline, fake.ground_truth())
    # Every row was fetched and loaded again, the hidden export readers' cursors included.
    for table in ("tickets", "ticket_metrics", "ticket_audits", "users", "groups", "ticket_fields"):
        loads = {row[0] for row in query(pipeline, f"select distinct _dlt_load_id from {{t:{table}}}")}
        assert loads and not loads & first_loads, table


def test_per_ticket_audits_mode_loads_full_audits_of_changed_tickets_only(fake: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["tickets"], audits_mode="per_ticket")
    truth = fake.ground_truth()
    live = {t["id"] for t in truth["tickets"] if t["status"] != "deleted"}
    expected = {a["id"] for a in truth["ticket_audits"] if a["ticket_id"] in live}
    rows = query(pipeline, "select id from {t:ticket_audits}")
    assert sorted(r[0] for r in rows) == sorted(expected)  # no duplicates, none missing
    assert fake.request_counts()["/api/v2/tickets/{id}/audits"] == len(live)

    changes = fake.mutate(seed=61, fraction=0.05)
    fake.reset_counts()
    sync(pipeline, fake, tables=["tickets"], audits_mode="per_ticket")
    changed = changes["tickets_updated"] + changes["tickets_created"] + changes["tickets_touched"]
    changed_live = set(changed) & {
        t["id"] for t in fake.ground_truth()["tickets"] if t["status"] != "deleted"
    }
    assert fake.request_counts()["/api/v2/tickets/{id}/audits"] == len(changed_live)
    truth = fake.ground_truth()
    ids = [r[0] for r in query(pipeline, "select id from {t:ticket_audits}")]
    assert len(ids) == len(set(ids)), "an audit was appended twice"
    expected = {a["id"] for a in truth["ticket_audits"] if a["ticket_id"] in live | changed_live}
    assert set(ids) == expected


def test_every_run_stamps_its_release_in_the_source_state(fake: Any, make_pipeline: Any) -> None:
    from zendesk import __version__, zendesk_support
    from tests.helpers import source_args

    pipeline = make_pipeline()
    pipeline.run(zendesk_support(**source_args(fake), tables=["groups"]))
    assert pipeline.state["sources"]["zendesk"]["package_version"] == __version__ != ""
