"""Request pacing: one budget per account, shared by every thread and every process.

Zendesk limits the whole account (200-2500 requests a minute by plan, shared with the
account's agents and apps) and, separately, the incremental export endpoints (10 a
minute, 30 with the High Volume add-on). Pacing below both limits means a run never
causes a 429 itself; a 429 caused by someone else is still honoured through
Retry-After by dlt's retrying session.

Zendesk counts per account, whichever process sends: a `check` followed by a sync, a
rerun after a crash, or two scheduled runs back to back all draw on the same minute. So
the sliding-window slots live in a small JSON file per account host (`RateLedger`),
locked with `flock` for each read-modify-write (the kernel drops the lock when a process
dies) and stamped on the wall clock, so every process reading the account sees one
window. Without a usable file (no `fcntl`, a read-only disk) the slots stay in memory
and only this process shares them.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the ledger stays in memory
    fcntl = None  # type: ignore[assignment]

from ..run import progress

logger = logging.getLogger(__name__)

EXPORT_PATH_MARKER = "/api/v2/incremental/"

#: Account pace before Zendesk has told us the account's limit (the smallest plan allows 200).
INITIAL_ACCOUNT_LIMIT = 100

#: How the incremental export limit is counted: "shared" by all export endpoints (one
#: bucket; the default), "per_endpoint" (a bucket each), or "auto" (per endpoint until
#: an export answers 429, then shared for good: see `RateBudget`).
EXPORT_SCOPES = ("shared", "per_endpoint", "auto")

#: The bucket of the account-wide limit.
ACCOUNT = "account"
#: The bucket name of the shared export limit.
ALL_EXPORTS = "/api/v2/incremental/*"
#: Ledger flag: an export answered 429 under per-endpoint pacing, so this account counts
#: its exports together.
EXPORTS_SHARED_FLAG = "exports_counted_together"

Sleep = Callable[[float], None]


class RateLedger:
    """The request slots of one account: `{bucket: [[stamp, slot id], ...]}` plus learned flags.

    With a `path`, every transaction reads and rewrites the JSON file under an exclusive
    `flock`, so threads and processes pacing the same account take turns and see each
    other's slots; without one, the slots live in this object only. A file that cannot
    be trusted counts as empty, with one warning: not JSON (cut short by a crash
    mid-write), JSON of another shape (a hand edit, another program), or slots stamped in
    the future (the clock stepped back: trusting them would mean waiting until the clock
    catches up). The worst outcome is one window paced as if nothing had been sent.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: Dict[str, Any] = {}
        self._warned = False

    def distrust(self, reason: str) -> None:
        """Say once, per ledger and process, that its contents were set aside."""
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "The rate-limit ledger %s %s; counting it as empty (pacing restarts from this run's"
            " requests).", self.path or "in memory", reason,
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        """The ledger's state, locked; changes made to it are kept when the block ends."""
        with self._lock:
            if self.path is None:
                yield self._memory
                return
            with open(self.path, "a+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                handle.seek(0)
                try:
                    state = json.loads(handle.read() or "{}")
                except ValueError:
                    state = None
                    self.distrust("is not valid JSON")
                if state is not None and not _well_formed(state):
                    state = None
                    self.distrust("does not have the expected shape")
                state = state or {}
                yield state
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state, separators=(",", ":")))
                handle.flush()

    def flag(self, name: str) -> bool:
        with self.transaction() as state:
            return bool(state.get(name))

    def set_flag(self, name: str) -> bool:
        """Set a learned flag; True if it was not set before."""
        with self.transaction() as state:
            new = not state.get(name)
            state[name] = True
            return new


def _well_formed(state: Any) -> bool:
    """`{"buckets": {name: [[stamp, id], ...]}, <flag>: bool, ...}`, nothing else."""
    if not isinstance(state, dict):
        return False
    buckets = state.get("buckets", {})
    if not isinstance(buckets, dict):
        return False
    for slots in buckets.values():
        if not isinstance(slots, list):
            return False
        for slot in slots:
            if not (
                isinstance(slot, list)
                and len(slot) == 2
                and isinstance(slot[0], (int, float))
                and not isinstance(slot[0], bool)
                and isinstance(slot[1], str)
            ):
                return False
    return True


#: A slot stamped further ahead than this is from a clock that stepped back.
CLOCK_SLACK_SECONDS = 5.0


