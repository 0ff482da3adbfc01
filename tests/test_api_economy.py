"""The run's rate budget against a fake that enforces Zendesk's limits."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.helpers import query, sync
from zendesk_fake import FakeZendesk

EXPORT = "/api/v2/incremental/ticket_metric_events"


@pytest.fixture
def account() -> Iterator[FakeZendesk]:
    """Large enough that the metric events export spans several pages."""
    with FakeZendesk(seed=4, tickets=500) as server:
        yield server


def test_export_pace_holds_across_batches(account: FakeZendesk, make_pipeline: Any) -> None:
    # One page per batch and one export request per half second, enforced by the fake. Each
    # batch builds a new source; if each brought a fresh budget, the next batch's first
    # request would follow the last one at once and be refused.
    account.configure(export_rate_limit_per_minute=1, rate_window_seconds=0.5)
    pipeline = make_pipeline()
    result = sync(
        pipeline,
        account,
        tables=["ticket_metric_events"],
        batch_pages=1,
        export_requests_per_minute=1,
        rate_limit_window_seconds=0.5,
    )
    pages = account.request_counts()[EXPORT]
    assert result.batches == pages >= 3
    throttled = {key: n for key, n in account.status_counts().items() if key.startswith("429")}
    assert throttled == {}
    ids = [row[0] for row in query(pipeline, "select id from {t:ticket_metric_events}")]
    assert sorted(ids) == sorted(event["id"] for event in account.ground_truth()["ticket_metric_events"])


def test_exports_share_one_pace_by_default(account: FakeZendesk, make_pipeline: Any) -> None:
    # The fake counts all exports against one limit, the stricter reading of Zendesk's
    # documentation; the source's default paces all exports as one and is never refused.
    account.configure(export_rate_limit_per_minute=2, rate_window_seconds=0.4, export_rate_scope="shared")
    tables = ["tickets", "users", "organizations", "ticket_metric_events", "ticket_comments"]
    pipeline = make_pipeline()
    sync(pipeline, account, tables=tables, export_requests_per_minute=2, rate_limit_window_seconds=0.4)
    exports = {path: n for path, n in account.request_counts().items() if "/incremental/" in path}
    assert len(exports) == 5 and sum(exports.values()) >= 8
    throttled = {key: n for key, n in account.status_counts().items() if key.startswith("429")}
    assert throttled == {}
    loaded = query(pipeline, "select count(*) from {t:ticket_metric_events}")[0][0]
    assert loaded == len(account.ground_truth()["ticket_metric_events"])
