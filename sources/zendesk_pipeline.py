"""Replicate a Zendesk Support account with dlt (DuckDB by default).

    python zendesk_pipeline.py                      # the default tables into zendesk.duckdb
    python zendesk_pipeline.py --demo               # no account needed: a local fake Zendesk
    python zendesk_pipeline.py --tables tickets,users,help_center --start-date 01/31/2024
    python zendesk_pipeline.py --destination postgres --full-refresh
    python zendesk_pipeline.py --pipeline-name acme_prod --dataset acme   # one name per account
    python zendesk_pipeline.py check                # are subdomain and credentials right? which tables can we read?
    python zendesk_pipeline.py authorize            # OAuth sign-in: stores a refresh token that is rotated on use
    python zendesk_pipeline.py --account all        # every account of sources.zendesk.accounts, one by one
    python zendesk_pipeline.py --account acme check # one of them (also: authorize, --tables, --full-refresh)

Settings come from .dlt/config.toml and .dlt/secrets.toml or env vars
(SOURCES__ZENDESK__SUBDOMAIN, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN, ...).
Ctrl-C stops a run within seconds; the next run resumes from the last committed batch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import tempfile
import textwrap
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.storages import FileStorage
from dlt.pipeline.exceptions import PipelineStepFailed

from zendesk import TABLE_NAMES, select_tables, zendesk_support
from zendesk.config import duckdb_name_clash, parse_start_date
from zendesk.errors import ZendeskConfigError, ZendeskSettingMissing, ZendeskSourceError
from zendesk.run.progress import RunCancelled, request_stop, reset, stop_requested
from zendesk.resources import resumes
from zendesk.run import SyncResult, run_until_drained
from zendesk.tables.registry import DEFAULT_BATCH_PAGES, GROUPS, TABLES_BY_NAME, ChangeDetection

DEMO_TICKETS = 300
DEMO_PIPELINE = "zendesk_demo"
#: The demo keeps its pipeline state here, under the current folder, never in ~/.dlt.
DEMO_STATE_DIR = ".zendesk_demo"
#: dlt's destinations that take a plain name (the `destination` factory is no destination).
DESTINATION_NAMES = sorted(name for name in dlt.destinations.__all__ if name != "destination")
#: `--progress` displays that need a package of their own: module -> pip package.
PROGRESS_PACKAGES = {"tqdm": "tqdm", "enlighten": "enlighten", "alive_progress": "alive-progress"}
#: Exit codes (docs/troubleshooting.md lists them with the messages).
EXIT_FAILED = 1  # Zendesk, the destination or a setting's value stopped the run
EXIT_USAGE = 2  # a command-line value or a required setting is wrong or missing
#: Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line value that cannot work; the message names the choices."""


