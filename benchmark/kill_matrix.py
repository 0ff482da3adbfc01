"""Kill matrix: a plain run SIGKILLed at every point of dlt's run, then what follows it.

    python -m benchmark.kill_matrix                           # DuckDB and Postgres, every load job
    python -m benchmark.kill_matrix --destinations duckdb --jobs 1,5,10

For each destination and kill point, against a fresh fake account:

1. a plain run loads the account; the account changes;
2. a plain run (tests/plain_run_child.py) is SIGKILLed at the point: at its 3rd HTTP
   answer (extract), before normalize, before load, or right after the N-th load job
   committed in the destination (before dlt recorded it), for every N the run reaches;
3. two plain runs start together: one may be refused (the other holds the run lock), none
   may fail; each key once after the one that completes;
4. the account changes again; two more plain runs one after the other: neither fails, each
   key once after each, and every table equals the fake's truth after the last.

Prints one line per scenario and a JSON summary (kills, runs, refusals, failures, time).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.helpers import postgres_available
from tests.helpers.kill import NOT_KILLED, REFUSED, Target, keys_twice
from tests.helpers.truth import assert_matches_truth
from zendesk_fake import FakeZendesk

TICKETS = 150


def _problem(target: Target, fake: FakeZendesk, exact: bool) -> Optional[str]:
    """What is wrong with the destination now (keys twice; with `exact`, any difference
    from the truth), or None."""
    twice = keys_twice(target.pipeline())
    if twice:
        return f"keys twice in {twice}"
    if exact:
        try:
            assert_matches_truth(target.pipeline(), fake.ground_truth())
        except AssertionError as error:
            return str(error).splitlines()[0][:200]
    return None


def scenario(kind: str, kill_at: str, workdir: Path) -> Dict[str, Any]:
    """One kill and the runs after it; returns what happened."""
    started = time.perf_counter()
    fake = FakeZendesk(seed=3, tickets=TICKETS)
    fake.start()
    target = Target(kind, workdir)
    result: Dict[str, Any] = {"destination": kind, "kill_at": kill_at, "runs": 0, "refused": 0, "failed": 0}
    problems: List[str] = []
    try:
        first = target.run(fake)
        result["runs"] += 1
        if first.returncode != 0:
            raise RuntimeError(f"the first run failed: {first.stderr[-500:]}")
        fake.mutate(seed=11, fraction=0.05)
        killed = target.run(fake, kill_at)
        result["killed"] = killed.returncode == -9
        if killed.returncode == NOT_KILLED:
            result["not_reached"] = killed.stdout.strip()
            return result
        together = [target.start(fake) for _ in range(2)]
        for run in together:
            _, err = run.communicate(timeout=600)
            result["runs"] += 1
            if run.returncode == REFUSED:
                result["refused"] += 1
            elif run.returncode != 0:
                result["failed"] += 1
                problems.append(f"run at once failed: {err.strip().splitlines()[-1] if err.strip() else run.returncode}")
        problem = _problem(target, fake, exact=False)
        if problem:
            problems.append(f"after the runs at once: {problem}")
        fake.mutate(seed=12, fraction=0.05)
        for n in range(2):
            run = target.run(fake)
            result["runs"] += 1
            if run.returncode != 0:
                result["failed"] += 1
                problems.append(f"run {n + 1} after failed: {run.stderr.strip().splitlines()[-1]}")
            problem = _problem(target, fake, exact=n == 1)
            if problem:
                problems.append(f"after run {n + 1}: {problem}")
    finally:
        target.drop()
        fake.stop()
        result["seconds"] = round(time.perf_counter() - started, 1)
    result["exact"] = not problems
    result["problems"] = problems
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--destinations", default="duckdb,postgres")
    parser.add_argument("--jobs", help="load jobs to kill after, e.g. 1,5,10 (default: every one the run reaches)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.destinations.split(",") if k != "postgres" or postgres_available()]
    results: List[Dict[str, Any]] = []
    started = time.perf_counter()
    for kind in kinds:
        points = ["request:3", "normalize", "load"]
        jobs = [int(n) for n in args.jobs.split(",")] if args.jobs else range(1, 1000)
        for kill_at in points + [f"committed:{n}" for n in jobs]:
            with tempfile.TemporaryDirectory(prefix="zd_kill_") as workdir:
                result = scenario(kind, kill_at, Path(workdir))
            if result.get("not_reached"):
                print(json.dumps(result), flush=True)
                break  # past the run's last load job
            results.append(result)
            print(json.dumps(result), flush=True)
    summary = {
        "scenarios": len(results),
        "kills": sum(1 for r in results if r.get("killed")),
        "runs": sum(r["runs"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "failed_runs": sum(r["failed"] for r in results),
        "exact": sum(1 for r in results if r["exact"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({"summary": summary}))
    return 0 if summary["exact"] == summary["scenarios"] else 1


if __name__ == "__main__":
    sys.exit(main())
