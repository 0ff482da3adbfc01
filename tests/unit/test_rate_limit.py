"""rate_limit.py: SlidingWindowLimiter, RateBudget, account_budget, normalize_retry_after."""

from __future__ import annotations

import functools
from typing import List

import pytest
from requests.structures import CaseInsensitiveDict

from zendesk import rate_limit
from zendesk.rate_limit import (
    INITIAL_ACCOUNT_LIMIT,
    RateBudget,
    SlidingWindowLimiter,
    account_budget,
    normalize_retry_after,
)


class FakeTime:
    """A clock that only moves when someone sleeps (or the test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_limiter_allows_limit_then_waits_exactly_the_remaining_window() -> None:
    fake = FakeTime()
    limiter = SlidingWindowLimiter(3, window=60.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        limiter.acquire()
        fake.now += 10  # requests at t=0, 10, 20
    assert fake.sleeps == []
    limiter.acquire()  # at t=30: the first request leaves the window at t=60
    assert fake.sleeps == [pytest.approx(30.0)]
    assert limiter.waited_seconds == pytest.approx(30.0)


def test_limiter_waits_again_for_each_further_request() -> None:
    fake = FakeTime()
    limiter = SlidingWindowLimiter(2, window=10.0, clock=fake.clock, sleep=fake.sleep)
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()  # waits the whole window: both were sent at t=0
    limiter.acquire()  # one more at t=10 (the second t=0 request just left)
    limiter.acquire()  # waits until t=20
    assert fake.sleeps == [pytest.approx(10.0), pytest.approx(10.0)]
    assert fake.now == pytest.approx(1020.0)


def test_limiter_never_waits_when_requests_are_spread() -> None:
    fake = FakeTime()
    limiter = SlidingWindowLimiter(1, window=5.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        limiter.acquire()
        fake.now += 5.0
    assert fake.sleeps == []


def test_limiter_refuses_zero_limit() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """Every limiter RateBudget builds uses the fake clock and sleep."""
    fake = FakeTime()
    monkeypatch.setattr(
        rate_limit,
        "SlidingWindowLimiter",
        functools.partial(SlidingWindowLimiter, clock=fake.clock, sleep=fake.sleep),
    )
    return fake


def test_budget_shares_one_bucket_among_all_exports_by_default(fake_time: FakeTime) -> None:
    budget = RateBudget(max_requests_per_minute=1000, export_requests_per_minute=2)
    budget.acquire("/api/v2/incremental/tickets/cursor")
    budget.acquire("/api/v2/incremental/users/cursor")
    budget.acquire("/api/v2/groups")  # not an export: account bucket only
    assert fake_time.sleeps == []
    budget.acquire("/api/v2/incremental/ticket_events")  # a third export waits for the window
    assert fake_time.sleeps == [pytest.approx(60.0)]
    assert list(budget._exports) == [rate_limit.ALL_EXPORTS]


def test_budget_rejects_an_unknown_export_scope() -> None:
    with pytest.raises(ValueError, match="export_scope"):
        RateBudget(None, 10, export_scope="per_account")


def test_budget_routes_each_export_endpoint_to_its_own_bucket(fake_time: FakeTime) -> None:
    budget = RateBudget(max_requests_per_minute=1000, export_requests_per_minute=1, export_scope="per_endpoint")
    budget.acquire("/api/v2/incremental/tickets/cursor")
    budget.acquire("/api/v2/incremental/users/cursor")  # another export: own bucket
    budget.acquire("/api/v2/groups")  # not an export: account bucket only
    assert fake_time.sleeps == []
    budget.acquire("/api/v2/incremental/tickets/cursor.json")  # same bucket as the first
    # A full window of that bucket (never shorter than Zendesk's minute; may add a margin).
    window = budget._exports["/api/v2/incremental/tickets/cursor"].window
    assert window >= 60.0
    assert fake_time.sleeps == [pytest.approx(window)]
    assert set(budget._exports) == {"/api/v2/incremental/tickets/cursor", "/api/v2/incremental/users/cursor"}


def test_budget_every_request_also_counts_on_the_account_bucket(fake_time: FakeTime) -> None:
    budget = RateBudget(max_requests_per_minute=2, export_requests_per_minute=100)
    budget.acquire("/api/v2/incremental/tickets/cursor")
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    budget.acquire("/api/v2/incremental/users/cursor")
    assert budget.account.window >= 60.0
    assert fake_time.sleeps == [pytest.approx(budget.account.window)]


def test_budget_export_query_string_does_not_make_a_new_bucket(fake_time: FakeTime) -> None:
    budget = RateBudget(max_requests_per_minute=1000, export_requests_per_minute=1, export_scope="per_endpoint")
    budget.acquire("/api/v2/incremental/organizations?start_time=1")
    budget.acquire("/api/v2/incremental/organizations?start_time=2")
    assert fake_time.sleeps == [pytest.approx(budget._exports["/api/v2/incremental/organizations"].window)]
    assert list(budget._exports) == ["/api/v2/incremental/organizations"]


def test_budget_initial_account_limit_until_observed() -> None:
    budget = RateBudget(None, 10)
    assert budget.account.limit == INITIAL_ACCOUNT_LIMIT
    assert budget.observed_account_limit is None


@pytest.mark.parametrize(
    "headers, share, expected_limit",
    [
        pytest.param({"X-Rate-Limit": "700"}, 0.5, 350, id="x-rate-limit"),
        pytest.param({"x-rate-limit": "400"}, 0.5, 200, id="x-rate-limit-lower"),
        pytest.param({"RateLimit-Limit": "2500"}, 0.2, 500, id="ratelimit-limit"),
        pytest.param({"ratelimit-limit": "10"}, 0.05, 1, id="never-below-one"),
        pytest.param({"x-rate-limit": "200"}, 1.0, 200, id="full-share"),
    ],
)
def test_observe_follows_reported_account_limit(headers: dict, share: float, expected_limit: int) -> None:
    budget = RateBudget(None, 10, account_share=share)
    budget.observe(CaseInsensitiveDict(headers))
    assert budget.account.limit == expected_limit
    assert budget.observed_account_limit == int(next(iter(headers.values())))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="absent"),
        pytest.param({"x-rate-limit": ""}, id="empty"),
        pytest.param({"x-rate-limit": "lots"}, id="not-a-number"),
        pytest.param({"ratelimit-limit": "700;w=60"}, id="structured"),
    ],
)
def test_observe_ignores_missing_or_unreadable_headers(headers: dict) -> None:
    budget = RateBudget(None, 10)
    budget.observe(CaseInsensitiveDict(headers))
    assert budget.account.limit == INITIAL_ACCOUNT_LIMIT
    assert budget.observed_account_limit is None


def test_observe_keeps_a_pinned_limit() -> None:
    budget = RateBudget(max_requests_per_minute=50, export_requests_per_minute=10)
    budget.observe(CaseInsensitiveDict({"x-rate-limit": "700"}))
    assert budget.account.limit == 50
    assert budget.observed_account_limit == 700


@pytest.mark.parametrize("share", [pytest.param(0, id="zero"), pytest.param(1.5, id="above-one")])
def test_budget_refuses_bad_share(share: float) -> None:
    with pytest.raises(ValueError):
        RateBudget(None, 10, account_share=share)


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("50, 47", "50", id="two-values-largest"),
        pytest.param("3,17", "17", id="two-values-no-space"),
        pytest.param("7", "7", id="single-number"),
        pytest.param(" 7 ", " 7 ", id="single-number-spaces"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", id="http-date"),
        pytest.param(None, None, id="none"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize_retry_after(value: str, expected: str) -> None:
    assert normalize_retry_after(value) == expected


def test_window_counts_from_the_answer_so_slow_answers_delay_the_next_request() -> None:
    """The server counts a request when it arrives, somewhere between our send and the
    answer; measuring from the answer means it never sees one request too many."""
    fake = FakeTime()
    limiter = SlidingWindowLimiter(1, window=10.0, clock=fake.clock, sleep=fake.sleep)
    start = fake.now
    slot = limiter.acquire()  # sent at t=0
    fake.now += 4.0
    limiter.release(slot)  # answered at t=4
    limiter.acquire()  # may only go at t=14, not t=10
    assert fake.sleeps == [pytest.approx(10.0)]
    assert fake.now == pytest.approx(start + 14.0)


def test_budget_release_stamps_both_buckets_of_an_export(fake_time: FakeTime) -> None:
    budget = RateBudget(1, 1, window=10.0)
    release = budget.acquire("/api/v2/incremental/tickets/cursor")
    fake_time.now += 3.0
    release()
    budget.acquire("/api/v2/groups")  # the account bucket waits from the answer at t=3
    assert fake_time.sleeps == [pytest.approx(10.0)]


def test_every_batch_of_a_sync_paces_on_the_same_account_budget() -> None:
    first = account_budget("https://acme.zendesk.com", None, 10)
    assert account_budget("https://acme.zendesk.com/", None, 10) is first
    assert account_budget("https://other.zendesk.com", None, 10) is not first
    assert account_budget("https://acme.zendesk.com", 50, 10) is not first
    assert account_budget("https://acme.zendesk.com", None, 10, export_scope="per_endpoint") is not first
