"""run/lock.py: one run at a time per pipeline, never refusing the process that holds it."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any, Dict

import pytest

from tests.helpers import lock_held_elsewhere
from zendesk.errors import ZendeskRunInProgress
from zendesk.run import lock


def _pipeline(tmp_path: Any, name: str = "zd_lock") -> Any:
    return SimpleNamespace(pipelines_dir=str(tmp_path), pipeline_name=name)



def test_the_holding_process_is_never_refused_and_the_last_run_releases(tmp_path: Any) -> None:
    pipeline = _pipeline(tmp_path)
    runs: Dict[str, bool] = {"first": False, "second": False}
    lock.hold_for_run(pipeline, finished=lambda: runs["first"])
    lock.raise_if_running(pipeline)  # its own process: no refusal at build
    lock.hold_for_run(pipeline, finished=lambda: runs["second"])  # a later run takes it over
    runs["first"] = True
    time.sleep(lock.POLL_SECONDS * 3)
    assert lock_held_elsewhere(lock.lock_path(pipeline)), "released by the earlier run's end"
    runs["second"] = True
    deadline = time.monotonic() + 10
    while lock_held_elsewhere(lock.lock_path(pipeline)):
        assert time.monotonic() < deadline, "never released after the last run finished"
        time.sleep(lock.POLL_SECONDS)
    assert not lock.held_here(pipeline)


def test_another_process_holding_the_lock_is_refused_with_its_pid(tmp_path: Any) -> None:
    pipeline = _pipeline(tmp_path)
    path = lock.lock_path(pipeline)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({path!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, b'pid 4242, started now')\n"
         "print('held', flush=True)\ntime.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for attempt in (lock.raise_if_running, lock.hold_for_run):
            with pytest.raises(ZendeskRunInProgress, match=r"Another run of pipeline 'zd_lock' is in progress \(pid 4242"):
                attempt(pipeline)
    finally:
        holder.kill()
        holder.wait()
    lock.hold_for_run(pipeline, finished=lambda: True)  # the kernel released the dead holder's lock
