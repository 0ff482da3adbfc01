"""What a long run tells its user while it runs, and how Ctrl-C stops it.

A first sync of a large account takes hours, most of it waiting for Zendesk's export
limit. So each export page logs the table names the README shows, the rows so far, how
far the export has come, and, where Zendesk's answers allow it, the pages and time left;
a wait for a rate limit long enough to look like a hang is announced with its length.

Estimates: a time-based export (organizations, ticket events, metric events) walks
`start_time` from the cursor towards now, so the share of that span already covered,
and the pages it took, give the pages left (assuming changes spread evenly over time,
which the log says is an estimate). A cursor export (tickets, users) answers with an
opaque cursor and no count: its lines say how far in time the rows have come and that
Zendesk gives no count, rather than inventing one.

Waiting: every wait of the run (rate pacing, a `Retry-After`, a retry's backoff) goes
through `wait()`, which announces a wait of `WAIT_NOTE_SECONDS` or more once, with its
cause and length, and sleeps in slices of `STOP_CHECK_SECONDS` so that a stop ends it.

Stopping: the waits and requests run in dlt's extract worker threads, where Python never
delivers a KeyboardInterrupt, and `ThreadPoolExecutor` joins those threads before the
process may exit: a worker that slept on through Ctrl-C kept the process alive. So
before every request attempt and in every slice of a wait, `raise_if_stopped()` looks at
three things and raises `RunCancelled` when any says stop:
- `request_stop()`: the pipeline script calls it on its first Ctrl-C;
- dlt's own signal flag (`dlt.common.runtime.signals`), set when the process runs under
  dlt's `intercepted_signals()` (dlt's normalize and load steps, dlt's job launcher, or a
  user's own wrapper);
- the main thread unwinding a KeyboardInterrupt: a plain `pipeline.run(zendesk_support())`
  gets Ctrl-C as a KeyboardInterrupt in the main thread (dlt 1.31 does not intercept
  signals during extract), which then waits for the worker threads; the worker sees it
  and ends. The source installs no signal handler: none of this changes the process.
No request is sent after the stop; the batch in flight is dropped and the run's committed
batches stay. Nothing here changes a run in which nobody asks it to stop.
"""

from __future__ import annotations

import gc
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

from dlt.common.runtime import signals

from ..tables.rows import iso_to_epoch
from ..tables.registry import TABLES

logger = logging.getLogger("zendesk.progress")

#: Waits at least this long are announced (shorter ones are routine pacing).
WAIT_NOTE_SECONDS = 5.0
#: How often a wait looks whether the run was asked to stop.
STOP_CHECK_SECONDS = 0.25


class RunCancelled(Exception):
    """The user asked the run to stop (Ctrl-C): no further request is sent."""


_stop = threading.Event()


def request_stop() -> None:
    """Ask the run to stop: the next request attempt or wait raises."""
    _stop.set()
    signals.wake_all()


#: One probe of the threads' exceptions at a time (see `_main_thread_interrupted`).
_probe = threading.Lock()


def _main_thread_interrupted() -> bool:
    """True in a worker thread while the main thread unwinds a KeyboardInterrupt.

    `sys._current_exceptions()` is CPython's documented view of each thread's exception
    being handled (a tuple before 3.12, the exception after). Up to Python 3.11 a garbage
    collection that starts inside it deadlocks the process (CPython gh-106883: it holds
    the runtime's thread-list lock, which freeing an object takes again); seen here as a
    run hanging for good with several request threads. So the collector is paused for
    the call, as CPython 3.12 does inside it, and left off if it was off; the lock keeps
    two probes from switching it back on under each other."""
    main = threading.main_thread()
    if threading.current_thread() is main:
        return False
    with _probe:
        collecting = gc.isenabled()
        gc.disable()
        try:
            current: Any = sys._current_exceptions().get(main.ident)  # type: ignore[arg-type]
        finally:
            if collecting:
                gc.enable()
    if isinstance(current, tuple):
        current = current[1]
    return isinstance(current, KeyboardInterrupt)


def stop_requested() -> bool:
    """Whether the run was asked to stop: by our script, by dlt's signal flag, or by a
    Ctrl-C the main thread is unwinding (see the module docstring)."""
    return _stop.is_set() or signals.was_signal_received() or _main_thread_interrupted()


