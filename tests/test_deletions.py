"""Rows that vanish from Zendesk's small lists are deleted with dlt's cdc merge, and a
deleted ticket's metrics with a merge scoped to the tickets of the load: no table
carries a tombstone column that is NULL in every row."""

from __future__ import annotations

from typing import Any, Dict, List

from tests.helpers import column_types, query, sync
from zendesk_fake import FakeZendesk

LISTS = ("groups", "group_memberships", "macros", "ticket_fields", "ticket_forms")


def _internal_columns(pipeline: Any) -> Dict[str, List[str]]:
    """Columns of ours (not dlt's `_dlt_*`) that start with an underscore, per table."""
    found: Dict[str, List[str]] = {}
    for table, columns in column_types(pipeline).items():
        ours = [c for c in columns if c.startswith("_") and not c.startswith("_dlt")]
        if ours:
            found[table] = ours
    return found


def test_vanished_rows_are_deleted_without_a_tombstone_column(fake: FakeZendesk, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake)
    changes = fake.mutate(seed=41, fraction=0.02)
    removed = changes["group_memberships_removed"]
    assert removed

    sync(pipeline, fake)

    truth = fake.ground_truth()
    for table in LISTS:
        loaded = {r[0] for r in query(pipeline, f"select id from {{t:{table}}}")}
        assert loaded == {r["id"] for r in truth[table]}, table
    gone = ",".join(map(str, removed))
    assert query(pipeline, f"select count(*) from {{t:group_memberships}} where id in ({gone})") == [(0,)]
    deleted = changes["tickets_deleted"]
    assert deleted
    ids = ",".join(map(str, deleted))
    assert query(pipeline, f"select count(*) from {{t:ticket_metrics}} where ticket_id in ({ids})") == [(0,)]
    assert query(pipeline, "select count(*) from {t:ticket_metrics} where id < 0") == [(0,)], "tombstones stored"
    assert query(pipeline, "select count(*) from {t:ticket_metrics}") == [(len(truth["ticket_metrics"]),)]
    assert _internal_columns(pipeline) == {}


def test_an_unchanged_list_loads_nothing(fake: FakeZendesk, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=list(LISTS))
    loads = {t: query(pipeline, f"select distinct _dlt_load_id from {{t:{t}}}") for t in LISTS}
    sync(pipeline, fake, tables=list(LISTS))
    assert {t: query(pipeline, f"select distinct _dlt_load_id from {{t:{t}}}") for t in LISTS} == loads


def test_a_list_that_became_empty_empties_its_table(fake: FakeZendesk, make_pipeline: Any) -> None:
    pipeline = make_pipeline()
    sync(pipeline, fake, tables=["macros"])
    assert query(pipeline, "select count(*) from {t:macros}")[0][0] > 0
    fake.account.macros.clear()
    fake.refresh()

    sync(pipeline, fake, tables=["macros"])

    assert query(pipeline, "select count(*) from {t:macros}") == [(0,)]
    assert query(pipeline, "select count(*) from {t:macros__actions}") == [(0,)]
    fake.account.macros.append({"id": 1, "title": "Back", "active": True, "actions": [{"field": "status", "value": "open"}]})
    fake.refresh()
    sync(pipeline, fake, tables=["macros"])
    assert query(pipeline, "select id from {t:macros}") == [(1,)]
