"""Every export ends only when Zendesk says so: with pages far shorter than asked for
(Zendesk promises no full pages), one plain run still loads every row of every export."""

from __future__ import annotations

from typing import Any, Callable

from tests.helpers import query, source_args
from zendesk_fake import FakeZendesk
from zendesk import zendesk_support

#: The tables read from incremental exports.
PAGE_ROWS = 5
EXPORTS = ("tickets", "ticket_metric_events", "users", "organizations", "ticket_audits", "ticket_comments")


def test_short_export_pages_load_every_row_in_one_run(fake: FakeZendesk, make_pipeline: Callable[..., Any]) -> None:
    fake.configure(export_page_rows=PAGE_ROWS)
    truth = fake.ground_truth()
    pipeline = make_pipeline("short_pages")

    pipeline.run(zendesk_support(**source_args(fake, batch_pages=10_000))).raise_on_failed_jobs()

    for table in EXPORTS:
        expected = {row["id"] for row in truth[table]}
        assert len(expected) > PAGE_ROWS, f"{table}: too few rows to need several pages"
        loaded = {row[0] for row in query(pipeline, f"select id from {{t:{table}}}")}
        assert loaded == expected, (table, len(loaded), len(expected))
    counts = fake.request_counts()
    events = len(truth["ticket_metric_events"])
    assert counts["/api/v2/incremental/ticket_metric_events"] > events // (2 * PAGE_ROWS), "short pages were served"
