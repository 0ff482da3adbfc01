"""Request pacing: one budget per run, shared by every resource and thread.

Zendesk limits the whole account (200-2500 requests a minute by plan, shared with the
account's agents and apps) and, separately, each incremental export endpoint (10 a
minute, 30 with the High Volume add-on). Pacing below both limits means a run never
causes a 429 itself; a 429 caused by someone else is still honoured through
Retry-After by dlt's retrying session.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from requests.structures import CaseInsensitiveDict

from . import progress

EXPORT_PATH_MARKER = "/api/v2/incremental/"


class SlidingWindowLimiter:
    """Allows at most `limit` requests in any `window` seconds; thread-safe.

    A request's slot is stamped when it is sent and stamped again when its answer has
    arrived (`release`). Zendesk counts a request when it arrives, which is between the
    two, so measuring the window from the answer means the server can never see one
    request too many, however the network delays vary; no safety margin is needed.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = progress.pause,
    ) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request per window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._slots: List[List[float]] = []
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> List[float]:
        """Block until one more request fits in the window; return its slot."""
        while True:
            progress.raise_if_stopped()
            with self._lock:
                now = self._clock()
                self._slots = [slot for slot in self._slots if now - slot[0] < self.window]
                if len(self._slots) < self.limit:
                    slot = [now]
                    self._slots.append(slot)
                    return slot
                wait = self.window - (now - min(slot[0] for slot in self._slots))
            self.waited_seconds += wait
            progress.rate_wait(wait, self.limit, self.window)
            self._sleep(wait)

    def release(self, slot: List[float]) -> None:
        """Stamp the slot with the time the answer arrived."""
        with self._lock:
            slot[0] = max(slot[0], self._clock())


#: Account pace before Zendesk has told us the account's limit (the smallest plan allows 200).
INITIAL_ACCOUNT_LIMIT = 100


#: How the incremental export limit is counted: "shared" by all export endpoints (one
#: bucket; the default) or "per_endpoint" (a bucket each).
EXPORT_SCOPES = ("shared", "per_endpoint")

#: The bucket name of the shared export limit.
ALL_EXPORTS = "/api/v2/incremental/*"


class RateBudget:
    """The run's buckets: the incremental exports' and the account's.

    Zendesk documents 10 requests a minute "to these endpoints" (the incremental exports)
    without saying whether each export endpoint has its own 10. With `export_scope="shared"`
    all exports draw on one bucket, which can never cause a 429 whichever way Zendesk
    counts; "per_endpoint" gives each export its own bucket (faster full syncs, as the
    exports no longer wait for each other, where the account counts per endpoint; a 429
    every minute where it does not).

    With `max_requests_per_minute=None` the account bucket takes `account_share` of the
    limit Zendesk reports in `x-rate-limit` / `ratelimit-limit`, so the account's agents
    and other apps keep the rest; until the first answer it paces at
    `INITIAL_ACCOUNT_LIMIT`. A number pins the bucket whatever the headers say.
    """

    def __init__(
        self,
        max_requests_per_minute: Optional[int],
        export_requests_per_minute: int,
        window: float = 60.0,
        account_share: float = 0.5,
        export_scope: str = "shared",
    ) -> None:
        if not 0 < account_share <= 1:
            raise ValueError("account_share must be in (0, 1]")
        if export_scope not in EXPORT_SCOPES:
            raise ValueError(f"export_scope must be one of {EXPORT_SCOPES}")
        self._export_scope = export_scope
        self._pinned = max_requests_per_minute is not None
        self._share = account_share
        self.account = SlidingWindowLimiter(max_requests_per_minute or INITIAL_ACCOUNT_LIMIT, window)
        self._export_limit = export_requests_per_minute
        self._window = window
        self._exports: Dict[str, SlidingWindowLimiter] = {}
        self._lock = threading.Lock()
        self.observed_account_limit: Optional[int] = None

    def _export_limiter(self, endpoint: str) -> SlidingWindowLimiter:
        if self._export_scope == "shared":
            endpoint = ALL_EXPORTS
        with self._lock:
            limiter = self._exports.get(endpoint)
            if limiter is None:
                limiter = SlidingWindowLimiter(self._export_limit, self._window)
                self._exports[endpoint] = limiter
            return limiter

    def acquire(self, path: str) -> Callable[[], None]:
        """Wait for room in the exports' bucket (if `path` is an export), then the account's.

        Returns the function to call once the answer has arrived."""
        taken: List[Tuple[SlidingWindowLimiter, List[float]]] = []
        if EXPORT_PATH_MARKER in path:
            endpoint = path.split("?", 1)[0].removesuffix(".json")
            limiter = self._export_limiter(endpoint)
            taken.append((limiter, limiter.acquire()))
        taken.append((self.account, self.account.acquire()))

        def release() -> None:
            for owner, slot in taken:
                owner.release(slot)

        return release

    def observe(self, headers: CaseInsensitiveDict) -> None:
        """Follow the account limit Zendesk reports (unless the user pinned one)."""
        value = headers.get("x-rate-limit") or headers.get("ratelimit-limit")
        if not value or not value.strip().isdigit():
            return
        self.observed_account_limit = int(value)
        if not self._pinned:
            self.account.limit = max(1, int(self.observed_account_limit * self._share))


_account_budgets: Dict[Tuple[str, Optional[int], int, float, float, str], RateBudget] = {}
_account_budgets_lock = threading.Lock()


def account_budget(
    account_url: str,
    max_requests_per_minute: Optional[int],
    export_requests_per_minute: int,
    window: float = 60.0,
    account_share: float = 0.5,
    export_scope: str = "shared",
) -> RateBudget:
    """This process's one budget for the account at `account_url`, with these settings.

    A sync builds a new source for every batch (see `sync.run_until_drained`); a budget per
    source would start each batch with an empty window, and a batch's first requests would
    follow the last batch's at once, past the limits. Zendesk counts per account, so
    pipelines of one process that read the same account share the budget too."""
    key = (account_url.rstrip("/"), max_requests_per_minute, export_requests_per_minute, window, account_share, export_scope)
    with _account_budgets_lock:
        budget = _account_budgets.get(key)
        if budget is None:
            budget = RateBudget(max_requests_per_minute, export_requests_per_minute, window, account_share, export_scope)
            _account_budgets[key] = budget
        return budget


def normalize_retry_after(value: Optional[str]) -> Optional[str]:
    """Zendesk has sent `Retry-After: 50, 47`; dlt's retry expects one integer.

    Returns the largest number in the header (waiting the longest is the safe reading),
    or the value unchanged when it holds no plain number (an HTTP date, say).
    """
    if not value:
        return value
    parts = [part.strip() for part in value.split(",")]
    if len(parts) > 1 and all(part.isdigit() for part in parts):
        return str(max(int(part) for part in parts))
    return value