def raise_if_stopped() -> None:
    """Called before every request attempt: after a stop request, nothing more is sent."""
    if stop_requested():
        raise RunCancelled("The run was asked to stop (Ctrl-C); no further request is sent.")


def wait(seconds: float, cause: str, check: Optional[Callable[[], None]] = None, level: int = logging.INFO) -> None:
    """Sleep `seconds`, announced once when long, in short slices.

    `cause` completes "Waiting N s ...": "for Zendesk's rate limit (...)", "because ...".
    Raises `RunCancelled` as soon as the run is asked to stop; `check` is called in every
    slice too and may raise to end the wait (another thread's 401, say)."""
    announce_wait(seconds, cause, level)
    deadline = time.monotonic() + seconds
    while True:
        raise_if_stopped()
        if check is not None:
            check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        signals.sleep(min(left, STOP_CHECK_SECONDS))


def pause(seconds: float) -> None:
    """A wait with no cause to announce (the rate budget's default sleep announces itself)."""
    wait(seconds, "", level=logging.NOTSET)


def tables_of(reader: str) -> str:
    """`ticket_export` -> `tickets + ticket_metrics`: the names users know from the README."""
    names = [spec.name for spec in TABLES if spec.reader == reader]
    return " + ".join(names) if names else reader


def _counted(reader: str, count: int) -> str:
    """`1,217 ticket events` / `1 row`. An export whose records are rows of one of its
    tables (the ticket export: one tickets row each) counts rows; one whose records are
    split between its tables (ticket events: audits and comments) counts the records."""
    specs = [spec for spec in TABLES if spec.reader == reader]
    if len(specs) > 1 and specs[0].endpoint.data_key not in {spec.name for spec in specs}:
        plural = specs[0].endpoint.data_key.replace("_", " ")
        singular = plural[:-1] if plural.endswith("s") else plural
    else:
        plural, singular = "rows", "row"
    return f"{count:,} {singular if count == 1 else plural}"


def _epoch(value: Any) -> Optional[float]:
    """An export row's cursor value (epoch number or ISO text) as an epoch, if it is one."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(iso_to_epoch(value))
    except ValueError:
        return None


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass
class _ExportStats:
    """One export's progress over the whole sync (its batches together)."""

    pages: int = 0
    rows: int = 0
    origin: Optional[float] = None  # the export position (epoch) of the sync's first row
    first_page_at: float = 0.0  # monotonic time of the first page


@dataclass
class _PerTicketStats:
    """A per-ticket table's requests in this sync: tickets announced, and those fetched
    with the time they took (the measured pace)."""

    announced: int = 0
    fetched: int = 0
    seconds: float = 0.0


_exports: Dict[str, _ExportStats] = {}
_per_ticket: Dict[str, _PerTicketStats] = {}
_lock = threading.Lock()
_last_wait_note_until = 0.0
_export_pace_seconds = 0.0


def reset() -> None:
    """Start a sync afresh in this process: forget an earlier stop request and the counts
    of exports an earlier, unfinished sync left behind."""
    global _last_wait_note_until, _export_pace_seconds
    _stop.clear()
    with _lock:
        _exports.clear()
        _per_ticket.clear()
        _last_wait_note_until = 0.0
        _export_pace_seconds = 0.0


def export_page(reader: str, cursor_field: Optional[str], paginator: Any, page: List[Dict[str, Any]]) -> None:
    """Log one export page: tables, rows so far, position, and pages and time left.

    `paginator.start_time` (time-based exports) is where the next page starts; a cursor
    export has no such position, only its rows' own timestamps."""
    more = bool(getattr(paginator, "has_next_page", False))
    with _lock:
        stats = _exports.setdefault(reader, _ExportStats(first_page_at=time.monotonic()))
        stats.pages += 1
        stats.rows += len(page)
        positions = [p for p in (_epoch(row.get(cursor_field)) for row in page if cursor_field) if p is not None]
        if stats.origin is None and positions:
            stats.origin = min(positions)
        if not more:
            del _exports[reader]  # drained: the next sync counts afresh
    name = tables_of(reader)
    head = f"{name}: {_counted(reader, stats.rows)} so far ({stats.pages} page{'s' if stats.pages != 1 else ''})"
    if not more:
        logger.info("%s, export complete", head.replace(" so far", ""))
        return
    if not hasattr(paginator, "after_cursor"):  # a time-based export: start_time is its position
        logger.info("%s%s", head, _time_export_estimate(stats, float(paginator.start_time)))
    else:
        reached = f", through {_day(max(positions))}" if positions else ""
        logger.info("%s%s; Zendesk's cursor export gives no count, so no estimate of what is left", head, reached)


