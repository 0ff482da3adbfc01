"""Airflow DAG: every Zendesk account of `sources.zendesk.accounts`, one task per account.

Each account's whole sync runs in one task (`zendesk.accounts.sync_account`): batches are
committed until every export is drained, and nothing of one account's sync is ever split
across processes or machines. Accounts run side by side as mapped tasks; `max_active_runs=1`
keeps one active run, so an account never has two syncs at once; a failed account retries
on its own without holding back the others.

Parsing this file is cheap and offline: it imports Airflow only. The account list, the
secrets and the source are read and built when a task runs, on the worker.

Where the project is: the folder holding the `zendesk` package and `.dlt/` (the env var
`ZENDESK_PROJECT_DIR`, else the nearest folder above this file that holds `zendesk/`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.9+
    from airflow.decorators import dag, task

#: Empty: no schedule, runs are triggered (from the API, the CLI or another DAG).
SCHEDULE = os.environ.get("ZENDESK_DAG_SCHEDULE", "@hourly") or None
#: At most this many accounts sync at the same time (each one's pace is its own).
PARALLEL_ACCOUNTS = int(os.environ.get("ZENDESK_DAG_PARALLEL_ACCOUNTS", "8"))
#: The Airflow pool each account's task takes a slot of (a pool of their own caps many accounts).
POOL = os.environ.get("ZENDESK_DAG_POOL") or "default_pool"
#: The wait before a failed account's first retry (it doubles on each further retry).
RETRY_DELAY_SECONDS = float(os.environ.get("ZENDESK_DAG_RETRY_DELAY_SECONDS", "300"))


def _use_project() -> None:
    """Make the `zendesk` package importable and point dlt at the project's `.dlt/`."""
    configured = os.environ.get("ZENDESK_PROJECT_DIR")
    here = Path(__file__).resolve().parent
    candidates = [Path(configured)] if configured else [here, *here.parents]
    for folder in candidates:
        if (folder / "zendesk" / "__init__.py").is_file():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            os.environ.setdefault("DLT_PROJECT_DIR", str(folder))
            return
    raise RuntimeError(
        "The zendesk package was not found above the DAG file; set ZENDESK_PROJECT_DIR to the"
        " folder that holds zendesk/ and .dlt/."
    )


def _reason(exc: BaseException) -> BaseException:
    """The error that says what to fix. dlt wraps the source's error in its step failure,
    whose text spans several lines of dlt's context; the task log gets the inner one on a line
    of its own, above Airflow's traceback."""
    from zendesk.errors import ZendeskSourceError

    while not isinstance(exc, ZendeskSourceError) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


@dag(
    dag_id="zendesk_accounts",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=RETRY_DELAY_SECONDS),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=1),
    },
    tags=["zendesk", "dlt"],
    doc_md=__doc__,
)
def zendesk_accounts() -> None:
    @task
    def list_accounts() -> List[str]:
        """The configured account names; reads the list only, never a secret."""
        _use_project()
        from zendesk.accounts import account_names

        return account_names()

    @task(pool=POOL, max_active_tis_per_dagrun=PARALLEL_ACCOUNTS, map_index_template="{{ task.op_kwargs['account'] }}")
    def sync(account: str) -> Dict[str, Any]:
        """One account's whole sync. The pipeline's working folder is fresh for each attempt:
        the state comes from the destination, so an attempt on another worker resumes where
        the last committed batch ended, and no package a failed attempt left on some worker's
        disk is ever loaded over newer data."""
        _use_project()
        from zendesk.accounts import sync_account

        workdir = tempfile.mkdtemp(prefix=f"zendesk_{account}_")
        try:
            result = sync_account(account, pipelines_dir=workdir)
        except Exception as exc:
            logging.getLogger("zendesk.accounts").error("Zendesk account %s failed: %s", account, _reason(exc))
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return {"account": account, "batches": result.batches, "rows": dict(result.row_counts)}

    sync.expand(account=list_accounts())


zendesk_accounts()
