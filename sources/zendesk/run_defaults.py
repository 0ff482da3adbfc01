"""dlt settings this source's runs were measured with, applied where the user set none.

A project made with `dlt init` gets this package and the pipeline script but not this
repository's `.dlt/config.toml`, so without this module it would run with dlt's generic
defaults: 5,000-row writer buffers for each of ~40 tables, as many parallel load jobs as
there are files, gzip on short-lived local files, and an in-process DuckDB that caches up
to 80% of RAM. Measured at 20,000 tickets (`python -m benchmark`), those defaults took a
full sync's peak memory from 276 MB to over 600 MB and cost ~15% more CPU.

A value set anywhere dlt looks (env vars, secrets.toml, config.toml) always wins: a default
is only written as an environment variable when dlt finds no value for that key.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import dlt

#: dlt config key -> value used when the user configured none (why: see each comment).
RUN_DEFAULTS: Dict[str, Any] = {
    # Rows a table's writer holds before writing them out; the largest part of the memory
    # held between steps at dlt's default of 5,000 (peak 400 -> 304 MB at 20,000 tickets).
    "data_writer.buffer_max_items": 1000,
    # Intermediate files live seconds on local disk; gzip on them was ~15% of a sync's CPU.
    "data_writer.disable_compression": True,
    # DuckDB loads inside this process: 2 parallel jobs instead of one per file
    # (peak 690 -> 476 MB at 20,000 tickets). Raise it for BigQuery or Snowflake.
    "load.workers": 2,
    # DuckDB's cache, capped: it spills to disk beyond this instead of growing with the
    # size of the destination (721 MB at 200,000 tickets uncapped).
    "destination.duckdb.credentials.global_config": {"memory_limit": "128MB"},
}


def _env_name(key: str) -> str:
    return key.replace(".", "__").upper()


def apply_run_defaults() -> List[str]:
    """Set each of `RUN_DEFAULTS` the user left unset; return the keys that were set."""
    applied = []
    for key, value in RUN_DEFAULTS.items():
        if dlt.config.get(key) is not None:
            continue
        os.environ[_env_name(key)] = json.dumps(value) if isinstance(value, dict) else str(value)
        applied.append(key)
    return applied
