"""Materialize the Dagster example's assets with Dagster's own API, in a process of its own
(dagster-dlt fails a second materialization in one process: dagster-io/dagster#34052).

Usage: python -m tests.dagster_child [--on-cue] [table ...]  (no table: every asset).
Settings come from the environment, as in a deployment. `--on-cue`: load everything, print
`ready`, and start when a line arrives on stdin (a test starts it at an exact moment).
Prints one JSON line: whether the run succeeded, each materialized asset's row count, and
the failure messages."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = REPO_ROOT / "examples" / "dagster" / "definitions.py"


def load_definitions() -> ModuleType:
    """The example module, loaded by path as `dagster -f` loads it."""
    spec = importlib.util.spec_from_file_location("zendesk_dagster_definitions", DEFINITIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(tables: List[str]) -> int:
    from dagster import AssetKey, materialize

    on_cue = "--on-cue" in tables
    tables = [table for table in tables if table != "--on-cue"]
    module = load_definitions()
    if on_cue:
        print("ready", flush=True)
        sys.stdin.readline()
    account = module.ACCOUNTS[0]
    assets = list(module.defs.assets or [])
    selection = [AssetKey(["zendesk", account, table]) for table in tables] or None
    result = materialize(assets, resources=dict(module.defs.resources or {}), selection=selection, raise_on_error=False)
    counts: Dict[str, Any] = {}
    for materialization in result.asset_materializations_for_node(f"zendesk_{account}"):
        value = materialization.metadata.get("dagster/row_count")
        counts[materialization.asset_key.path[-1]] = None if value is None else value.value
    failures = [event.step_failure_data.error.to_string() for event in result.all_events if event.is_step_failure]
    print(json.dumps({"success": result.success, "row_counts": counts, "failures": failures}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
