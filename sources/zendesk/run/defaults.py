"""dlt settings this source's runs are tuned and benchmarked with, applied where the user set none.

A project made with `dlt init` gets this package and the pipeline script but not this
repository's `.dlt/config.toml`, so without this module it would run with dlt's generic
defaults: 5,000-row writer buffers for each of ~40 tables, as many parallel load jobs as
there are files, gzip on short-lived local files, and an in-process DuckDB that caches up
to 80% of RAM. Those defaults more than double a full sync's peak memory and cost more CPU
(figures in `benchmark/README.md`).

A value set anywhere dlt looks (env vars, secrets.toml, config.toml) always wins: a default
is only written as an environment variable when dlt finds no value for that key. The same
goes for the malloc arena cap below, which `MALLOC_ARENA_MAX` overrides.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import platform
from typing import Any, Dict, List, Optional

import dlt

logger = logging.getLogger(__name__)

#: dlt config key -> value used when the user configured none (why: see each comment).
RUN_DEFAULTS: Dict[str, Any] = {
    # Rows a table's writer holds before writing them out; at dlt's default of 5,000 for
    # each of ~40 tables, the largest part of the memory held between steps.
    "data_writer.buffer_max_items": 1000,
    # Intermediate files live seconds on local disk; gzip on them is CPU spent for nothing.
    "data_writer.disable_compression": True,
    # DuckDB loads inside this process: 2 parallel jobs instead of one per file, each of
    # which holds its own memory. Raise it for BigQuery or Snowflake.
    "load.workers": 2,
    # DuckDB's cache, capped: it spills to disk beyond this instead of growing with the
    # size of the destination.
    "destination.duckdb.credentials.global_config": {"memory_limit": "128MB"},
}


#: glibc malloc arenas for the run's threads, unless the user set `MALLOC_ARENA_MAX`.
#: glibc gives each thread (dlt's extract and load workers, DuckDB's own) an arena of its
#: own, up to 8 per core, and freed memory stays behind in each of them, so what a process
#: holds grows from batch to batch; two arenas keep it flat for the same CPU time.
MALLOC_ARENAS = 2

#: mallopt's parameter number for the arena cap (glibc's malloc.h).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> Optional[int]:
    """Cap glibc's malloc arenas for this process; return the cap set, or None where this
    is not glibc or the user chose their own with `MALLOC_ARENA_MAX` (which glibc applied
    at start). Arenas already made stay; a cap set before the run's threads start holds."""
    if os.environ.get("MALLOC_ARENA_MAX") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        if libc.mallopt(_M_ARENA_MAX, arenas) != 1:
            return None
    except (OSError, AttributeError):
        return None
    logger.debug("malloc arenas capped at %d", arenas)
    return arenas


def _env_name(key: str) -> str:
    return key.replace(".", "__").upper()


def apply_run_defaults() -> List[str]:
    """Set each of `RUN_DEFAULTS` the user left unset, and cap malloc arenas; return the
    keys that were set."""
    limit_malloc_arenas()
    applied = []
    for key, value in RUN_DEFAULTS.items():
        if dlt.config.get(key) is not None:
            continue
        os.environ[_env_name(key)] = json.dumps(value) if isinstance(value, dict) else str(value)
        applied.append(key)
    return applied
