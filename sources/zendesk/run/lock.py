"""One run at a time per pipeline, on every destination.

dlt takes no lock on a pipeline's working folder: two processes running one pipeline both
normalize and load the packages they find there, and the same rows are loaded twice
(DuckDB's file lock stops the second load only by accident; Postgres, BigQuery and
Snowflake have none). So a run of this source holds an exclusive `flock` on a file beside
the pipeline's working folder for the whole of its dlt run:

- taken when the source is built if the pipeline has pending packages (`pipeline.run`
  loads those before it extracts anything), otherwise at the run's first request;
- another process's run is refused at once with a message naming the pipeline;
- the process that holds the lock is never refused: its next run takes the lock over
  (dlt's Airflow helper runs several pipeline runs in one task process, and an
  application runs the same pipeline again and again);
- released as soon as the pipeline's trace shows that run finished (its load, when the
  caller runs extract, normalize and load one by one), and by the kernel
  when the holding process dies, however it dies, so a killed run never leaves a stale
  lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Optional

import pendulum

from ..errors import ZendeskRunInProgress

logger = logging.getLogger(__name__)

#: How often the holder looks whether its run has finished.
POLL_SECONDS = 0.2


def lock_path(pipeline: Any) -> str:
    """Beside (not inside) the working folder: dlt may drop and recreate that folder."""
    return os.path.join(pipeline.pipelines_dir, f".{pipeline.pipeline_name}.zendesk-run.lock")


def _try_lock(path: str) -> Optional[int]:
    """An fd holding the exclusive lock on `path`, or None when another run holds it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "another process"
    except OSError:
        return "another process"


def _refusal(pipeline: Any, path: str) -> ZendeskRunInProgress:
    return ZendeskRunInProgress(
        f"Another run of pipeline '{pipeline.pipeline_name}' is in progress ({_holder(path)})."
        " This run stopped before reading or loading anything; run it again once the other"
        " one has finished (two runs at once would load the same rows twice)."
    )


class _HeldLock:
    """The lock this process holds, and the check that says its current run finished.

    `finished` is replaced when a later run of this process takes the lock over; the
    watcher thread releases the lock once the current check says so."""

    def __init__(self, fd: int, finished: Callable[[], bool]) -> None:
        self.fd: Optional[int] = fd
        self.finished = finished
        self.guard = threading.Lock()

    def release_if_finished(self) -> bool:
        with self.guard:
            if self.fd is not None and self.finished():
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None
            return self.fd is None

    def take_over(self, finished: Callable[[], bool]) -> bool:
        """Hand the lock to this process's next run; False when it was released already."""
        with self.guard:
            if self.fd is None:
                return False
            self.finished = finished
            return True


#: Locks this process holds, by lock path.
_held: Dict[str, _HeldLock] = {}
_held_lock = threading.Lock()


def held_here(pipeline: Any) -> bool:
    """Whether this process holds `pipeline`'s run lock."""
    with _held_lock:
        held = _held.get(lock_path(pipeline))
    return held is not None and held.fd is not None


def raise_if_running(pipeline: Any) -> None:
    """Refuse early when another process runs `pipeline` (this process never refuses itself)."""
    if held_here(pipeline):
        return
    path = lock_path(pipeline)
    fd = _try_lock(path)
    if fd is None:
        raise _refusal(pipeline, path)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _run_finished_after(pipeline: Any, since: pendulum.DateTime) -> bool:
    """Whether the run that started at `since` is over: a trace finished since then that
    loaded, or left nothing to load. A caller may run `extract`, `normalize` and `load`
    one by one, each with a trace of its own: the lock then covers all three, up to the
    load of what the extract made (or until the process ends, if it never loads)."""
    trace = pipeline.last_trace
    finished = getattr(trace, "finished_at", None) if trace is not None else None
    if finished is None or finished < since:
        return False
    loaded = any(step.step in ("load", "run") for step in getattr(trace, "steps", None) or ())
    return loaded or not pipeline.has_pending_data


def hold_for_run(pipeline: Any, finished: Optional[Callable[[], bool]] = None) -> None:
    """Hold the pipeline's lock until the run that starts now has finished, or raise.

    The lock is released by a watcher thread once the run's trace has finished (or by the
    kernel when the process ends). `finished` replaces the trace check in tests.
    """
    since = pendulum.now()
    check = finished or (lambda: _run_finished_after(pipeline, since))
    path = lock_path(pipeline)
    with _held_lock:
        held = _held.get(path)
        if held is not None and held.take_over(check):
            return
        fd = _try_lock(path)
        if fd is None:
            raise _refusal(pipeline, path)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        held = _HeldLock(fd, check)
        _held[path] = held

    def release_when_done() -> None:
        # An Event's wait, not time.sleep: the watcher lives as long as the run, in the
        # caller's process, and must not show in (or be slowed by) anything that patches
        # or counts the process's sleeps.
        pause = threading.Event()
        while not held.release_if_finished():
            pause.wait(POLL_SECONDS)
        with _held_lock:
            if _held.get(path) is held:
                del _held[path]
        logger.debug("released the run lock of %s", pipeline.pipeline_name)

    threading.Thread(target=release_when_done, name="zendesk-run-lock", daemon=True).start()
