"""The benchmark's request floor counts exactly the endpoints of the tables a run selects
(the registry's defaults when none are named), and a plain default run stays on it: a full
sync makes the floor's requests (a time-based export one or two more, for its closing
empty page), a sync with nothing changed one request per endpoint."""

from __future__ import annotations

from typing import Any, Callable

import dlt

from benchmark.floor import request_floor, tables_read
from tests.helpers import source_args
from zendesk import zendesk_support
from zendesk.tables.registry import API_PREFIX, DEFAULT_TABLES, TABLES_BY_NAME, Pagination
from zendesk_fake.tables import TABLES_BY_NAME as FAKE_TABLES


def _template(table: str) -> str:
    fake_table = FAKE_TABLES[table]
    return FAKE_TABLES[fake_table.served_by].template if fake_table.served_by else fake_table.template


def test_the_floor_counts_the_endpoints_of_the_selected_tables_only(fake: Any) -> None:
    default = request_floor(fake)
    assert set(default) == {_template(table) for table in tables_read()}
    assert set(tables_read()) >= set(DEFAULT_TABLES)
    off = [name for name, spec in TABLES_BY_NAME.items() if not spec.default and _template(name) not in default]
    assert len(off) >= 7 and "help_center_articles" in off and "side_conversations" in off
    assert set(fake.minimum_requests()) - set(default) == {_template(name) for name in off}
    side = request_floor(fake, ["side_conversations"])
    assert set(side) == {API_PREFIX + "/incremental/tickets/cursor", API_PREFIX + "/ticket_fields",
                         API_PREFIX + "/tickets/{id}/side_conversations"}


def test_a_default_run_makes_the_floor_s_requests(fake: Any, make_pipeline: Callable[..., dlt.Pipeline]) -> None:
    floor = request_floor(fake)
    time_exports = {
        API_PREFIX + spec.endpoint.path for spec in TABLES_BY_NAME.values()
        if spec.default and spec.endpoint.pagination is Pagination.TIME_EXPORT
    }
    pipeline = make_pipeline("floor")
    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake))).raise_on_failed_jobs()
    counts = fake.request_counts()
    assert set(counts) == set(floor)
    over = {endpoint: (counts[endpoint], floor[endpoint]) for endpoint in floor if counts[endpoint] != floor[endpoint]}
    assert all(endpoint in time_exports and n <= least + 2 for endpoint, (n, least) in over.items()), over

    fake.reset_counts()
    pipeline.run(zendesk_support(**source_args(fake))).raise_on_failed_jobs()
    assert fake.request_counts() == {endpoint: 1 for endpoint in floor}