def load_zendesk(
    tables: Optional[Sequence[str]] = None,
    destination: Any = None,
    dataset_name: str = "zendesk_data",
    pipeline_name: str = "zendesk",
    full_refresh: bool = False,
    progress: Optional[str] = None,
    pipelines_dir: Optional[str] = None,
    refresh: Optional[str] = None,
    demo: bool = False,
    **source_args: Any,
) -> None:
    """Load the selected tables (all by default), batch after batch until caught up.

    `destination` overrides the pipeline's default (DuckDB in `<pipeline_name>.duckdb`).
    """
    audits_mode = source_args.get("audits_mode") or dlt.config.get("sources.zendesk.audits_mode", str) or "events"
    selected = select_tables(tables, audits_mode)
    pipeline_args: Dict[str, Any] = dict(
        pipeline_name=pipeline_name,
        pipelines_dir=pipelines_dir,
        dataset_name=dataset_name,
        progress=progress_collector(progress),
    )
    if destination:
        # --destination goes to the pipeline itself, before anything touches a package a
        # crashed run left (it must load, or be aborted, where it belongs); a keyword dict,
        # because `dlt init` rewrites the literal destination below and refuses any other
        pipeline = dlt.pipeline(**pipeline_args, **{"destination": destination})
    else:
        pipeline = dlt.pipeline(destination="duckdb", **pipeline_args)
    if source_args.get("start_date") and not full_refresh and not refresh:
        warn_start_date_ignored(pipeline, selected, audits_mode)
    run_kwargs: Dict[str, Any] = {"refresh": refresh or ("drop_resources" if full_refresh else None)}
    batches_started = 0  # all but the last are committed when Ctrl-C stops the sync
    started_at = int(time.time())
    # Committed batches (see zendesk/run/batches.py): a configured batch_pages wins.
    source_args.setdefault("batch_pages", dlt.config.get("sources.zendesk.batch_pages", int) or DEFAULT_BATCH_PAGES)

    def make_source(batch_tables: Sequence[str]) -> Any:
        nonlocal batches_started
        batches_started += 1
        return zendesk_support(**source_args).with_resources(*batch_tables)

    try:
        result = run_until_drained(pipeline, make_source, selected, audits_mode=audits_mode, tuned=True, **run_kwargs)
    except (PipelineStepFailed, RunCancelled, KeyboardInterrupt) as exc:
        if stop_requested() or isinstance(exc, KeyboardInterrupt) or isinstance(root_error(exc), RunCancelled):
            raise Interrupted(max(0, batches_started - 1)) from None
        raise
    report_run(pipeline, result, selected, started_at, demo)


class Interrupted(Exception):
    """The run stopped on Ctrl-C after `committed` batches."""

    def __init__(self, committed: int) -> None:
        super().__init__(committed)
        self.committed = committed


def progress_collector(name: Optional[str]) -> Any:
    """dlt's progress display; the log one without system stats (they need psutil)."""
    if name == "log":
        return dlt.progress.log(log_period=10, dump_system_stats=False)
    return name


def checked_progress(name: Optional[str]) -> Optional[str]:
    """`--progress` when its display can run here, else an error saying what to install."""
    package = PROGRESS_PACKAGES.get(name or "")
    if package and importlib.util.find_spec(str(name)) is None:
        raise UsageError(
            f"--progress {name} needs the {package} package (pip install {package}); --progress log needs none."
        )
    return name


def warn_start_date_ignored(pipeline: Any, tables: Sequence[str], audits_mode: str) -> None:
    """Say which tables resume from their cursor instead of `--start-date`, and how to
    apply it anyway."""
    resources = pipeline.state.get("sources", {}).get("zendesk", {}).get("resources", {})
    resumed = [
        table
        for table in tables
        if TABLES_BY_NAME[table].change_detection in (ChangeDetection.EXPORT_CURSOR, ChangeDetection.SERVER_START_TIME)
        and resumes(resources, table, audits_mode)
    ]
    if resumed:
        print(
            f"--start-date does not apply to {', '.join(resumed)}: they already have a cursor from an"
            " earlier run and resume from it. To reload them from that date, add --full-refresh"
            " (drops those tables and their cursors).",
            file=sys.stderr,
        )


def report_run(
    pipeline: Any, result: SyncResult, tables: Sequence[str], started_at: int, demo: bool = False
) -> None:
    """Where the data went, then per table: what the destination holds and what this run
    loaded (they differ: merges update rows, deleted tickets' metrics are removed), and
    the tables the plan did not allow. The destination and dataset are the pipeline's: a
    run that loaded nothing has a LoadInfo without them."""
    info = result.last_load_info
    name = (info and info.destination_name) or pipeline.destination.destination_name
    where = (info and info.destination_displayable_credentials) or name
    print(f"Loaded into {name} ({where}), dataset {pipeline.dataset_name}:")
    held = destination_row_counts(pipeline, tables)
    skipped = skipped_tables(pipeline, started_at)
    for table in tables:
        if table in skipped:
            print(f"  {table:<22} skipped: Zendesk answered {skipped[table]} (not on this plan or role)")
            continue
        holds = f"{held[table]:>9,} rows" if table in held else "     (not counted)"
        print(f"  {table:<22}{holds}   ({result.row_counts.get(table, 0):,} loaded by this run)")
    loaded = sum(result.row_counts.get(table, 0) for table in tables)
    if demo:
        after = "the demo reloads everything on each run (against an account, the next run loads only what changed)"
    else:
        after = "the next run loads only what changed"
    print(f"{result.batches} batch(es) committed, {loaded:,} rows loaded; {after}.")