def _bucket(
    state: Dict[str, Any], name: str, now: float, window: float, ledger: Optional["RateLedger"] = None
) -> List[List[Any]]:
    """The bucket's slots still inside the window (older ones are dropped).

    A slot stamped in the future says the clock stepped back since it was written: it is
    dropped (with one warning) rather than trusted, which would mean waiting until the
    clock reached it again."""
    buckets = state.setdefault("buckets", {})
    slots = []
    for slot in buckets.get(name, []):
        if slot[0] - now > CLOCK_SLACK_SECONDS:
            if ledger is not None:
                ledger.distrust("holds requests stamped in the future (the clock was set back)")
            continue
        if now - slot[0] < window:
            slots.append(slot)
    buckets[name] = slots
    return slots


def default_rate_dir() -> Path:
    """`<dlt data dir>/zendesk/rate`: dlt's per-user data dir (`DLT_DATA_DIR` moves it)."""
    import dlt

    return Path(dlt.current.run_context().data_dir) / "zendesk" / "rate"


_ledgers: Dict[Optional[Path], RateLedger] = {}
_ledgers_lock = threading.Lock()


def account_ledger(account_url: str, rate_dir: Optional[str] = None) -> RateLedger:
    """This process's ledger of the account at `account_url`, kept in `<rate_dir>/<host>.json`.

    Falls back to a ledger in memory (with a warning) where the file cannot be used."""
    host = urlsplit(account_url).netloc or account_url
    path: Optional[Path] = None
    if fcntl is not None:
        try:
            folder = Path(rate_dir).expanduser() if rate_dir else default_rate_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = (folder / f"{host.replace(':', '_')}.json").resolve()
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            logger.warning(
                "Cannot keep the rate-limit ledger in %s (%s): pacing covers this process only, so"
                " runs started right after another may draw 429s.",
                path or rate_dir, exc.strerror or type(exc).__name__,
            )
            path = None
    with _ledgers_lock:
        key = path if path is not None else Path(f"memory:{host}")
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = RateLedger(path)
        return ledger


