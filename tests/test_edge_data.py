"""Data at the edges, injected into the fake before a sync: 200 custom fields on one ticket,
10,000 tags on one ticket, emoji and right-to-left text, null and missing keys, a custom
field whose type changes between runs, and more rows in one second than an export page
holds. Every replica must still equal the fake's ground truth row for row."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List

import pytest

from tests.helpers import edge_data, query, source_args
from zendesk_fake.generator import DAY, iso
from tests.helpers.truth import (
    assert_matches_truth,
    assert_ticket_custom_fields,
    expected_custom_value,
    plain,
    ticket_custom_columns,
)
from zendesk import select_tables, zendesk_support
from zendesk.run import run_until_drained

#: dlt type of each Zendesk ticket field type (README, "Custom fields").
DLT_TYPES = {
    "text": "text", "textarea": "text", "regexp": "text", "tagger": "text", "checkbox": "bool",
    "integer": "bigint", "lookup": "bigint", "decimal": "double", "date": "date", "multiselect": "json",
}

#: Bound on batches for syncs that could loop: a sync that does not drain fails in seconds
#: with "Exports still not drained" instead of hanging until the test timeout.
MAX_BATCHES = 6


def bounded_sync(pipeline: Any, fake: Any, tables: Any = None, **overrides: Any) -> Any:
    args = source_args(fake, **overrides)
    return run_until_drained(
        pipeline,
        lambda batch: zendesk_support(**args).with_resources(*batch),
        select_tables(tables),
        max_batches=MAX_BATCHES,
    )


def ticket_row(pipeline: Any, ticket_id: int, columns: List[str]) -> Dict[str, Any]:
    selected = ", ".join(f'"{c}"' for c in columns)
    rows = query(pipeline, f"select {selected} from {{t:tickets}} where id = {ticket_id}")
    assert len(rows) == 1, f"ticket {ticket_id}: {len(rows)} rows"
    return dict(zip(columns, rows[0]))


def test_ticket_with_200_custom_fields_of_mixed_types_loads_every_value_typed(fake: Any, make_pipeline: Any) -> None:
    ticket_id, values = edge_data.add_wide_ticket(fake, n_fields=200)
    assert len(values) >= 210 and len({t for t, _ in values.values()}) == len(DLT_TYPES)
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    assert_ticket_custom_fields(pipeline, fake)  # every ticket, every field

    columns = ticket_custom_columns(pipeline)
    assert set(values) <= set(columns), "a custom field got no column"
    assert len({columns[f] for f in values}) == len(values), "two fields share a column"
    schema = pipeline.default_schema.get_table_columns("tickets")
    row = ticket_row(pipeline, ticket_id, [columns[f] for f in values])
    for field_id, (ftype, value) in values.items():
        column = columns[field_id]
        assert schema[column]["data_type"] == DLT_TYPES[ftype], (column, ftype, schema[column])
        stored = row[column]
        if ftype == "multiselect" and isinstance(stored, str):
            stored = json.loads(stored)
        assert plain(stored) == expected_custom_value(ftype, value), (column, ftype, stored, value)
    assert sum(v is not None for v in row.values()) == len(values)


def test_ticket_with_10000_tags_keeps_every_tag_in_order(fake: Any, make_pipeline: Any) -> None:
    ticket_id, tags = edge_data.add_many_tags(fake, n_tags=10_000)
    assert len(tags) >= 10_000
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())  # includes the tags table: 10,000+ names
    stored = query(
        pipeline,
        "select c.value from {t:tickets__tags} c join {t:tickets} p on c._dlt_parent_id = p._dlt_id"
        f" where p.id = {ticket_id} order by c._dlt_list_idx",
    )
    assert [r[0] for r in stored] == tags
    assert query(pipeline, "select count(*) from {t:tags} where name like 'edge\\_%' escape '\\'")[0][0] == 9_000


def test_emoji_and_right_to_left_text_round_trip_exactly(fake: Any, make_pipeline: Any) -> None:
    ids = edge_data.write_rtl_and_emoji(fake)
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    subject, raw_subject, description = query(
        pipeline, f"select subject, raw_subject, description from {{t:tickets}} where id = {ids['ticket_id']}"
    )[0]
    assert subject == raw_subject == edge_data.RTL_EMOJI_SUBJECT
    assert description == edge_data.RTL_EMOJI_BODY
    body, plain_body, html_body, ticket_id = query(
        pipeline, f"select body, plain_body, html_body, ticket_id from {{t:ticket_comments}} where id = {ids['comment_id']}"
    )[0]
    assert body == plain_body == edge_data.RTL_EMOJI_BODY and ticket_id == ids["ticket_id"]
    assert edge_data.RTL_EMOJI_BODY.replace("\n", "<br>") in html_body
    assert query(pipeline, f"select name from {{t:users}} where id = {ids['user_id']}") == [(edge_data.RTL_USER_NAME,)]
    # Nothing was re-encoded on the way: same code points, astral ones and marks included.
    assert [len(subject), len(body)] == [len(edge_data.RTL_EMOJI_SUBJECT), len(edge_data.RTL_EMOJI_BODY)]


def test_null_and_missing_keys_load_as_nulls(fake: Any, make_pipeline: Any) -> None:
    ids = edge_data.strip_and_null(fake)
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    missing = ["subject", "raw_subject", "priority", "type", "assignee_id", "group_id", "organization_id",
               "due_at", "external_id", "problem_id", "recipient", "via__channel"]
    row = ticket_row(pipeline, ids["ticket_id"], ["status", "requester_id", *missing])
    assert row["status"] is not None and row["requester_id"] is not None
    assert {k: v for k, v in row.items() if k in missing and v is not None} == {}
    assert query(pipeline, f"select email, name is not null from {{t:users}} where id = {ids['null_email_user']}") == [(None, True)]
    user_columns = [c for c in pipeline.default_schema.get_table_columns("users") if c.startswith("custom_") or c == "phone"]
    assert user_columns, "users have no custom or phone columns: nothing to compare"
    selected = ", ".join(f'"{c}"' for c in user_columns)
    assert set(query(pipeline, f"select {selected} from {{t:users}} where id = {ids['bare_user']}")[0]) == {None}
    assert query(pipeline, f"select name, id from {{t:organizations}} where id = {ids['org_id']}") == [(None, ids["org_id"])]


def test_custom_field_type_change_between_runs_puts_new_values_in_a_variant_column(fake: Any, make_pipeline: Any) -> None:
    field = next(f for f in fake.account.ticket_fields if f["type"] == "integer")
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake)
    column = ticket_custom_columns(pipeline)[str(field["id"])]
    assert pipeline.default_schema.get_table_columns("tickets")[column]["data_type"] == "bigint"
    before = dict(query(pipeline, f'select id, "{column}" from {{t:tickets}}'))
    assert sum(v is not None for v in before.values()) > 50

    # An admin turns the integer field into a text field; agents then type text into it.
    stamp = fake.account.next_stamp()
    field["type"] = "text"
    field["updated_at"] = iso(stamp)
    new_values = {"about 40 units ✓": None, "unknown – ask the customer": None, "123": None, "": None}
    for ticket, value in zip(edge_data.live_tickets(fake)[:4], list(new_values)):
        ticket["custom_fields"] = [dict(e, value=value) if e["id"] == field["id"] else e for e in ticket["custom_fields"]]
        ticket["updated_at"] = iso(stamp)
        ticket["generated_timestamp"] = stamp
        new_values[value] = ticket["id"]
    fake.refresh()

    bounded_sync(pipeline, fake)  # must not fail
    assert_matches_truth(pipeline, fake.ground_truth())
    schema = pipeline.default_schema.get_table_columns("tickets")
    variant = f"{column}__v_text"
    assert variant in schema, f"no variant column; columns like it: {[c for c in schema if c.startswith(column)]}"
    stored = {r[0]: (r[1], r[2]) for r in query(pipeline, f'select id, "{column}", "{variant}" from {{t:tickets}}')}
    assert stored[new_values["about 40 units ✓"]] == (None, "about 40 units ✓")
    assert stored[new_values["unknown – ask the customer"]] == (None, "unknown – ask the customer")
    assert stored[new_values["123"]] in ((123, None), (None, "123"))
    assert stored[new_values[""]] == (None, None)
    changed = set(new_values.values())
    assert {t: v[0] for t, v in stored.items() if t not in changed} == {t: v for t, v in before.items() if t not in changed}
    bounded_sync(pipeline, fake)  # and the run after it is fine too
    assert_matches_truth(pipeline, fake.ground_truth())


SAME_SECOND = [
    pytest.param("ticket_metric_events", "/api/v2/incremental/ticket_metric_events", id="ticket_metric_events"),
    pytest.param("organizations", "/api/v2/incremental/organizations", id="organizations"),
    # ticket_audits is append-only: a row read twice would stay twice.
    pytest.param("ticket_audits", "/api/v2/incremental/ticket_events", id="ticket_events"),
]


@pytest.mark.parametrize("table, endpoint", SAME_SECOND)
def test_more_rows_in_one_second_than_a_page_load_exactly_once(fake: Any, make_pipeline: Any, table: str, endpoint: str) -> None:
    # 1,500 rows share one second in the middle of the export (rows before and after it).
    heavy_second = fake.account.end - 100 * DAY
    first = edge_data.add_same_second_rows(fake, table, 1_500, heavy_second)
    truth = fake.ground_truth()
    assert sum(1 for r in truth[table] if r["id"] in set(first)) == 1_500
    pipeline = make_pipeline()
    fake.reset_counts()
    bounded_sync(pipeline, fake)
    assert_matches_truth(pipeline, fake.ground_truth())
    ids = [r[0] for r in query(pipeline, f"select id from {{t:{table}}}")]
    assert len(ids) == len(set(ids)) == len(truth[table])
    assert set(first) <= set(ids)
    pages = math.ceil(len(truth[table]) / 1000)
    # Each heavy second costs one repeated page at most; no request loop.
    assert fake.request_counts()[endpoint] <= pages + 2, fake.request_counts()

    # Another 1,500 at one fresh second, picked up by the next incremental run.
    second = edge_data.add_same_second_rows(fake, table, 1_500, fake.account.next_stamp())
    fake.reset_counts()
    bounded_sync(pipeline, fake, tables=[table])  # only this export changed
    assert_matches_truth(pipeline, fake.ground_truth())
    ids = [r[0] for r in query(pipeline, f"select id from {{t:{table}}}")]
    assert len(ids) == len(set(ids)) == len(truth[table]) + 1_500
    assert set(second) <= set(ids)
    assert fake.request_counts()[endpoint] <= 4, fake.request_counts()


@pytest.mark.parametrize("table, endpoint", [SAME_SECOND[0], SAME_SECOND[2]])  # with and without end_of_stream
def test_more_rows_in_one_second_than_a_page_with_one_page_batches(fake: Any, make_pipeline: Any, table: str, endpoint: str) -> None:
    first = edge_data.add_same_second_rows(fake, table, 1_500, fake.account.end - 100 * DAY)
    pipeline = make_pipeline()
    bounded_sync(pipeline, fake, tables=[table], batch_pages=1)
    ids = [r[0] for r in query(pipeline, f"select id from {{t:{table}}}")]
    truth = fake.ground_truth()[table]
    assert len(ids) == len(set(ids)) == len(truth)
    assert set(first) <= set(ids)
