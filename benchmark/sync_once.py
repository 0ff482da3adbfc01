"""One sync in its own process, so its CPU time and peak memory are measured alone.

Prints one JSON line: wall and CPU seconds, peak RSS, batches and rows per table.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from typing import List, Optional

import dlt

from zendesk import select_tables, zendesk_support
from zendesk.sync import run_until_drained


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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--subdomain", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--account-rpm", type=int, default=None)
    parser.add_argument("--export-rpm", type=int, default=10)
    parser.add_argument("--batch-pages", type=int, default=50)
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
        batch_pages=args.batch_pages,
    )
    tables = select_tables(None)
    wall = time.perf_counter()
    cpu = time.process_time()

    def sync() -> object:
        return run_until_drained(
            pipeline, lambda batch: zendesk_support(**source_args).with_resources(*batch), tables
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
        "batches": result.batches,  # type: ignore[attr-defined]
        "rows": dict(result.row_counts),  # type: ignore[attr-defined]
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