def skipped_tables(pipeline: Any, started_at: int) -> Dict[str, int]:
    """Plan-gated tables this sync skipped (not earlier ones), with Zendesk's status."""
    state = pipeline.state.get("sources", {}).get(pipeline.default_schema_name or "zendesk", {})
    skipped: Dict[str, Dict[str, int]] = state.get("run_report", {}).get("skipped_tables", {})
    return {table: skip["status"] for table, skip in skipped.items() if skip["at"] >= started_at}


def destination_row_counts(pipeline: Any, tables: Sequence[str]) -> Dict[str, int]:
    """Rows each table holds in the destination now; empty where it cannot be asked."""
    present = [t for t in tables if t in pipeline.default_schema.data_table_names()]
    if not present:
        return {}
    try:
        rows = pipeline.dataset().row_counts(table_names=present).fetchall()
    except Exception as exc:  # a destination without SQL access: the summary does without
        logging.getLogger(__name__).info("Could not count rows in the destination: %s", exc)
        return {}
    return {str(name): int(count) for name, count in rows}


@contextlib.contextmanager
def demo_account() -> Iterator[Dict[str, Any]]:
    """Start the bundled fake Zendesk (zendesk_fake) and yield source arguments."""
    repo_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    sys.path.insert(0, repo_root)
    try:
        from zendesk_fake import FakeZendesk
    except ImportError:
        raise SystemExit(
            "--demo needs the fake Zendesk package zendesk_fake/ from this project's repository;"
            " run it from a clone of the repository."
        ) from None
    fake = FakeZendesk(seed=7, tickets=DEMO_TICKETS)
    fake.start()
    print(f"Demo: a local fake Zendesk with {DEMO_TICKETS} tickets at {fake.base_url}")
    # The fake listens on a new port each time, and the rate ledger is kept per host:
    # a ledger of its own, removed with the fake, leaves nothing in dlt's data folder.
    rate_dir = tempfile.TemporaryDirectory(prefix="zendesk_demo_rate_")
    try:
        yield {
            "subdomain": fake.subdomain,
            "base_url": fake.base_url,
            "credentials": {"oauth_token": fake.oauth_token},
            "export_requests_per_minute": 600,
            "max_requests_per_minute": 6000,
            "rate_state_dir": rate_dir.name,
        }
    finally:
        fake.stop()
        rate_dir.cleanup()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "check", "authorize"], default="run")
    parser.add_argument(
        "--redirect-uri",
        help="authorize: one of the OAuth client's Redirect URLs (default: the redirect_uri setting,"
        " else http://localhost)",
    )
    parser.add_argument("--demo", action="store_true", help="use a local fake Zendesk; no account needed")
    parser.add_argument("--destination", help=f"a dlt destination: {', '.join(DESTINATION_NAMES)} (default: duckdb)")
    parser.add_argument(
        "--dataset", default="zendesk_data", help="destination dataset/schema name (default: zendesk_data)"
    )
    parser.add_argument(
        "--pipeline-name",
        help="name of the pipeline state (and of the DuckDB file): one per account and environment"
        " (default: zendesk; zendesk_demo with --demo)",
    )
    parser.add_argument(
        "--tables",
        help=f"comma-separated tables or groups ({', '.join(GROUPS)}); default: the tables on by default."
        f" Tables: {', '.join(TABLE_NAMES)}",
    )
    parser.add_argument("--start-date", help="MM/DD/YYYY or ISO date; only for the first run of a table")
    parser.add_argument("--full-refresh", action="store_true", help="drop the selected tables and their cursors, reload from start")
    parser.add_argument("--progress", choices=["log", "tqdm", "enlighten", "alive_progress"], help="dlt progress display")
    parser.add_argument(
        "--account",
        help="a name listed in sources.zendesk.accounts, or 'all': each into its own pipeline and dataset",
    )
    return parser.parse_args(argv)