class RateBudget:
    """Paces requests on the account's bucket and, for exports, an export bucket.

    Zendesk documents 10 requests a minute "to these endpoints" (the incremental exports)
    without saying whether each export endpoint has its own 10. With `export_scope="shared"`
    all exports wait on one bucket, which can never cause a 429 whichever way Zendesk
    counts; "per_endpoint" gives each export its own bucket (faster full syncs where the
    account counts per endpoint; a 429 every minute where it does not). "auto" paces per
    endpoint until an export answers 429, then takes that as the account's answer: the
    ledger remembers it and every later request, in this run and the next, paces shared.
    Every export request is recorded in both its own bucket and the shared one, so a
    switch of scope starts from the true count of the last minute.

    A request's slot is stamped when it is sent and again when its answer has arrived
    (the function `acquire` returns). Zendesk counts a request when it arrives, which is
    between the two, so measuring the window from the answer means the server can never
    see one request too many, however the network delays vary.

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
        ledger: Optional[RateLedger] = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = progress.pause,
    ) -> None:
        if not 0 < account_share <= 1:
            raise ValueError("account_share must be in (0, 1]")
        if export_scope not in EXPORT_SCOPES:
            raise ValueError(f"export_scope must be one of {EXPORT_SCOPES}")
        for limit in (max_requests_per_minute, export_requests_per_minute):
            if limit is not None and limit < 1:
                raise ValueError("a rate limit must allow at least one request per window")
        self.export_scope = export_scope
        self._pinned = max_requests_per_minute is not None
        self._share = account_share
        self.account_limit = max_requests_per_minute or INITIAL_ACCOUNT_LIMIT
        self.export_limit = export_requests_per_minute
        self.window = window
        self.ledger = ledger or RateLedger()
        self._clock = clock
        self._sleep = sleep
        self.observed_account_limit: Optional[int] = None

    def _paces_exports_shared(self, state: Dict[str, Any]) -> bool:
        return self.export_scope == "shared" or (
            self.export_scope == "auto" and bool(state.get(EXPORTS_SHARED_FLAG))
        )

    def _buckets(self, path: str, state: Dict[str, Any]) -> Tuple[Dict[str, int], List[str]]:
        """The buckets `path` waits on (name -> limit) and those it is only recorded in."""
        waits = {ACCOUNT: self.account_limit}
        if EXPORT_PATH_MARKER not in path:
            return waits, []
        endpoint = path.split("?", 1)[0].removesuffix(".json")
        if self._paces_exports_shared(state):
            waits[ALL_EXPORTS] = self.export_limit
            return waits, [endpoint]
        waits[endpoint] = self.export_limit
        return waits, [ALL_EXPORTS]

    def acquire(
        self, path: str, sleep: Optional[Sleep] = None, before_wait: Optional[Sleep] = None
    ) -> Callable[[], None]:
        """Wait until `path` fits in all its buckets, then take a slot in each at once.

        `sleep` does the waiting (default: the budget's); it may raise to abandon the wait.
        `before_wait(seconds)` is called before each wait (outside the ledger's lock).
        Returns the function to call once the answer has arrived."""
        if EXPORT_PATH_MARKER in path:
            progress.export_pace(self.window / self.export_limit)
        while True:
            progress.raise_if_stopped()
            with self.ledger.transaction() as state:
                now = self._clock()
                waits, records = self._buckets(path, state)
                wait = 0.0
                for name, limit in waits.items():
                    slots = _bucket(state, name, now, self.window, self.ledger)
                    if len(slots) >= limit:
                        oldest = sorted(slot[0] for slot in slots)[len(slots) - limit]
                        wait = max(wait, self.window - (now - oldest))
                if wait <= 0:
                    slot_id = uuid.uuid4().hex[:16]
                    taken = [*waits, *records]
                    for name in taken:
                        _bucket(state, name, now, self.window, self.ledger).append([now, slot_id])
                    return self._releaser(taken, slot_id)
            if before_wait is not None:
                before_wait(wait)
            progress.rate_wait(wait, min(waits.values()), self.window)
            (sleep or self._sleep)(wait)

    def seconds_per_request(self) -> float:
        """The account bucket's pace: the fewest seconds a request takes on average when
        requests queue on it (what estimates of many requests go by)."""
        return self.window / self.account_limit

    def _releaser(self, buckets: List[str], slot_id: str) -> Callable[[], None]:
        def release() -> None:
            with self.ledger.transaction() as state:
                now = self._clock()
                for name in buckets:
                    for slot in state.get("buckets", {}).get(name, []):
                        if slot[1] == slot_id:
                            slot[0] = max(slot[0], now)

        return release

    def observe(self, headers: CaseInsensitiveDict) -> None:
        """Follow the account limit Zendesk reports (unless the user pinned one)."""
        value = headers.get("x-rate-limit") or headers.get("ratelimit-limit")
        if not value or not value.strip().isdigit():
            return
        self.observed_account_limit = int(value)
        if not self._pinned:
            self.account_limit = max(1, int(self.observed_account_limit * self._share))

    def throttled(self, path: str) -> None:
        """An answer of 429 to `path`: under per-endpoint pacing an export's 429 says the
        account counts its exports together. Remembered in the ledger; `auto` acts on it."""
        if EXPORT_PATH_MARKER not in path or self.export_scope == "shared":
            return
        with self.ledger.transaction() as state:
            if self._paces_exports_shared(state):
                return
            state[EXPORTS_SHARED_FLAG] = True
        if self.export_scope == "auto":
            logger.warning(
                "An incremental export answered 429 although each export stayed within %d"
                " requests a window: this account counts its exports together. Pacing them as"
                " one from now on (remembered in %s).",
                self.export_limit, self.ledger.path or "memory",
            )
        else:
            logger.warning(
                "An incremental export answered 429 under export_rate_scope='per_endpoint': this"
                " account counts its exports together. Set export_rate_scope to 'shared' or 'auto'."
            )


_account_budgets: Dict[Tuple[Any, ...], RateBudget] = {}
_account_budgets_lock = threading.Lock()


def account_budget(
    account_url: str,
    max_requests_per_minute: Optional[int],
    export_requests_per_minute: int,
    window: float = 60.0,
    account_share: float = 0.5,
    export_scope: str = "shared",
    rate_dir: Optional[str] = None,
) -> RateBudget:
    """The budget for the account at `account_url` with these settings, on its shared ledger.

    A sync builds a new source for every batch (see `sync.run_until_drained`): one budget
    object per process and settings keeps the observed account limit between batches,
    and the ledger (see the module docstring) carries the slots across processes."""
    ledger = account_ledger(account_url.rstrip("/"), rate_dir)
    key = (
        ledger.path or id(ledger),
        max_requests_per_minute,
        export_requests_per_minute,
        window,
        account_share,
        export_scope,
    )
    with _account_budgets_lock:
        budget = _account_budgets.get(key)
        if budget is None:
            budget = RateBudget(
                max_requests_per_minute, export_requests_per_minute, window, account_share, export_scope, ledger
            )
            _account_budgets[key] = budget
        return budget


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A `Retry-After` (seconds or an HTTP date) as seconds from now; None if unreadable."""
    if not value:
        return None
    value = normalize_retry_after(value) or value
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return when.timestamp() - time.time()


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
