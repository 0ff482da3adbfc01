"""One sync in its own process, so its CPU time and peak memory are measured alone.

Prints one JSON line: wall and CPU seconds, peak RSS (overall and per dlt step: which
step to look at when memory grows with the account's size), batches and rows per table.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import dlt

from zendesk import select_tables, zendesk_support
from zendesk.tables.registry import DEFAULT_BATCH_PAGES
from zendesk.run import SyncResult, run_until_drained


def peak_rss_mb() -> float:
    """This process's own peak resident memory.

    `ru_maxrss` survives fork+exec on Linux, so a child started by the big benchmark
    process would report the parent's peak; the kernel's VmHWM starts afresh at exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class StepMemory:
    """Peak RSS seen while each dlt step (extract, normalize, load) runs, sampled every
    50 ms from a thread; the pipeline's step methods are wrapped to say which is running."""

    def __init__(self, pipeline: Any) -> None:
        self.peaks: Dict[str, float] = {}
        #: (step, peak) for every call of a step, in order: shows whether a step's memory
        #: grows from batch to batch (with the destination's size) or is set by one batch.
        self.calls: List[Tuple[str, float]] = []
        self._call_peak = 0.0
        self._step = "other"
        self._done = threading.Event()
        for step in ("extract", "normalize", "load"):
            setattr(pipeline, step, self._labelled(step, getattr(pipeline, step)))
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _labelled(self, step: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            self._step = step
            self._call_peak = 0.0
            try:
                return method(*args, **kwargs)
            finally:
                self._record()
                self.calls.append((step, round(self._call_peak, 1)))
                self._step = "other"

        return run

    def _record(self) -> None:
        rss = current_rss_mb()
        self._call_peak = max(self._call_peak, rss)
        self.peaks[self._step] = round(max(self.peaks.get(self._step, 0.0), rss), 1)

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self._record()

    def stop(self) -> Dict[str, float]:
        self._done.set()
        self._sampler.join()
        return dict(self.peaks)


def plain_result(pipeline: Any) -> SyncResult:
    """What one plain run did, in the shape `run_until_drained` reports."""
    result = SyncResult(batches=1)
    result.add(pipeline, pipeline.last_trace.last_load_info)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--subdomain", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--account-rpm", type=int, default=None)
    parser.add_argument("--export-rpm", type=int, default=10)
    parser.add_argument("--batch-pages", type=int, default=DEFAULT_BATCH_PAGES)
    parser.add_argument(
        "--mode",
        choices=["plain", "script"],
        default="script",
        help="plain: one pipeline.run(zendesk_support()) as dlt init users and orchestrators"
        " call it; script: zendesk_pipeline.py's path (committed batches, run defaults)",
    )
    parser.add_argument("--profile", help="write a cProfile dump here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=f"{args.workdir}/pipelines",
        destination=dlt.destinations.duckdb(f"{args.workdir}/bench.duckdb"),
        dataset_name="zendesk_data",
    )
    source_args = dict(
        subdomain=args.subdomain,
        base_url=args.base_url,
        credentials={"oauth_token": args.token},
        max_requests_per_minute=args.account_rpm,
        export_requests_per_minute=args.export_rpm,
        rate_limit_window_seconds=args.window,
    )
    tables = select_tables(None)
    steps = StepMemory(pipeline)
    wall = time.perf_counter()
    cpu = time.process_time()

    def sync() -> Any:
        if args.mode == "plain":
            pipeline.run(zendesk_support(**source_args))
            return plain_result(pipeline)
        return run_until_drained(
            pipeline,
            lambda batch: zendesk_support(batch_pages=args.batch_pages, **source_args).with_resources(*batch),
            tables,
            tuned=True,
        )

    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(sync)
        profiler.dump_stats(args.profile)
    else:
        result = sync()
    report = {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_by_step_mb": steps.stop(),
        "peak_rss_by_call_mb": steps.calls,
        "batches": result.batches,
        "rows": dict(result.row_counts),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