def requested_tables(value: Optional[str]) -> Optional[List[str]]:
    """`--tables` as a list; None when not given. Given but naming no table is an error
    naming the choices, not a silent "all tables" (unknown names: see `select_tables`)."""
    if value is None:
        return None
    tables = [t.strip() for t in value.split(",") if t.strip()]
    if not tables:
        raise UsageError(f"--tables names no table. Choose from: {', '.join(TABLE_NAMES)}.")
    try:
        select_tables(tables)
    except ZendeskConfigError as exc:
        raise UsageError(str(exc)) from None
    return tables


def checked_start_date(value: Optional[str]) -> Optional[str]:
    """`--start-date` when it is a past date, checked before anything else is said about it."""
    if value:
        try:
            parse_start_date(value)
        except ZendeskConfigError as exc:
            raise UsageError(f"--start-date: {exc}") from None
    return value


def checked_pipeline_name(name: Optional[str]) -> Optional[str]:
    """`--pipeline-name` when it can name the pipeline's folder (dlt's own rule)."""
    if name is not None:
        try:
            FileStorage.validate_file_name_component(name)
        except ValueError:
            raise UsageError(
                f"--pipeline-name '{name}' cannot name the pipeline's folder: use letters, digits, '_' and '-'."
            ) from None
    return name


def checked_duckdb_names(pipeline_name: str, dataset: str, destination: Any) -> None:
    """DuckDB names a file's catalog after the file (`<pipeline name>.duckdb` by default); a
    dataset of the same name makes every load fail ("Ambiguous reference to catalog or
    schema"), so the pair is refused before anything runs."""
    if destination not in (None, "duckdb"):
        return
    configured = dlt.secrets.get("destination.duckdb.credentials")
    path = configured if isinstance(configured, str) and configured else f"{pipeline_name}.duckdb"
    if duckdb_name_clash(path, dataset):
        raise UsageError(
            f"--dataset {dataset} is also the name of the DuckDB file ({dataset}.duckdb), which DuckDB"
            f" cannot tell apart: choose another --dataset (for example {dataset}_data)."
        )


