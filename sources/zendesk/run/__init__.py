"""Run control: what makes every run of the source safe to start at any time, after
anything (a crash, a kill, a deploy, a second run started by mistake).

- `run_until_drained`: the one entry point for a whole sync in committed batches (our
  script, the many-accounts driver, the benchmark and the tests call it);
- `hooks`: what the source does for itself when it is built and when its run starts, so a
  plain `pipeline.run(zendesk_support())` holds the same guarantees (`before_run`,
  `start_of_run`, the load file format per table);
- `lock`: one run at a time per pipeline, for the whole run;
- `recovery`: a package a crash left partly loaded is aborted and read again, never
  replayed;
- `defaults`: the dlt settings our runs are tuned with, applied where the user set none;
- `progress`: what a long run tells its user while it runs, and the Ctrl-C stop every wait
  checks (the API client waits through it).

Below `api` and above `tables`: nothing here makes a request.
"""

from __future__ import annotations

from .batches import SyncResult, pending_readers, run_until_drained
from .defaults import RUN_DEFAULTS, apply_run_defaults

__all__ = ["SyncResult", "pending_readers", "run_until_drained", "RUN_DEFAULTS", "apply_run_defaults"]
