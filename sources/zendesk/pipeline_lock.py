"""One run at a time per pipeline, on every destination.

dlt takes no lock on a pipeline's working folder: two processes running one pipeline both
normalize and load the packages they find there, and the same rows are loaded twice
(DuckDB's file lock stops the second load only by accident; Postgres, BigQuery and
Snowflake have none). So a run of this source holds an exclusive `flock` on a file beside
the pipeline's working folder from its first request until its dlt run has finished:

- a second run is refused at once with a message naming the pipeline, both when its
  source is built (before `pipeline.run` touches any package the first run left) and when
  it starts extracting;
- the kernel releases the lock when the holding process dies, however it dies, so a
  killed run never leaves a stale lock behind;
- the lock is released as soon as the pipeline's trace shows the run finished, so an
  application that runs the pipeline again later in the same process is not blocked.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Optional

import pendulum

from .errors import ZendeskRunInProgress

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
    """A lock this process holds for one run, released once (by the watcher thread, or
    by the next run of this process when it finds the run finished before the watcher
    has looked)."""

    def __init__(self, fd: int, finished: Callable[[], bool]) -> None:
        self.fd: Optional[int] = fd
        self.finished = finished
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None

    @property
    def released(self) -> bool:
        return self.fd is None


#: Locks this process holds, by lock path.
_held: Dict[str, _HeldLock] = {}
_held_lock = threading.Lock()


def _release_if_finished(path: str) -> None:
    with _held_lock:
        held = _held.get(path)
    if held is not None and held.finished():
        held.release()


def raise_if_running(pipeline: Any) -> None:
    """Refuse early, before `pipeline.run` finishes packages another run is still loading."""
    path = lock_path(pipeline)
    _release_if_finished(path)
    fd = _try_lock(path)
    if fd is None:
        raise _refusal(pipeline, path)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _run_finished_after(pipeline: Any, since: pendulum.DateTime) -> bool:
    trace = pipeline.last_trace
    finished = getattr(trace, "finished_at", None) if trace is not None else None
    return finished is not None and finished >= since


def hold_for_run(pipeline: Any, finished: Optional[Callable[[], bool]] = None) -> None:
    """Take the pipeline's lock for the run being extracted now, or raise.

    The lock is released by a watcher thread once the run's trace has finished (or by the
    kernel when the process ends). `finished` replaces the trace check in tests.
    """
    path = lock_path(pipeline)
    _release_if_finished(path)
    fd = _try_lock(path)
    if fd is None:
        raise _refusal(pipeline, path)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
    since = pendulum.now()
    held = _HeldLock(fd, finished or (lambda: _run_finished_after(pipeline, since)))
    with _held_lock:
        _held[path] = held

    def release_when_done() -> None:
        try:
            while not held.released and not held.finished():
                time.sleep(POLL_SECONDS)
        finally:
            held.release()
            with _held_lock:
                if _held.get(path) is held:
                    del _held[path]
            logger.debug("released the run lock of %s", pipeline.pipeline_name)

    threading.Thread(target=release_when_done, name="zendesk-run-lock", daemon=True).start()