def checked_destination(name: Optional[str]) -> Optional[str]:
    """The destination name when dlt knows it, else an error naming the choices."""
    if not name:
        return None
    try:
        Destination.from_reference(name)
    except UnknownDestinationModule:
        raise UsageError(
            f"Unknown destination '{name}'. Choose one of: {', '.join(DESTINATION_NAMES)}"
            f" (or a named destination with destination_type set under [destination.{name}])."
        ) from None
    return name


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_command(args)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except ConfigFieldMissingException as exc:
        print(missing_settings_message(exc), file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as exc:
        print(interrupted_message(exc.committed), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("Stopped (Ctrl-C).", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PipelineStepFailed as exc:
        root = root_error(exc)
        if isinstance(root, ConfigFieldMissingException):
            print(missing_settings_message(root), file=sys.stderr)
            return EXIT_USAGE
        print(step_failed_message(exc.step, root), file=sys.stderr)
        return EXIT_USAGE if isinstance(root, ZendeskSettingMissing) else EXIT_FAILED
    except ZendeskSourceError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ZendeskSettingMissing) else EXIT_FAILED


def run_command(args: argparse.Namespace) -> int:
    source_args: Dict[str, Any] = {}
    if checked_start_date(args.start_date):
        source_args["start_date"] = args.start_date
    tables = requested_tables(args.tables)
    destination = checked_destination(args.destination)
    checked_progress(args.progress)
    checked_pipeline_name(args.pipeline_name)
    if args.account:
        return run_accounts(args, tables, destination, source_args)
    if args.command == "authorize":
        from zendesk.auth.authorize import authorize_from_config

        authorize_from_config(redirect_uri=args.redirect_uri)
        return 0
    with contextlib.ExitStack() as stack:
        run_args: Dict[str, Any] = {"pipeline_name": args.pipeline_name or "zendesk"}
        if args.demo:
            source_args.update(stack.enter_context(demo_account()))
            run_args = demo_run_args(args.pipeline_name, destination)
        checked_duckdb_names(run_args["pipeline_name"], args.dataset, args.destination)
        if args.command == "check":
            from zendesk.check import check_connection

            print(check_connection(**source_args).describe())
            return 0
        if not args.demo:
            warn_base_url()
        stack.enter_context(stop_on_ctrl_c())
        load_zendesk(
            tables,
            destination=run_args.pop("destination", destination),
            dataset_name=args.dataset,
            full_refresh=args.full_refresh,
            progress=args.progress,
            demo=args.demo,
            **run_args,
            **source_args,
        )
    return 0


def warn_base_url() -> None:
    """With `base_url` set, the subdomain names no host, so a wrong one still connects:
    say so once, and that `check` compares the two."""
    base_url = dlt.config.get("sources.zendesk.base_url", str)
    if base_url:
        subdomain = dlt.config.get("sources.zendesk.subdomain", str)
        print(
            f"base_url is set: requests go to {base_url}, and subdomain '{subdomain}' names no host;"
            " `python zendesk_pipeline.py check` verifies that the server answers for that subdomain.",
            file=sys.stderr,
        )


def run_accounts(
    args: argparse.Namespace, tables: Optional[List[str]], destination: Optional[str], source_args: Dict[str, Any]
) -> int:
    """`--account NAME` / `--account all`: the command for accounts of sources.zendesk.accounts,
    each with its own pipeline, dataset, token store and rate budget."""
    from zendesk.accounts import ZendeskAccountsFailed, account_names, authorize_account, check_account, sync_accounts

    if args.demo or args.dataset != "zendesk_data" or args.pipeline_name:
        raise UsageError(
            "--account takes each account's pipeline and dataset from sources.zendesk.accounts;"
            " drop --demo, --dataset and --pipeline-name."
        )
    names = account_names() if args.account == "all" else [args.account]
    if args.command in ("authorize", "check"):
        for name in names:
            if args.command == "authorize":
                authorize_account(name, redirect_uri=args.redirect_uri)
            else:
                print(f"{name}: {check_account(name).describe()}")
        return 0
    code = 0
    try:
        results = sync_accounts(
            names, tables=tables, destination=destination, full_refresh=args.full_refresh,
            progress=args.progress, **source_args,
        )
    except ZendeskAccountsFailed as exc:
        for name, error in exc.failures.items():
            root = root_error(error)
            if isinstance(root, ConfigFieldMissingException):
                print(f"{name}: failed: {missing_settings_message(root)}", file=sys.stderr)
            else:
                print(f"{name}: failed: {step_failed_message(None, root)}", file=sys.stderr)
        results, code = exc.results, EXIT_FAILED
    for name, result in results.items():
        print(account_summary(name, result))
    return code


def account_summary(name: str, result: SyncResult) -> str:
    """A few short lines per account: batches and rows, then the tables that got rows."""
    loaded = sum(result.row_counts.values())
    head = f"{name}: {result.batches} batch(es), {loaded:,} rows loaded"
    if not loaded:
        return f"{head} (nothing changed)"
    # a no-break space keeps each table next to its count when the lines are wrapped
    tables = ", ".join(f"{t}\u00a0{n:,}" for t, n in sorted(result.row_counts.items()) if n)
    lines = textwrap.wrap(tables, width=96, initial_indent="  ", subsequent_indent="  ")
    return "\n".join([head + ":", *(line.replace("\u00a0", " ") for line in lines)])


def demo_run_args(pipeline_name: Optional[str], destination: Optional[str]) -> Dict[str, Any]:
    """The demo's own state and DuckDB file under the current folder, reloaded in full on
    every run: nothing run before, here or in another clone, can change what it shows."""
    name = pipeline_name or DEMO_PIPELINE
    here = os.path.abspath(os.getcwd())
    return {
        "pipeline_name": name,
        "pipelines_dir": os.path.join(here, DEMO_STATE_DIR),
        "destination": destination or dlt.destinations.duckdb(os.path.join(here, f"{name}.duckdb")),
        "refresh": "drop_sources",
    }


@contextlib.contextmanager
def stop_on_ctrl_c() -> Iterator[None]:
    """First Ctrl-C: no request is sent after it, the batch in flight is dropped and the
    run ends with what earlier batches committed. A second Ctrl-C stops at once.

    dlt's own Ctrl-C handling in its normalize and load steps is turned off (unless set),
    so a Ctrl-C during a load lets that load commit instead of cutting it off."""
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    reset()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop_requested():
            raise KeyboardInterrupt
        request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted_message(committed: int) -> str:
    if committed:
        done = f"{committed} batch(es) of this run were loaded and committed; the batch in flight was dropped."
    else:
        done = "Nothing from this run was committed."
    return f"Stopped (Ctrl-C): {done} The next run resumes from the last committed batch."


def root_error(exc: BaseException) -> BaseException:
    """The innermost error of a dlt step failure: the one that says what to fix."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        if isinstance(exc, (ZendeskSourceError, RunCancelled)):
            break
    return exc


def step_failed_message(step: Optional[str], root: BaseException) -> str:
    """One line for a failed step. Two accounts creating the same tables of a new shared
    Postgres dataset at one moment deadlock; the loser's package stays pending and is
    loaded by the next run, so a rerun is the whole fix (chosen over serializing the
    first creation, which would need a lock across processes around dlt's load)."""
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    if "deadlock detected" in str(root):
        return (
            "Another run was changing the same tables of this dataset at the same moment (Postgres:"
            " deadlock detected). Nothing of this run's load was committed; rerun it, that is safe."
        )
    return f"The {step} step failed: {text}" if step else text


def missing_settings_message(exc: ConfigFieldMissingException) -> str:
    destination = missing_destination(exc)
    if destination:
        return (
            f"The {destination} destination has no credentials: add [destination.{destination}.credentials]"
            f" to .dlt/secrets.toml, or set the env var DESTINATION__{destination.upper()}__CREDENTIALS"
            " (a connection string, e.g. postgresql://user:password@host:5432/database)."
        )
    fields = ", ".join(exc.fields)
    return (
        f"Zendesk settings are missing ({fields}). Set them in .dlt/secrets.toml"
        " (values such as <configure me> or ... count as missing):\n\n"
        "  [sources.zendesk]\n"
        '  subdomain = "acme"            # from https://acme.zendesk.com\n\n'
        "  [sources.zendesk.credentials]\n"
        '  client_id = "..."             # an OAuth client; then: python zendesk_pipeline.py authorize\n'
        '  client_secret = "..."\n'
        '  # or: oauth_token = "...", or: email = "you@acme.com" and api_token = "..."\n\n'
        "or as env vars SOURCES__ZENDESK__SUBDOMAIN, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN, ...\n"
        "No account at hand? Try it on a local fake Zendesk: python zendesk_pipeline.py --demo"
    )


def missing_destination(exc: ConfigFieldMissingException) -> Optional[str]:
    """The destination whose settings are missing, when they are a destination's (dlt's
    lookup traces hold the sections it searched: `destination.<name>...`)."""
    for trace in _lookups(list(exc.traces.values())):
        sections = list(getattr(trace, "sections", None) or [])
        if len(sections) >= 2 and sections[0] == "destination":
            return str(sections[1])
    return None


def _lookups(items: Any) -> Iterator[Any]:
    for item in items:
        nested = getattr(item, "traces", None)
        if isinstance(item, list):
            yield from _lookups(item)
        elif isinstance(nested, dict):
            yield from _lookups(list(nested.values()))
        else:
            yield item


if __name__ == "__main__":
    sys.exit(main())
