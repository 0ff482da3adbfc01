"""Progress lines, rate-limit notes and the stop request (zendesk/run/progress.py)."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any, Iterator, List

import pytest

from zendesk.run import progress
from zendesk.api.paginators import CursorExportPaginator, TimeExportPaginator

DAY = 86_400


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock(1_700_000_000.0)
    monkeypatch.setattr(progress, "time", SimpleNamespace(time=fake.time, monotonic=fake.monotonic))
    progress.reset()  # syncs of earlier tests in this process may have stopped mid-export
    yield fake
    progress.reset()


def messages(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "zendesk.progress"]


def time_paginator(next_start: int, more: bool = True) -> TimeExportPaginator:
    paginator = TimeExportPaginator(0)
    paginator.start_time = next_start
    paginator._has_next_page = more
    return paginator


def test_a_time_export_estimates_pages_and_time_left_from_the_span_covered(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    origin = int(clock.now) - 100 * DAY
    rows = [{"time": origin + i} for i in range(1000)]
    # Page 1 covers 20 of the 100 days: about 4 more pages of the same density.
    progress.export_page("ticket_metric_events", "time", time_paginator(origin + 20 * DAY), rows)
    clock.now += 60
    # Page 2 reaches day 50 a minute later: 50 days covered in 2 pages, 50 to go (2 pages, 2 min).
    progress.export_page("ticket_metric_events", "time", time_paginator(origin + 50 * DAY), rows)
    first, second = messages(caplog)
    assert first.startswith("ticket_metric_events: 1,000 rows so far (1 page), through ")
    assert "about 4 pages left" in first and "pace" not in first
    assert second.startswith("ticket_metric_events: 2,000 rows so far (2 pages)")
    assert "about 3 pages left, 3 min at the current pace" in second  # 50 days + the last minute


def test_a_cursor_export_says_it_has_no_count_and_a_drained_export_starts_afresh(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    paginator = CursorExportPaginator(0, None)
    paginator._has_next_page = True
    page = [{"generated_timestamp": 1_600_000_000}, {"generated_timestamp": 1_650_000_000}]
    progress.export_page("ticket_export", "generated_timestamp", paginator, page)
    paginator._has_next_page = False
    progress.export_page("ticket_export", "generated_timestamp", paginator, page)
    progress.export_page("ticket_export", "generated_timestamp", paginator, page)
    running, done, next_sync = messages(caplog)
    assert running == (
        "tickets + ticket_metrics: 2 rows so far (1 page), through 2022-04-15 05:20 UTC;"
        " Zendesk's cursor export gives no count, so no estimate of what is left"
    )
    assert done == "tickets + ticket_metrics: 4 rows (2 pages), export complete"
    assert next_sync == "tickets + ticket_metrics: 2 rows (1 page), export complete"


def test_a_long_rate_limit_wait_is_announced_once_while_it_lasts(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    progress.rate_wait(2.0, 10, 60)  # routine pacing: not worth a line
    progress.rate_wait(42.3, 10, 60)
    clock.now += 10
    progress.rate_wait(32.3, 10, 60)  # another thread in the same wait
    clock.now += 40
    progress.rate_wait(55.0, 10, 60)
    assert messages(caplog) == [
        "Waiting 43 s for Zendesk's rate limit (10 requests per 60 s); the run goes on by itself (Ctrl-C stops it).",
        "Waiting 55 s for Zendesk's rate limit (10 requests per 60 s); the run goes on by itself (Ctrl-C stops it).",
    ]


def test_a_stop_request_cuts_a_wait_short_and_refuses_further_requests(clock: Clock) -> None:
    progress.raise_if_stopped()  # nothing asked yet
    woke = threading.Event()

    def wait_a_minute() -> None:
        with pytest.raises(progress.RunCancelled):
            progress.pause(60)
        woke.set()

    sleeper = threading.Thread(target=wait_a_minute)
    sleeper.start()
    progress.request_stop()
    assert woke.wait(10), "the pause did not end on the stop request"
    sleeper.join()
    with pytest.raises(progress.RunCancelled):
        progress.raise_if_stopped()
    progress.reset()
    progress.raise_if_stopped()


def test_the_pacing_limiter_stops_waiting_on_a_stop_request(clock: Clock) -> None:
    from zendesk.api.rate_limit import RateBudget, RateLedger

    budget = RateBudget(1, 10, window=60.0, ledger=RateLedger(), clock=time.monotonic)
    budget.acquire("/api/v2/groups")
    errors: List[Any] = []

    def second_request() -> None:
        try:
            budget.acquire("/api/v2/groups")
        except progress.RunCancelled as exc:
            errors.append(exc)

    waiting = threading.Thread(target=second_request)
    waiting.start()
    progress.request_stop()
    waiting.join(10)
    assert not waiting.is_alive() and len(errors) == 1


def _wait_in_a_worker(seconds: float = 3600) -> "tuple[threading.Thread, List[BaseException]]":
    errors: List[BaseException] = []

    def wait_an_hour() -> None:
        try:
            progress.wait(seconds, "a test wait")
        except BaseException as exc:  # noqa: BLE001 - the test looks at what ended the wait
            errors.append(exc)

    worker = threading.Thread(target=wait_an_hour, daemon=True)
    worker.start()
    return worker, errors


def test_a_wait_ends_when_the_main_thread_unwinds_a_keyboard_interrupt() -> None:
    """A plain pipeline.run: Ctrl-C is a KeyboardInterrupt in the main thread only, which
    then joins the extract workers; the worker's wait must see it and end."""
    progress.reset()
    worker, errors = _wait_in_a_worker()
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        worker.join(10)  # what ThreadPoolExecutor.shutdown does while the interrupt unwinds
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], progress.RunCancelled)


