"""The table map drives the fake: it covers every table of the source's registry at the
same endpoint, the server serves each entry as mapped, and the benchmark's minimum of
requests comes from it (so a table missing from the map cannot silently understate it)."""

from __future__ import annotations

import math

import requests

from zendesk import TABLE_NAMES
from zendesk.tables.registry import FIELD_DEFINITIONS, TABLES_BY_NAME
from zendesk_fake import TABLES, TRUTH_TABLES, FakeZendesk, Paging
from zendesk_fake.tables import ENDPOINT_TABLES, PAGE_SIZES

from .helpers import get_json


def test_the_map_has_every_table_of_the_source_at_its_endpoint() -> None:
    assert list(TRUTH_TABLES) == list(dict.fromkeys(TRUTH_TABLES)), "a table is mapped twice"
    assert set(TRUTH_TABLES) == set(TABLE_NAMES)
    fake = {t.name: t for t in TABLES}
    for name in TABLE_NAMES:
        endpoint = TABLES_BY_NAME[name].endpoint
        assert (fake[name].path, fake[name].data_key) == (endpoint.path, endpoint.data_key), name
    served = {t.path: t.data_key for t in ENDPOINT_TABLES}
    for endpoint, _plan_gated in FIELD_DEFINITIONS.values():
        assert served.get(endpoint.path) == endpoint.data_key, endpoint.path


def test_every_mapped_endpoint_is_served_under_its_data_key(fake: FakeZendesk, session: requests.Session) -> None:
    first_page = {
        Paging.CURSOR_EXPORT: {"start_time": 0},
        Paging.TIME_EXPORT: {"start_time": 0},
        Paging.CURSOR_LIST: {"page[size]": 100},
        Paging.OFFSET_LIST: {},
        Paging.SINGLE_PAGE: {},
    }
    truth = fake.ground_truth()
    for table in ENDPOINT_TABLES:
        template = table.template
        if table.per_ticket is not None:  # listed per ticket: ask for the first that has rows
            template = template.format(id=truth[table.name][0]["ticket_id"])
        elif table.parent is not None:  # listed per parent row: ask for the first parent's
            template = template.format(id=truth[table.parent[0]][0]["id"])
        page = get_json(session, fake.base_url + template, first_page[table.paging])
        assert page[table.data_key], table.name


def test_minimum_requests_is_rows_over_the_largest_page_for_each_endpoint() -> None:
    fake = FakeZendesk(seed=2, tickets=400)  # over 1,000 audits: the ticket events take two pages
    minimum = fake.minimum_requests()
    assert set(minimum) == {t.template for t in ENDPOINT_TABLES}
    truth = fake.ground_truth()
    tickets = TABLES_BY_NAME["tickets"].endpoint
    assert minimum["/api/v2" + tickets.path] == math.ceil(len(truth["tickets"]) / PAGE_SIZES[Paging.CURSOR_EXPORT])
    audits = math.ceil(len(truth["ticket_audits"]) / PAGE_SIZES[Paging.TIME_EXPORT])
    assert minimum["/api/v2/incremental/ticket_events"] == audits > 1
    assert minimum["/api/v2/slas/policies"] == 1
