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

Stopping: `request_stop()` (the pipeline script calls it on Ctrl-C) makes every later
request attempt and every rate-limit wait raise `RunCancelled` at once, so no request is
sent after the signal; the batch in flight is dropped and the run's committed batches
stay. Nothing here changes a run in which nobody asks it to stop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from .rows import iso_to_epoch
from .settings import TABLES

logger = logging.getLogger("zendesk.progress")

#: Rate-limit waits at least this long are announced (shorter ones are routine pacing).
WAIT_NOTE_SECONDS = 5.0


class RunCancelled(Exception):
    """The user asked the run to stop (Ctrl-C): no further request is sent."""


_stop = threading.Event()


def request_stop() -> None:
    """Ask the run to stop: the next request attempt or rate-limit wait raises."""
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def raise_if_stopped() -> None:
    """Called before every request attempt: after a stop request, nothing more is sent."""
    if _stop.is_set():
        raise RunCancelled("The run was asked to stop (Ctrl-C); no further request is sent.")


def pause(seconds: float) -> None:
    """Sleep that a stop request cuts short (a rate-limit wait can last a minute)."""
    _stop.wait(seconds)


def tables_of(reader: str) -> str:
    """`ticket_export` -> `tickets + ticket_metrics`: the names users know from the README."""
    names = [spec.name for spec in TABLES if spec.reader == reader]
    return " + ".join(names) if names else reader


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


_exports: Dict[str, _ExportStats] = {}
_lock = threading.Lock()
_last_wait_note_until = 0.0


def reset() -> None:
    """Start a sync afresh in this process: forget an earlier stop request and the counts
    of exports an earlier, unfinished sync left behind."""
    global _last_wait_note_until
    _stop.clear()
    with _lock:
        _exports.clear()
        _last_wait_note_until = 0.0


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
    head = f"{name}: {stats.rows:,} rows so far ({stats.pages} page{'s' if stats.pages != 1 else ''})"
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
    if stats.pages >= 2:
        per_page = (time.monotonic() - stats.first_page_at) / (stats.pages - 1)
        text += f", {_duration(pages_left * per_page)} at the current pace"
    return text


def rate_wait(seconds: float, limit: int, window: float) -> None:
    """Announce a rate-limit wait long enough to look like a hang (once while it lasts,
    however many threads wait with it)."""
    global _last_wait_note_until
    if seconds < WAIT_NOTE_SECONDS:
        return
    now = time.monotonic()
    with _lock:
        if now < _last_wait_note_until:
            return
        _last_wait_note_until = now + seconds
    logger.info(
        "Waiting %d s for Zendesk's rate limit (%d request%s per %g s); the run goes on by itself.",
        math.ceil(seconds), limit, "" if limit == 1 else "s", window,
    )
