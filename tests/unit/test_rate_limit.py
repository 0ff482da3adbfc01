"""rate_limit.py: RateBudget's sliding windows, RateLedger, account_budget, normalize_retry_after."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional

import pytest
from requests.structures import CaseInsensitiveDict

from zendesk.api.rate_limit import (
    ACCOUNT,
    ALL_EXPORTS,
    EXPORTS_SHARED_FLAG,
    INITIAL_ACCOUNT_LIMIT,
    RateBudget,
    RateLedger,
    account_budget,
    account_ledger,
    normalize_retry_after,
)

TICKETS_EXPORT = "/api/v2/incremental/tickets/cursor"
USERS_EXPORT = "/api/v2/incremental/users/cursor"


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


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def budget_on(
    fake_time: FakeTime,
    account: Optional[int] = 1000,
    exports: int = 1000,
    window: float = 60.0,
    ledger: Optional[RateLedger] = None,
    **kwargs: Any,
) -> RateBudget:
    return RateBudget(account, exports, window, ledger=ledger, clock=fake_time.clock, sleep=fake_time.sleep, **kwargs)


# --- the sliding window ---------------------------------------------------------------------


def test_window_allows_limit_then_waits_exactly_the_remaining_window(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=3)
    for _ in range(3):
        budget.acquire("/api/v2/groups")
        fake_time.now += 10  # requests at t=0, 10, 20
    assert fake_time.sleeps == []
    budget.acquire("/api/v2/groups")  # at t=30: the first request leaves the window at t=60
    assert fake_time.sleeps == [pytest.approx(30.0)]


def test_window_waits_again_for_each_further_request(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=2, window=10.0)
    for _ in range(5):
        budget.acquire("/api/v2/groups")  # the 3rd waits for t=10, the 5th for t=20
    assert fake_time.sleeps == [pytest.approx(10.0), pytest.approx(10.0)]
    assert fake_time.now == pytest.approx(1020.0)


def test_window_never_waits_when_requests_are_spread(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=1, window=5.0)
    for _ in range(4):
        budget.acquire("/api/v2/groups")
        fake_time.now += 5.0
    assert fake_time.sleeps == []


def test_budget_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError):
        RateBudget(0, 10)
    with pytest.raises(ValueError):
        RateBudget(None, 0)


def test_window_counts_from_the_answer_so_slow_answers_delay_the_next_request(fake_time: FakeTime) -> None:
    """The server counts a request when it arrives, somewhere between our send and the
    answer; measuring from the answer means it never sees one request too many."""
    budget = budget_on(fake_time, account=1, window=10.0)
    release = budget.acquire("/api/v2/groups")  # sent at t=0
    fake_time.now += 4.0
    release()  # answered at t=4
    budget.acquire("/api/v2/groups")  # may only go at t=14, not t=10
    assert fake_time.sleeps == [pytest.approx(10.0)]
    assert fake_time.now == pytest.approx(1014.0)


def test_release_stamps_every_bucket_of_an_export(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=1, exports=1, window=10.0)
    release = budget.acquire(TICKETS_EXPORT)
    fake_time.now += 3.0
    release()
    budget.acquire("/api/v2/groups")  # the account bucket waits from the answer at t=3
    assert fake_time.sleeps == [pytest.approx(10.0)]


def test_the_wait_can_be_abandoned(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=1)
    budget.acquire("/api/v2/groups")

    def stopped(seconds: float) -> None:
        raise RuntimeError(f"stopped while waiting {seconds:.0f} s")

    with pytest.raises(RuntimeError, match="waiting 60 s"):
        budget.acquire("/api/v2/groups", sleep=stopped)


# --- export scopes --------------------------------------------------------------------------


def test_budget_shares_one_bucket_among_all_exports_by_default(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, exports=2)
    budget.acquire(TICKETS_EXPORT)
    budget.acquire(USERS_EXPORT)
    budget.acquire("/api/v2/groups")  # not an export: account bucket only
    assert fake_time.sleeps == []
    budget.acquire("/api/v2/incremental/ticket_events")  # a third export waits for the window
    assert fake_time.sleeps == [pytest.approx(60.0)]


def test_budget_rejects_an_unknown_export_scope() -> None:
    with pytest.raises(ValueError, match="export_scope"):
        RateBudget(None, 10, export_scope="per_account")


def test_budget_routes_each_export_endpoint_to_its_own_bucket(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, exports=1, export_scope="per_endpoint")
    budget.acquire(TICKETS_EXPORT)
    budget.acquire(USERS_EXPORT)  # another export: own bucket
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    budget.acquire(TICKETS_EXPORT + ".json")  # same bucket as the first
    assert fake_time.sleeps == [pytest.approx(60.0)]


def test_budget_every_request_also_counts_on_the_account_bucket(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, account=2, exports=100)
    budget.acquire(TICKETS_EXPORT)
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    budget.acquire(USERS_EXPORT)
    assert fake_time.sleeps == [pytest.approx(60.0)]


def test_budget_export_query_string_does_not_make_a_new_bucket(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, exports=1, export_scope="per_endpoint")
    budget.acquire("/api/v2/incremental/organizations?start_time=1")
    budget.acquire("/api/v2/incremental/organizations?start_time=2")
    assert fake_time.sleeps == [pytest.approx(60.0)]
    with budget.ledger.transaction() as state:
        assert set(state["buckets"]) == {ACCOUNT, ALL_EXPORTS, "/api/v2/incremental/organizations"}


def test_auto_scope_paces_per_endpoint_until_an_export_answers_429(fake_time: FakeTime) -> None:
    budget = budget_on(fake_time, exports=2, export_scope="auto")
    budget.acquire(TICKETS_EXPORT)
    budget.acquire(TICKETS_EXPORT)
    budget.acquire(USERS_EXPORT)  # per endpoint: the users export has its own 2
    assert fake_time.sleeps == []
    budget.throttled(USERS_EXPORT)  # Zendesk: too many exports, so they are counted together
    # Shared from now on, starting from the three exports already sent in this window.
    budget.acquire("/api/v2/incremental/organizations")
    assert fake_time.sleeps == [pytest.approx(60.0)]
    assert budget.ledger.flag(EXPORTS_SHARED_FLAG)


def test_only_an_exports_429_under_per_endpoint_pacing_teaches_anything(fake_time: FakeTime) -> None:
    shared = budget_on(fake_time, export_scope="shared")
    shared.throttled(TICKETS_EXPORT)  # shared pacing: a 429 says nothing about the scope
    auto = budget_on(fake_time, export_scope="auto", ledger=shared.ledger)
    auto.throttled("/api/v2/groups")  # not an export: the account limit, someone else's load
    assert not shared.ledger.flag(EXPORTS_SHARED_FLAG)


def test_what_auto_learned_holds_for_the_next_run(tmp_path: Path, fake_time: FakeTime) -> None:
    first = budget_on(fake_time, exports=1, export_scope="auto", ledger=RateLedger(tmp_path / "acct.json"))
    first.throttled(TICKETS_EXPORT)
    # A later process: a new ledger object on the same file.
    second = budget_on(fake_time, exports=1, export_scope="auto", ledger=RateLedger(tmp_path / "acct.json"))
    second.acquire(TICKETS_EXPORT)
    second.acquire(USERS_EXPORT)  # shared: waits for the tickets export's slot
    assert fake_time.sleeps == [pytest.approx(60.0)]


# --- the account limit Zendesk reports --------------------------------------------------------


def test_budget_initial_account_limit_until_observed() -> None:
    budget = RateBudget(None, 10)
    assert budget.account_limit == INITIAL_ACCOUNT_LIMIT
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
    assert budget.account_limit == expected_limit
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
    assert budget.account_limit == INITIAL_ACCOUNT_LIMIT
    assert budget.observed_account_limit is None


def test_observe_keeps_a_pinned_limit() -> None:
    budget = RateBudget(max_requests_per_minute=50, export_requests_per_minute=10)
    budget.observe(CaseInsensitiveDict({"x-rate-limit": "700"}))
    assert budget.account_limit == 50
    assert budget.observed_account_limit == 700


@pytest.mark.parametrize("share", [pytest.param(0, id="zero"), pytest.param(1.5, id="above-one")])
def test_budget_refuses_bad_share(share: float) -> None:
    with pytest.raises(ValueError):
        RateBudget(None, 10, account_share=share)


# --- the ledger: one window per account, across budgets and processes -----------------------


def test_two_budgets_on_one_file_see_each_others_slots(tmp_path: Path, fake_time: FakeTime) -> None:
    path = tmp_path / "acme.zendesk.com.json"
    check = budget_on(fake_time, exports=3, ledger=RateLedger(path))
    sync = budget_on(fake_time, exports=3, ledger=RateLedger(path))
    check.acquire(TICKETS_EXPORT)
    check.acquire(USERS_EXPORT)
    fake_time.now += 20
    sync.acquire(TICKETS_EXPORT)  # the third of the window
    assert fake_time.sleeps == []
    sync.acquire(TICKETS_EXPORT)  # a fourth waits until the check's first leaves the window
    assert fake_time.sleeps == [pytest.approx(40.0)]
    stored = json.loads(path.read_text())
    assert len(stored["buckets"][ALL_EXPORTS]) == 2  # the check's two have left the window


def test_an_unreadable_ledger_counts_as_empty(tmp_path: Path, fake_time: FakeTime) -> None:
    path = tmp_path / "acct.json"
    path.write_text('{"buckets": {"account": [[1000.0, "a"], [10')  # cut short by a crash
    budget = budget_on(fake_time, account=1, ledger=RateLedger(path))
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    assert len(json.loads(path.read_text())["buckets"][ACCOUNT]) == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"buckets": []}', id="buckets-a-list"),
        pytest.param('{"buckets": {"account": 5}}', id="slots-a-number"),
        pytest.param('{"buckets": {"account": [["x", "a"]]}}', id="stamp-not-a-number"),
        pytest.param('{"buckets": {"account": [[1000.0]]}}', id="slot-too-short"),
        pytest.param("[1, 2, 3]", id="a-list"),
    ],
)
def test_a_ledger_of_the_wrong_shape_counts_as_empty_with_one_warning(
    tmp_path: Path, fake_time: FakeTime, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acct.json"
    path.write_text(content)
    budget = budget_on(fake_time, account=1, ledger=RateLedger(path))
    budget.acquire("/api/v2/groups")
    fake_time.now += 120
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"The rate-limit ledger {path} does not have the expected shape; counting it as empty"
        " (pacing restarts from this run's requests)."
    ]


def test_slots_stamped_in_the_future_are_dropped_with_one_warning(
    tmp_path: Path, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    # The clock was set back by a long way since these were written.
    path = tmp_path / "acct.json"
    future = fake_time.now + 2_306_037_695
    path.write_text(json.dumps({"buckets": {ACCOUNT: [[future, "a"], [future, "b"]]}}))
    budget = budget_on(fake_time, account=1, ledger=RateLedger(path))
    budget.acquire("/api/v2/groups")
    assert fake_time.sleeps == []
    assert [slot[1] for slot in json.loads(path.read_text())["buckets"][ACCOUNT]] != ["a", "b"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stamped in the future (the clock was set back)" in warnings[0]


def test_ledger_lives_under_dlt_data_dir_per_host(tmp_path: Path) -> None:
    # The unit conftest points DLT_DATA_DIR at tmp_path / "dlt_data".
    ledger = account_ledger("https://acme.zendesk.com")
    assert ledger.path == (tmp_path / "dlt_data" / "zendesk" / "rate" / "acme.zendesk.com.json").resolve()
    assert account_ledger("https://acme.zendesk.com/") is ledger
    other = account_ledger("https://acme.zendesk.com", rate_dir=str(tmp_path / "elsewhere"))
    assert other.path == (tmp_path / "elsewhere" / "acme.zendesk.com.json").resolve()


def test_an_unusable_rate_dir_falls_back_to_memory(tmp_path: Path, caplog: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ledger = account_ledger("https://acme.zendesk.com", rate_dir=str(blocker / "rate"))
    assert ledger.path is None
    assert "pacing covers this process only" in caplog.text


_SECOND_PROCESS = """
import sys, time
sys.path.insert(0, {sources!r})
from zendesk.api.rate_limit import RateBudget, RateLedger
budget = RateBudget(1000, 2, window=2.0, ledger=RateLedger(__import__("pathlib").Path({path!r})))
budget.acquire("/api/v2/incremental/tickets/cursor")
print(time.time())
"""


def test_a_second_process_waits_for_the_first_ones_slots(tmp_path: Path) -> None:
    path = tmp_path / "acct.json"
    first = RateBudget(1000, 2, window=2.0, ledger=RateLedger(path))
    first.acquire(TICKETS_EXPORT)()
    first.acquire(USERS_EXPORT)()
    with first.ledger.transaction() as state:
        freed_at = min(slot[0] for slot in state["buckets"][ALL_EXPORTS]) + 2.0
    sources = str(Path(__file__).resolve().parents[2] / "sources")
    script = _SECOND_PROCESS.format(sources=sources, path=str(path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    sent_at = float(done.stdout.strip())
    assert sent_at >= freed_at  # not before the first process's first export left the window


# --- account_budget and Retry-After -----------------------------------------------------------


def test_every_batch_of_a_sync_paces_on_the_same_account_budget() -> None:
    first = account_budget("https://acme.zendesk.com", None, 10)
    assert account_budget("https://acme.zendesk.com/", None, 10) is first
    assert account_budget("https://other.zendesk.com", None, 10) is not first
    assert account_budget("https://acme.zendesk.com", 50, 10) is not first
    per_endpoint = account_budget("https://acme.zendesk.com", None, 10, export_scope="per_endpoint")
    assert per_endpoint is not first
    assert per_endpoint.ledger is first.ledger


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
