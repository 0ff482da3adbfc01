"""A plain `pipeline.run(zendesk_support(...))` in its own process, for tests that need
two runs at once or a run killed mid-way. Exit 0 on success, 3 when refused because
another run of the pipeline is in progress, 1 on any other error.

`--kill-at` makes the process SIGKILL itself at a chosen point of dlt's run, the way a
crash or an OOM kill would stop it, without touching the source:

- `request:N`: the N-th HTTP answer arrived (the run is extracting);
- `normalize`: the extract step committed its package, normalize has not started;
- `load`: the package is normalized, no load job has started;
- `committed:N`: the N-th load job committed in the destination, before dlt recorded it;
- `recorded:N`: dlt recorded the N-th load job as completed.

The process prints `killed-never` and exits 4 when the run ends before the point.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Callable

import dlt
from dlt.common.storages.load_package import PackageStorage
from dlt.normalize import Normalize
from dlt.load import Load
from requests.adapters import HTTPAdapter

from zendesk import zendesk_support
from zendesk.errors import ZendeskRunInProgress

EXIT_NOT_KILLED = 4
#: Calls of the watched method so far (reported when the run ends before the kill point).
CALLS = {"n": 0}
COUNTING = threading.Lock()


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(owner: Any, name: str, nth: int, after: bool) -> None:
    """SIGKILL this process on the `nth` call of `owner.name` (before or after it runs)."""
    original: Callable[..., Any] = getattr(owner, name)
    calls = CALLS

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with COUNTING:  # load jobs finish on several threads: each call gets its own number
            calls["n"] += 1
            number = calls["n"]
        if number == nth and not after:
            _die()
        result = original(*args, **kwargs)
        if number == nth and after:
            _die()
        return result

    setattr(owner, name, wrapper)


def arm(kill_at: str) -> None:
    point, _, count = kill_at.partition(":")
    if point == "request":
        _kill_on_call(HTTPAdapter, "send", int(count), after=True)
    elif point == "normalize":
        _kill_on_call(Normalize, "run", 1, after=False)
    elif point == "load":
        _kill_on_call(Load, "run", 1, after=False)
    elif point == "committed":
        _kill_on_call(PackageStorage, "save_pending_transition", int(count), after=True)
    elif point == "recorded":
        _kill_on_call(PackageStorage, "complete_job", int(count), after=True)
    else:
        raise SystemExit(f"unknown --kill-at {kill_at}")


def _refusal(error: BaseException) -> Any:
    """The `ZendeskRunInProgress` behind `error`, if that is what stopped the run."""
    seen: BaseException = error
    while seen is not None and not isinstance(seen, ZendeskRunInProgress):
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return seen


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--pipeline-name", default="zd_overlap")
    parser.add_argument("--destination", required=True, help="a DuckDB file path or a postgresql:// URL")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--subdomain", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--export-rpm", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--kill-at", help="request:N, normalize, load, committed:N or recorded:N")
    args = parser.parse_args()
    if args.destination.startswith("postgresql://"):
        destination = dlt.destinations.postgres(args.destination)
    else:
        destination = dlt.destinations.duckdb(args.destination)
    if args.kill_at:
        arm(args.kill_at)
    pipeline = dlt.pipeline(
        pipeline_name=args.pipeline_name,
        pipelines_dir=args.pipelines_dir,
        destination=destination,
        dataset_name=args.dataset,
    )
    try:
        pipeline.run(
            zendesk_support(
                subdomain=args.subdomain,
                base_url=args.base_url,
                credentials={"oauth_token": args.token},
                max_requests_per_minute=100_000,
                export_requests_per_minute=args.export_rpm,
                rate_limit_window_seconds=args.window,
            )
        )
    except Exception as error:  # refused at build, or at the first request (inside dlt's extract step)
        refusal = _refusal(error)
        if refusal is None:
            raise
        print(refusal, file=sys.stderr)
        return 3
    if args.kill_at:
        print(f"killed-never (after {CALLS['n']} calls)")
        return EXIT_NOT_KILLED
    print("loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
