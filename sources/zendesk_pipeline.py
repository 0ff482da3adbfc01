"""Replicate a Zendesk Support account with dlt (DuckDB by default).

    python zendesk_pipeline.py                      # all 16 tables into zendesk.duckdb
    python zendesk_pipeline.py --demo               # no account needed: a local fake Zendesk
    python zendesk_pipeline.py --tables tickets,users --start-date 01/31/2024
    python zendesk_pipeline.py --destination postgres --full-refresh
    python zendesk_pipeline.py check                # are subdomain and credentials right? which tables can we read?
    python zendesk_pipeline.py authorize            # OAuth sign-in: stores a refresh token that is rotated on use

Settings come from .dlt/config.toml and .dlt/secrets.toml or env vars
(SOURCES__ZENDESK__SUBDOMAIN, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from zendesk import TABLE_NAMES, select_tables, zendesk_support
from zendesk.errors import ZendeskAuthError, ZendeskSourceError
from zendesk.run_defaults import apply_run_defaults
from zendesk.settings import DEFAULT_BATCH_PAGES
from zendesk.sync import SyncResult, run_until_drained

DEMO_TICKETS = 300


def load_zendesk(
    tables: Optional[Sequence[str]] = None,
    destination: Optional[str] = None,
    dataset_name: str = "zendesk_data",
    pipeline_name: str = "zendesk",
    full_refresh: bool = False,
    progress: Optional[str] = None,
    **source_args: Any,
) -> None:
    """Load the selected tables (all by default), batch after batch until caught up.

    `destination` overrides the pipeline's default (DuckDB) with any dlt destination name.
    """
    audits_mode = source_args.get("audits_mode") or dlt.config.get("sources.zendesk.audits_mode", str) or "events"
    selected = select_tables(tables, audits_mode)
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name,
        destination="duckdb",
        dataset_name=dataset_name,
        progress=progress,
    )
    run_kwargs: Dict[str, Any] = {"refresh": "drop_resources" if full_refresh else None}
    if destination:
        run_kwargs["destination"] = destination

    source_args.setdefault("batch_pages", DEFAULT_BATCH_PAGES)

    def make_source(batch_tables: Sequence[str]) -> Any:
        return zendesk_support(**source_args).with_resources(*batch_tables)

    started_at = int(time.time())
    apply_run_defaults()
    result = run_until_drained(pipeline, make_source, selected, audits_mode=audits_mode, **run_kwargs)
    print(result.last_load_info)
    report_run(pipeline, result, started_at)


def report_run(pipeline: Any, result: SyncResult, started_at: int) -> None:
    """Print rows per table over the whole sync and the tables the plan did not allow."""
    state = pipeline.state.get("sources", {}).get(pipeline.default_schema_name or "zendesk", {})
    skipped: Dict[str, Dict[str, int]] = state.get("run_report", {}).get("skipped_tables", {})
    for table, skip in sorted(skipped.items()):
        if skip["at"] >= started_at:
            print(f"skipped {table}: Zendesk answered {skip['status']} (not on this plan or role)")
    rows = ", ".join(f"{t}={n}" for t, n in sorted(result.row_counts.items()))
    print(f"{result.batches} batch(es); rows loaded: {rows or 'none (nothing changed)'}")


@contextlib.contextmanager
def demo_account() -> Iterator[Dict[str, Any]]:
    """Start the bundled fake Zendesk (tests/fake_zendesk) and yield source arguments."""
    repo_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    sys.path.insert(0, repo_root)
    try:
        from tests.fake_zendesk import FakeZendesk
    except ImportError:
        raise SystemExit(
            "--demo needs the fake Zendesk from this project's repository (tests/fake_zendesk);"
            " run it from a clone of the repository."
        ) from None
    fake = FakeZendesk(seed=7, tickets=DEMO_TICKETS)
    fake.start()
    print(f"Demo: a local fake Zendesk with {DEMO_TICKETS} tickets at {fake.base_url}")
    try:
        yield {
            "subdomain": fake.subdomain,
            "base_url": fake.base_url,
            "credentials": {"oauth_token": fake.oauth_token},
            "export_requests_per_minute": 600,
            "max_requests_per_minute": 6000,
        }
    finally:
        fake.stop()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "check", "authorize"], default="run")
    parser.add_argument("--redirect-uri", help="authorize: a redirect URI registered on the OAuth client")
    parser.add_argument("--demo", action="store_true", help="use a local fake Zendesk; no account needed")
    parser.add_argument("--destination", help="any dlt destination name (default: duckdb)")
    parser.add_argument("--dataset", default="zendesk_data", help="destination dataset/schema name")
    parser.add_argument("--tables", help=f"comma-separated subset of: {', '.join(TABLE_NAMES)}")
    parser.add_argument("--start-date", help="MM/DD/YYYY or ISO date; only for the first run of a table")
    parser.add_argument("--full-refresh", action="store_true", help="drop the selected tables and their cursors, reload from start")
    parser.add_argument("--progress", choices=["log", "tqdm", "enlighten", "alive_progress"], help="dlt progress display")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    source_args: Dict[str, Any] = {}
    if args.start_date:
        source_args["start_date"] = args.start_date
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    try:
        if args.command == "authorize":
            from zendesk.oauth import authorize_from_config

            authorize_from_config(redirect_uri=args.redirect_uri)
            return 0
        with contextlib.ExitStack() as stack:
            pipeline_name = "zendesk"
            if args.demo:
                source_args.update(stack.enter_context(demo_account()))
                pipeline_name = "zendesk_demo"
            if args.command == "check":
                from zendesk.check import check_connection

                print(check_connection(**source_args).describe())
                return 0
            load_zendesk(
                tables,
                destination=args.destination,
                dataset_name=args.dataset,
                pipeline_name=pipeline_name,
                full_refresh=args.full_refresh,
                progress=args.progress,
                **source_args,
            )
    except ConfigFieldMissingException as exc:
        print(missing_settings_message(exc), file=sys.stderr)
        return 2
    except PipelineStepFailed as exc:
        print(f"The {exc.step} step failed: {root_cause(exc)}", file=sys.stderr)
        return 1
    except ZendeskAuthError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except ZendeskSourceError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def root_cause(exc: BaseException) -> str:
    """The innermost error of a dlt step failure: the one that says what to fix."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        if isinstance(exc, ZendeskSourceError):
            break
    return str(exc)


def missing_settings_message(exc: ConfigFieldMissingException) -> str:
    fields = ", ".join(exc.fields)
    return (
        f"Zendesk settings are missing ({fields}). Set them in .dlt/secrets.toml:\n\n"
        "  [sources.zendesk]\n"
        '  subdomain = "acme"            # from https://acme.zendesk.com\n\n'
        "  [sources.zendesk.credentials]\n"
        '  client_id = "..."             # an OAuth client; then: python zendesk_pipeline.py authorize\n'
        '  client_secret = "..."\n'
        '  # or: oauth_token = "...", or: email = "you@acme.com" and api_token = "..."\n\n'
        "or as env vars SOURCES__ZENDESK__SUBDOMAIN, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN, ...\n"
        "No account at hand? Try it on a local fake Zendesk: python zendesk_pipeline.py --demo"
    )


if __name__ == "__main__":
    sys.exit(main())