@pytest.mark.parametrize("collecting", [True, False])
def test_the_interrupt_probe_runs_with_the_collector_paused_and_restores_it(
    monkeypatch: pytest.MonkeyPatch, collecting: bool
) -> None:
    """CPython 3.11 deadlocks when a collection starts inside sys._current_exceptions()
    (gh-106883): the probe pauses the collector for the call and leaves it as it was."""
    import gc
    import sys

    seen: List[bool] = []
    real = sys._current_exceptions

    def probe() -> Any:
        seen.append(gc.isenabled())
        return real()

    monkeypatch.setattr(sys, "_current_exceptions", probe)
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        results: List[bool] = []
        worker = threading.Thread(target=lambda: results.append(progress.stop_requested()))
        worker.start()
        worker.join(10)
        assert results == [False] and seen == [False]
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()


def test_a_wait_ends_on_dlts_signal_flag() -> None:
    from dlt.common.runtime import signals

    progress.reset()
    worker, errors = _wait_in_a_worker()
    signals.set_received_signal(2)
    signals.wake_all()
    try:
        worker.join(10)
    finally:
        signals.set_received_signal(0)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], progress.RunCancelled)


def test_a_long_wait_names_its_cause_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    progress.reset()
    progress.wait(0.01, "short: not announced")
    assert messages(caplog) == []
    progress.announce_wait(3600, "because Zendesk answered 429 for /api/v2/groups with Retry-After: 3600", logging.WARNING)
    assert messages(caplog) == [
        "Waiting 3600 s because Zendesk answered 429 for /api/v2/groups with Retry-After: 3600;"
        " the run goes on by itself (Ctrl-C stops it)."
    ]


def test_an_export_split_between_tables_counts_its_events_not_rows(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    origin = clock.now - 100 * DAY
    rows = [{"id": i, "created_at": origin + i} for i in range(1217)]
    progress.export_page("ticket_events", "created_at", time_paginator(origin + 20 * DAY), rows)
    assert messages(caplog)[-1].startswith(f"{progress.tables_of('ticket_events')}: 1,217 ticket events so far (1 page)")
    assert progress.tables_of("ticket_events").startswith("ticket_comments + ticket_audits")


def test_one_row_is_one_row(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    paginator = SimpleNamespace(has_next_page=False)
    progress.export_page("ticket_metric_events", "time", paginator, [{"id": 1, "time": clock.now - DAY}])
    assert messages(caplog)[-1] == "ticket_metric_events: 1 row (1 page), export complete"


def test_an_estimate_includes_the_export_limits_pace(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """The first pages come at once (the window's allowance); the rest at 10 a minute."""
    caplog.set_level(logging.INFO)
    progress.export_pace(6.0)  # 10 requests per 60 s
    origin = clock.now - 100 * DAY
    rows = [{"id": i, "time": origin} for i in range(1000)]
    progress.export_page("ticket_metric_events", "time", time_paginator(origin + 10 * DAY), rows)
    clock.now += 0.5  # the second page came half a second later
    progress.export_page("ticket_metric_events", "time", time_paginator(origin + 20 * DAY), rows)
    # 2 pages covered 20 of just over 100 days: 9 pages left, at 6 s each rather than 0.5 s.
    assert "about 9 pages left, 1 min at the current pace" in messages(caplog)[-1]


def test_per_ticket_requests_are_counted_with_the_time_they_add(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """A page of changed tickets announces its per-ticket requests and their time at the
    budget's pace, or at the measured pace once that is slower."""
    with caplog.at_level(logging.INFO, logger="zendesk.progress"):
        progress.per_ticket_requests("side_conversations", 600, 0.2)  # 300 a minute: 2 min
        progress.per_ticket_fetched("side_conversations", 600, 600 * 0.5)  # measured: 0.5 s each
        progress.per_ticket_requests("side_conversations", 240, 0.2)  # 2 min at the measured pace
        progress.per_ticket_requests("ticket_conversation_logs", 0, 0.2)  # none: no line
    assert messages(caplog) == [
        "side_conversations: 600 changed tickets on this page need a request each (600 this run so far),"
        " about 2 min at the current pace of 300 requests a minute",
        "side_conversations: 240 changed tickets on this page need a request each (840 this run so far),"
        " about 2 min at the current pace of 120 requests a minute",
    ]