def _time_export_estimate(stats: _ExportStats, position: float) -> str:
    """`, through <date>; about N pages (~T) left` from the span covered so far."""
    now = time.time()
    text = f", through {_day(position)}"
    if stats.origin is None or position <= stats.origin:
        return text
    covered, remaining = position - stats.origin, max(0.0, now - position)
    pages_left = math.ceil(stats.pages * remaining / covered)
    text += f"; estimate: about {pages_left:,} page{'s' if pages_left != 1 else ''} left"
    with _lock:
        floor = _export_pace_seconds
    if stats.pages >= 2 or floor:
        measured = (time.monotonic() - stats.first_page_at) / (stats.pages - 1) if stats.pages >= 2 else 0.0
        # The export limit allows one page every `floor` seconds: the first pages of a run
        # come faster (the window's allowance), the rest cannot.
        per_page = max(measured, floor)
        text += f", {_duration(pages_left * per_page)} at the current pace"
    return text


def per_ticket_requests(table: str, tickets: int, seconds_each: float) -> None:
    """Log what a page of changed tickets costs a table read per ticket: `tickets` requests
    (the tickets that need one), and the time they add at the current pace: the slower of
    the pace the rate budget allows (`seconds_each`) and the pace measured so far."""
    with _lock:
        stats = _per_ticket.setdefault(table, _PerTicketStats())
        stats.announced += tickets
        measured = stats.seconds / stats.fetched if stats.fetched else 0.0
        total = stats.announced
    if not tickets:
        return
    pace = max(seconds_each, measured)
    logger.info(
        "%s: %s changed ticket%s on this page need%s a request each (%s this run so far), about %s"
        " at the current pace of %s",
        table,
        f"{tickets:,}",
        "" if tickets == 1 else "s",
        "s" if tickets == 1 else "",
        f"{total:,}",
        _duration(tickets * pace),
        f"{60 / pace:,.0f} requests a minute" if pace > 0 else "no limit",
    )


def per_ticket_fetched(table: str, tickets: int, seconds: float) -> None:
    """Record how long `tickets` per-ticket requests took: the pace the next estimate uses."""
    with _lock:
        stats = _per_ticket.setdefault(table, _PerTicketStats())
        stats.fetched += tickets
        stats.seconds += seconds


def export_pace(seconds_per_request: float) -> None:
    """The export limit's pace (the rate budget reports it on each export request), so
    estimates never promise more than the limit allows."""
    global _export_pace_seconds
    with _lock:
        _export_pace_seconds = seconds_per_request


def announce_wait(seconds: float, cause: str, level: int = logging.INFO) -> None:
    """One log line for a wait long enough to look like a hang: its cause and length.

    Threads that wait on the same limit at the same time get one line between them: a
    wait that ends within one already announced is not announced again."""
    global _last_wait_note_until
    if seconds < WAIT_NOTE_SECONDS or level == logging.NOTSET:
        return
    now = time.monotonic()
    with _lock:
        if now + seconds <= _last_wait_note_until + STOP_CHECK_SECONDS * 4:
            return
        _last_wait_note_until = max(_last_wait_note_until, now + seconds)
    logger.log(level, "Waiting %d s %s; the run goes on by itself (Ctrl-C stops it).", math.ceil(seconds), cause)


def rate_wait(seconds: float, limit: int, window: float) -> None:
    """Announce a pacing wait on our own rate budget."""
    announce_wait(
        seconds,
        f"for Zendesk's rate limit ({limit} request{'' if limit == 1 else 's'} per {window:g} s)",
    )
