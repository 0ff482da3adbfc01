"""Benchmark: full sync, no-change sync and a sync after ~1% changes, against the fake Zendesk.

    python -m benchmark --tickets 20000
    python -m benchmark --tickets 2000,20000      # several sizes: is memory flat with size?
    python -m benchmark --tickets 20000 --profile # cProfile of the full sync, top functions

The fake enforces Zendesk's limits (700 requests/minute for the account, 10/minute for all
incremental exports together, the stricter reading of Zendesk's documentation) on a
compressed clock (`--scale 60`: a "minute" lasts one second), and the connector paces on
the same clock. Each sync runs in a child process so its CPU time and
peak memory are its own. For each sync it prints requests per endpoint against the
theoretical minimum, 429s, rows, wall and CPU seconds, rows per CPU second, peak RSS, and the
time the same requests would take on a real account (700/min; exports 10/min in all, and 10/min
each where the account counts per export endpoint).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional

from benchmark.floor import request_floor
from zendesk.api.client import endpoint_template
from zendesk.tables.registry import DEFAULT_BATCH_PAGES
from zendesk_fake import FakeZendesk

ACCOUNT_LIMIT = 700
EXPORT_LIMIT = 10
EXPORT_PREFIX = "/api/v2/incremental/"

def real_account_minutes(counts: Mapping[str, int]) -> Dict[str, float]:
    """Minutes the same requests take on a real account, everything at most 700/min: with
    the exports at 10/min in all (`export_rate_scope="shared"`, the default) and at 10/min
    each, in parallel (`"per_endpoint"`)."""
    exports = {e: n for e, n in counts.items() if e.startswith(EXPORT_PREFIX)}
    total = sum(counts.values())
    slowest_export = max((n / EXPORT_LIMIT for n in exports.values()), default=0.0)
    return {
        "shared": round(max(sum(exports.values()) / EXPORT_LIMIT, total / ACCOUNT_LIMIT), 1),
        "per_endpoint": round(max(slowest_export, total / ACCOUNT_LIMIT), 1),
    }


def run_child(
    fake: FakeZendesk, workdir: str, window: float, profile: Optional[str], batch_pages: int, mode: str
) -> Dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmark.sync_once",
        "--base-url", fake.base_url,
        "--subdomain", fake.subdomain,
        "--token", fake.oauth_token,
        "--workdir", workdir,
        "--window", str(window),
        "--export-rpm", str(EXPORT_LIMIT),
        "--batch-pages", str(batch_pages),
        "--mode", mode,
    ]
    if profile:
        command += ["--profile", profile]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sync failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def phase(
    name: str,
    fake: FakeZendesk,
    workdir: str,
    window: float,
    minimum: Mapping[str, int],
    batch_pages: int,
    mode: str,
    profile: Optional[str] = None,
) -> Dict[str, Any]:
    fake.reset_counts()
    report = run_child(fake, workdir, window, profile, batch_pages, mode)
    counts = Counter({endpoint_template(k): v for k, v in fake.request_counts().items()})
    throttled = sum(n for key, n in fake.status_counts().items() if key.startswith("429 "))
    rows = sum(report["rows"].values())
    report.update(
        phase=name,
        requests=dict(counts),
        requests_total=sum(counts.values()),
        minimum_total=sum(minimum.values()),
        throttled_429=throttled,
        rows_total=rows,
        rows_per_cpu_s=round(rows / report["cpu_s"]) if report["cpu_s"] else None,
        real_account_minutes=real_account_minutes(counts),
    )
    return report


def print_report(size: int, mode: str, reports: List[Dict[str, Any]], minimum: Mapping[str, int]) -> None:
    print(f"\n=== {size} tickets, {mode} ===")
    endpoints = sorted(set(minimum) | {e for r in reports for e in r["requests"]})
    header = f"{'endpoint':42} {'minimum':>8} " + " ".join(f"{r['phase']:>10}" for r in reports)
    print(header)
    for endpoint in endpoints:
        cells = " ".join(f"{r['requests'].get(endpoint, 0):>10}" for r in reports)
        print(f"{endpoint:42} {minimum.get(endpoint, 0):>8} {cells}")
    print(f"{'total requests':42} {sum(minimum.values()):>8} " + " ".join(f"{r['requests_total']:>10}" for r in reports))
    for key in ("throttled_429", "rows_total", "batches", "wall_s", "cpu_s", "rows_per_cpu_s", "peak_rss_mb"):
        print(f"{key:51} " + " ".join(f"{str(r[key]):>10}" for r in reports))
    print(f"{'peak_rss_mb by step':51} " + " ".join(f"{'':>10}" for r in reports))
    for r in reports:
        print(f"  {r['phase']}: {r['peak_rss_by_step_mb']}")
    # Flat from batch to batch means memory does not grow with what is already loaded.
    by_call = reports[0]["peak_rss_by_call_mb"]
    for step in ("extract", "load"):
        print(f"  full, {step} peak by batch: {[round(peak) for name, peak in by_call if name == step]}")
    for r in reports:
        print(f"{r['phase']}: on a real account ≈ {r['real_account_minutes']} minutes; rows {r['rows']}")


def benchmark(size: int, seed: int, scale: float, profile: bool, batch_pages: int, mode: str) -> List[Dict[str, Any]]:
    """The three syncs through one way of running the source, on a fresh fake account."""
    window = 60.0 / scale
    started = time.perf_counter()
    fake = FakeZendesk(seed=seed, tickets=size)
    print(f"generated {size} tickets in {time.perf_counter() - started:.1f}s", flush=True)
    fake.configure(
        rate_limit_per_minute=ACCOUNT_LIMIT,
        export_rate_limit_per_minute=EXPORT_LIMIT,
        export_rate_scope="shared",
        rate_window_seconds=window,
    )
    fake.start()
    try:
        # The endpoints a default run calls (from the registry), ⌈rows / largest page⌉ each.
        minimum = request_floor(fake)
        with tempfile.TemporaryDirectory(prefix="zd-bench-") as workdir:
            prof = f"{workdir}/full.prof" if profile else None
            reports = [phase("full", fake, workdir, window, minimum, batch_pages, mode, prof)]
            if prof:
                import pstats

                pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
            reports.append(phase("no-change", fake, workdir, window, minimum, batch_pages, mode))
            fake.mutate(seed=seed + 1, fraction=0.01)
            reports.append(phase("1%-change", fake, workdir, window, minimum, batch_pages, mode))
        print_report(size, mode, reports, minimum)
        return reports
    finally:
        fake.stop()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", default="20000", help="ticket count, or several comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=60.0, help="time compression of rate-limit windows")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--batch-pages", type=int, default=DEFAULT_BATCH_PAGES, help="the source's batch_pages setting")
    parser.add_argument(
        "--modes",
        default="plain,script",
        help="plain: pipeline.run(zendesk_support()) as dlt init users and orchestrators call it;"
        " script: zendesk_pipeline.py's path (committed batches of --batch-pages, run defaults)",
    )
    parser.add_argument("--json", help="also write all reports to this file")
    args = parser.parse_args(argv)
    results: Dict[str, List[Dict[str, Any]]] = {}
    for size in [int(s) for s in args.tickets.split(",")]:
        for mode in args.modes.split(","):
            results[f"{size} {mode}"] = benchmark(size, args.seed, args.scale, args.profile, args.batch_pages, mode)
    if len(results) > 1:
        peaks = {key: reps[0]["peak_rss_mb"] for key, reps in results.items()}
        cpu = {key: reps[0]["rows_per_cpu_s"] for key, reps in results.items()}
        print(f"\npeak RSS of the full sync (MB): {peaks}")
        print(f"rows per CPU second of the full sync: {cpu}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
