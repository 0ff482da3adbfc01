"""dlt resources generated from the table registry in `tables/registry.py`.

Every resource takes its name, key, write disposition, cursor and custom fields from its
`TableSpec`, and is built by how the table detects changes (`OWN_TABLES`) or, when
several tables share one export pass, as a transformer of that hidden reader (tickets +
ticket_metrics from one ticket export; ticket_comments, ticket_audits and the field and tag
history from one ticket events export), so no export is ever read twice in a run. Nothing
here asks which table it is building.

A shared reader keeps one position per table it feeds (`shared_reader`), so any subset of
tables, chosen by any means (`with_resources`, a Dagster asset selection, an Airflow task
split), reads the export from the earliest position among the tables selected and leaves
the others where they were: no table ever misses a change its sibling consumed.

A plain `pipeline.run(zendesk_support())` reads every export to its end: nothing is left
for a later run. With `batch_pages` set (what `run.run_until_drained` uses for long first
syncs), the export readers of one run share that many pages between them: a reader that
finds them spent stops and records that it is not drained, the run commits what it has
(dlt saves state only when a whole extract succeeds) and the next run continues from
there. A batch therefore holds the same number of pages however large the account and
however many exports are running, and a crash never costs more than one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.helpers.rest_client.paginators import BasePaginator

from .run import progress
from .api.client import ZendeskClient
from .tables.column_controls import ColumnControls
from .tables.custom_fields import SOURCE_ATTRIBUTE, FieldCatalog
from .errors import TableUnavailable
from .api.paginators import (
    CursorExportPaginator,
    SideloadingCursorExportPaginator,
    TimeExportPaginator,
    list_paginator,
    list_params,
)
from .tables.rows import Row, epoch_to_iso, iso_to_epoch, with_json_values, with_sideloads
from .tables.registry import (
    EXPORT_MIN_AGE_SECONDS,
    FIELD_DEFINITIONS,
    NATIVE_COLUMNS,
    TABLES,
    TABLES_BY_NAME,
    ChangeDetection,
    Endpoint,
    Pagination,
    PerParent,
    TableSpec,
    dlt_write_disposition,
    reader_of,
    state_holder,
)

logger = logging.getLogger(__name__)

#: Tables whose rows other tables are read per (`per_parent`): scanned once a run for all.
PARENT_TABLES = frozenset(spec.per_parent.table for spec in TABLES if spec.per_parent)

#: Tickets whose rows are fetched at once for a table's `per_ticket` source.
PER_TICKET_WORKERS = 4



def change_stream_cursor(cursor_path: str, initial_value: Any, primary_key: Any) -> Any:
    """An incremental cursor over one of Zendesk's change streams.

    External schedulers (Airflow's data interval) are refused: an export is a stream of
    changes read from a cursor, not a date partition; a window cut out of it would move
    the export cursor past rows outside the window, and later runs would miss them."""
    return dlt.sources.incremental(
        cursor_path,
        initial_value=initial_value,
        primary_key=primary_key,
        allow_external_schedulers=False,
    )


def fingerprint(row: Row) -> str:
    """A short content hash: any change to a row, even within the same second, shows."""
    return hashlib.blake2b(
        json.dumps(row, sort_keys=True, default=str).encode(), digest_size=8
    ).hexdigest()


class PageBudget:
    """The export pages one run may still fetch, shared by every reader thread
    (`None`: no bound, every export is read to its end)."""

    def __init__(self, pages: Optional[int]) -> None:
        self._left = pages
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Claim one page; False once the batch's pages are spent."""
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True


@dataclass
class SourceContext:
    """What every resource of one run shares: the client, settings and per-run caches."""

    #: Builds the HTTP client when the first run starts (never when the source is built).
    connect: Callable[[], ZendeskClient]
    start_epoch: int
    batch_pages: Optional[int] = None
    audits_mode: str = "events"
    deletions: str = "hard"
    now: Callable[[], float] = lambda: datetime.now(timezone.utc).timestamp()
    _field_definitions: Dict[str, List[Row]] = field(default_factory=dict)
    _field_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Parent lists scanned this run, by table: a parent table and the tables read per
    #: its rows (schedules and their holidays) share one scan; a plan-gated answer is
    #: kept too. One lock per table, so different lists still load in parallel.
    _scans: Dict[str, Any] = field(default_factory=dict)
    _scan_locks: Dict[str, threading.Lock] = field(default_factory=dict)
    #: Called once per run, before its first request (takes the pipeline's run lock and
    #: cleans up after an interrupted load); an exception it raises fails every resource.
    on_run_start: Callable[[], None] = lambda: None
    _runs: Dict[str, Any] = field(default_factory=dict)
    _run_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Columns dropped or hashed before any row reaches dlt (personal data).
    controls: ColumnControls = field(default_factory=ColumnControls, repr=False)
    _client: Optional[ZendeskClient] = None

    @property
    def client(self) -> ZendeskClient:
        """The client `run()` built; resources use it only after calling `run()`."""
        assert self._client is not None, "SourceContext.run() builds the client"
        return self._client

    def run(self) -> PageBudget:
        """Start (once) the run being extracted now; return its export page budget.

        Keyed by the load package, not held by the source object: a source built once and
        run several times (an orchestrator parses a DAG file once and runs its tasks
        later) gives every run its own `batch_pages`. Every resource calls this before
        its first request."""
        load_id = dlt.current.load_package_state()["load_id"]
        with self._run_lock:
            started = self._runs.get(load_id)
            if started is None:
                self._field_definitions = {}  # a new run reads the current definitions
                self._scans, self._scan_locks = {}, {}
                try:
                    self.on_run_start()
                    if self._client is None:
                        self._client = self.connect()
                    started = PageBudget(self.batch_pages)
                except Exception as error:  # every resource of this run reports it
                    started = error
                self._runs = {load_id: started}
        if isinstance(started, Exception):
            raise started
        return started

    def export_start(self, value: int) -> int:
        """Zendesk refuses a start_time in the last minute; never ask for one."""
        return max(0, min(int(value), int(self.now()) - EXPORT_MIN_AGE_SECONDS))

    def field_definitions(self, kind: str) -> List[Row]:
        """Field definitions, fetched once per run (ticket_fields also feeds its own table).

        Resources run in parallel threads; the lock makes the second caller wait for the
        first one's answer instead of sending the same request again."""
        self.run()
        with self._field_lock:
            return self._load_field_definitions(kind)

    def _load_field_definitions(self, kind: str) -> List[Row]:
        if kind not in self._field_definitions:
            endpoint, plan_gated = FIELD_DEFINITIONS[kind]
            rows: List[Row] = []
            try:
                for page in self.client.pages(
                    endpoint, list_paginator(endpoint), list_params(endpoint), table=f"{kind}_fields", plan_gated=plan_gated
                ):
                    rows.extend(page)
            except TableUnavailable as error:
                logger.warning("%s custom fields load untyped: %s", kind, error)
                rows = []
            self._field_definitions[kind] = rows
        return self._field_definitions[kind]

    def scan(self, spec: TableSpec) -> List[Row]:
        """`spec`'s whole list, fetched once per run whoever asks first; copies, because
        tables reshape their rows. Raises `TableUnavailable` when the plan lacks it."""
        self.run()
        with self._field_lock:
            lock = self._scan_locks.setdefault(spec.name, threading.Lock())
        with lock:
            if spec.name not in self._scans:
                try:
                    self._scans[spec.name] = [row for page in _full_list(self, spec) for row in page]
                except TableUnavailable as error:
                    self._scans[spec.name] = error
            scanned = self._scans[spec.name]
        if isinstance(scanned, TableUnavailable):
            raise scanned
        return copy.deepcopy(scanned)

    def catalog(self, spec: TableSpec, page: Iterable[Row] = ()) -> FieldCatalog:
        """The custom-field catalog of `spec`'s table, with the types its columns already have in
        the destination schema: a field whose type changed in Zendesk keeps its column's
        type, and values that no longer fit go to a dlt variant column.

        Native column names are reserved for good: the documented ones, and every
        top-level key of `page` (kept in the source state, so a native field Zendesk sent
        once keeps its name reserved in later runs too)."""
        kind = spec.custom_fields
        assert kind is not None, f"{spec.name} has no custom fields"
        state = dlt.current.source_state()
        columns_state = state.setdefault("custom_field_columns", {}).setdefault(kind, {})
        seen = state.setdefault("native_columns", {}).setdefault(kind, [])
        attribute = SOURCE_ATTRIBUTE[kind]
        new_keys = {key for record in page for key in record if key != attribute} - set(seen) - NATIVE_COLUMNS[kind]
        seen.extend(sorted(new_keys))
        existing = dlt.current.source_schema().tables.get(spec.name, {}).get("columns", {})
        column_types = {name: c["data_type"] for name, c in existing.items() if c.get("data_type")}
        return FieldCatalog(
            kind, self.field_definitions(kind), columns_state, column_types, NATIVE_COLUMNS[kind] | set(seen)
        )


def record_skip(table: str, error: TableUnavailable) -> None:
    """One warning, and a line in the run report kept in the source state (with the time,
    so a report shows only the skips of its own run)."""
    logger.warning(str(error))
    report = dlt.current.source_state().setdefault("run_report", {})
    report.setdefault("skipped_tables", {})[table] = {
        "status": error.status_code,
        "at": int(datetime.now(timezone.utc).timestamp()),
    }


def mark_batch(name: str, drained: bool, pages: int = 0) -> None:
    """Record whether this reader has more to fetch (`run.run_until_drained` reads it),
    and say so loudly when it has: the tables it feeds are behind Zendesk until a later
    run continues from here."""
    dlt.current.resource_state()["drained"] = drained
    if not drained:
        logger.warning(
            "%s: stopped after %d page(s) because batch_pages is set; the tables it feeds are"
            " not complete yet and the next run continues from here (zendesk.run."
            "run_until_drained runs batches until every export is drained)",
            name,
            pages,
        )


class BoundaryDedup:
    """Drops the rows a time-based export repeats at page boundaries (same second, same id)."""

    def __init__(self, time_key: Callable[[Row], int]) -> None:
        self._time_key = time_key
        self._second: Optional[int] = None
        self._ids: Set[Any] = set()

    def filter(self, rows: Iterable[Row]) -> List[Row]:
        kept: List[Row] = []
        for row in rows:
            second = self._time_key(row)
            if second == self._second:
                if row["id"] in self._ids:
                    continue
                self._ids.add(row["id"])
            elif self._second is None or second > self._second:
                self._second, self._ids = second, {row["id"]}
            kept.append(row)
        return kept


def _export_pages(
    ctx: SourceContext, name: str, endpoint: Endpoint, paginator: BasePaginator, plan_gated: bool = False
) -> Iterator[List[Row]]:
    """Walk an export while the batch has pages left, logging progress as pages arrive.
    A `plan_gated` export the account lacks raises `TableUnavailable` (the caller skips it)."""
    pages = 0
    budget = ctx.run()
    if not budget.take():
        mark_batch(name, drained=False)
        return
    params = {"per_page": endpoint.page_size, **endpoint.params}
    # errors name the tables the export feeds (`users + user_identities`), not its reader
    for page in ctx.client.pages(endpoint, paginator, params, table=progress.tables_of(name), plan_gated=plan_gated):
        if endpoint.sideloads:
            page = with_sideloads(page, paginator.sideloaded, endpoint.sideloads)  # type: ignore[attr-defined]
        pages += 1
        progress.export_page(name, endpoint.export_cursor, paginator, page)
        if page:
            yield page
        if paginator.has_next_page and not budget.take():
            mark_batch(name, drained=False, pages=pages)
            return
    mark_batch(name, drained=True)


def cursor_export_pages(
    ctx: SourceContext, name: str, endpoint: Endpoint, cursor: dlt.sources.incremental[Any], plan_gated: bool = False
) -> Iterator[List[Row]]:
    """One batch of a cursor-based export (tickets, users), resumed from Zendesk's own
    cursor: it never repeats a row."""
    state = dlt.current.resource_state()
    start = ctx.export_start(iso_to_epoch(cursor.start_value))
    paginator = CursorExportPaginator(start_time=start, cursor=state.get("after_cursor"))
    if endpoint.sideloads:
        keys = [key for key, _ in endpoint.sideloads]
        paginator = SideloadingCursorExportPaginator(start, state.get("after_cursor"), keys)
    try:
        yield from _export_pages(ctx, name, endpoint, paginator, plan_gated)
    finally:
        state["after_cursor"] = paginator.after_cursor


def time_export_pages(
    ctx: SourceContext, name: str, endpoint: Endpoint, cursor: dlt.sources.incremental[Any], plan_gated: bool = False
) -> Iterator[List[Row]]:
    """One batch of a time-based export (organizations, ticket events, metric events) from
    the incremental's start, without the rows Zendesk repeats at page boundaries."""
    state = dlt.current.resource_state()
    # `next_start_time` is where the paginator stood when the last batch ended. It can be
    # past the cursor: after a page of more than 1000 rows sharing one second the paginator
    # steps one second on, which the rows' cursor cannot express, so without it a batch
    # that ended there would read the same page again, forever.
    start = ctx.export_start(max(iso_to_epoch(cursor.start_value), state.get("next_start_time", 0)))
    dedup = BoundaryDedup(lambda row: iso_to_epoch(row[endpoint.export_cursor]))
    paginator = TimeExportPaginator(start)
    try:
        for page in _export_pages(ctx, name, endpoint, paginator, plan_gated):
            kept = dedup.filter(page)
            if kept:
                yield kept
    finally:
        state["next_start_time"] = paginator.start_time


EXPORT_WALKS = {Pagination.CURSOR_EXPORT: cursor_export_pages, Pagination.TIME_EXPORT: time_export_pages}

#: Where one table stands in a shared export: `time` (epoch seconds) is where a time-based
#: export resumes, or the newest change a cursor export delivered; `cursor` is Zendesk's
#: opaque `after_cursor` (cursor exports only), exact but comparable only for equality.
Position = Dict[str, Any]


def earliest(positions: List[Optional[Position]], start_epoch: int) -> Position:
    """Where to read a shared export from for tables standing at `positions` (None: never
    read, so from `start_date`).

    Tables that stand together resume exactly where they stopped (Zendesk's cursor, or the
    time-based export's next start). Tables that stand apart read from the earliest time
    among them: the ones ahead get rows again, which their merge (or insert-only) key makes
    harmless; an opaque cursor cannot be compared, so a cursor export restarts by time."""
    first = positions[0] if positions else None
    if first is not None and all(position == first for position in positions):
        return first
    return {"time": min(p["time"] if p else start_epoch for p in positions or [None]), "cursor": None}


#: The tables release 0.1 loaded: a shared export's state from 0.1 holds their position
#: only; the siblings added since (user_identities, the history tables) have read nothing.
TABLES_OF_0_1 = frozenset({
    "tickets", "ticket_metrics", "ticket_comments", "ticket_audits", "ticket_metric_events", "users",
    "organizations", "groups", "group_memberships", "macros", "ticket_fields", "ticket_forms",
    "satisfaction_ratings", "sla_policies", "tags", "talk_phone_numbers",
})


def legacy_position(state: Dict[str, Any], endpoint: Endpoint) -> Optional[Position]:
    """The position a reader's state held before positions were kept per table (one dlt
    incremental cursor and `after_cursor` / `next_start_time` for all its tables), so an
    upgraded pipeline resumes instead of reading every export again."""
    if "next_start_time" in state:
        return {"time": int(state["next_start_time"]), "cursor": None}
    last = state.get("incremental", {}).get(endpoint.export_cursor, {}).get("last_value")
    if last is None:
        return None
    return {"time": cursor_epoch(endpoint, last), "cursor": state.get("after_cursor")}


def resumes(resource_states: Dict[str, Any], table: str, audits_mode: str = "events") -> bool:
    """Whether `table` continues from a position an earlier run left (so `start_date` no
    longer applies to it), given the source state's `resources`."""
    holder = state_holder(table, audits_mode) or table
    state = resource_states.get(holder, {})
    if holder == table:
        return "incremental" in state
    positions = state.get("positions")
    return positions.get(table) is not None if positions is not None else "incremental" in state


def cursor_epoch(endpoint: Endpoint, value: Any) -> int:
    """An export cursor value (epoch number or ISO text) as epoch seconds."""
    return int(value) if endpoint.epoch_cursor else iso_to_epoch(value)


def shared_reader(ctx: SourceContext, spec: TableSpec, name: str, tables: List[str]) -> DltResource:
    """The hidden reader of an export that several tables share (`tables`), with one
    position per table in its resource state.

    dlt's incremental keeps one position per resource, and dlt runs a hidden parent for
    whichever of its transformers are selected: a single shared position would move past
    changes an unselected sibling never got. So the reader reads from the earliest position
    among the tables selected in this run (`earliest`), and moves only theirs."""
    endpoint = spec.endpoint
    time_based = endpoint.pagination is Pagination.TIME_EXPORT

    def read() -> Iterator[List[Row]]:
        state = dlt.current.resource_state()
        if "positions" not in state:
            legacy = legacy_position(state, endpoint)
            # a sibling 0.1 did not have never got those rows: it starts from start_date
            state["positions"] = {table: legacy if table in TABLES_OF_0_1 else None for table in tables}
            for key in ("incremental", "after_cursor", "next_start_time"):
                state.pop(key, None)
        positions: Dict[str, Optional[Position]] = state["positions"]
        chosen = set(dlt.current.source().selected_resources)
        selected = [table for table in tables if table in chosen] or list(tables)
        start = earliest([positions.get(table) for table in selected], ctx.start_epoch)
        newest = start["time"]
        paginator: BasePaginator
        if time_based:
            paginator = TimeExportPaginator(ctx.export_start(start["time"]))
        elif endpoint.sideloads:
            keys = [key for key, _ in endpoint.sideloads]
            paginator = SideloadingCursorExportPaginator(ctx.export_start(start["time"]), start["cursor"], keys)
        else:
            paginator = CursorExportPaginator(start_time=ctx.export_start(start["time"]), cursor=start["cursor"])
        dedup = BoundaryDedup(lambda row: cursor_epoch(endpoint, row[endpoint.export_cursor]))
        try:
            for page in _export_pages(ctx, name, endpoint, paginator):
                kept = dedup.filter(page) if time_based else page
                newest = max([newest, *(cursor_epoch(endpoint, row[endpoint.export_cursor]) for row in kept)])
                if kept:
                    yield kept
        finally:
            end: Position = (
                {"time": paginator.start_time, "cursor": None}
                if time_based
                else {"time": newest, "cursor": paginator.after_cursor}
            )
            for table in selected:
                positions[table] = end

    return dlt.resource(read, name=name, selected=False, parallelized=True)


def _full_list(
    ctx: SourceContext, spec: TableSpec, extra_params: Optional[Row] = None
) -> Iterator[List[Row]]:
    ctx.run()
    endpoint = spec.endpoint
    params = {**list_params(endpoint), **(extra_params or {})}
    yield from ctx.client.pages(endpoint, list_paginator(endpoint), params, table=spec.name, plan_gated=spec.plan_gated)


def _unless_unavailable(spec: TableSpec, pages: Iterable[List[Row]]) -> Iterator[List[Row]]:
    """Pass pages through; a plan-gated table that is not on the plan ends quietly, with
    one warning and a line in the run report."""
    try:
        yield from pages
    except TableUnavailable as error:
        record_skip(spec.name, error)


def json_value_hints(spec: TableSpec) -> Optional[Dict[Any, Any]]:
    """Nested hints typing the JSON-text columns as text, for lists right under the row.

    A list under a dict (`filter.all`) gets none: dlt would need a hint for the dict too,
    and that declares a table the data never fills, which breaks a later change of the
    write disposition (the shared multi-account dataset). Its values are JSON text
    strings already, so the column is text without a hint."""
    columns = {"columns": {key: {"name": key, "data_type": "text"} for key in spec.json_value_keys}}
    return {path[0]: columns for path in spec.json_values if len(path) == 1} or None


def table_hints(spec: TableSpec, **overrides: Any) -> Dict[str, Any]:
    """The dlt hints of `spec`'s table, all from the registry."""
    hints = {
        "name": spec.name,
        "primary_key": spec.primary_key,
        "write_disposition": dlt_write_disposition(spec),
        "nested_hints": json_value_hints(spec),
    }
    return {**hints, **overrides}


def without_nulls(row: Row) -> Row:
    """`row` without its null values, in nested objects and in the objects of lists too.

    dlt cannot type a column that is null in every row of a load: it leaves the column out
    and warns, on every run, that it "did not receive any data" (for fields many accounts
    never fill: forum_topic_id, via.source.rel, a user's photo). A missing key loads as NULL
    into a column that exists, just as a null value does, so no stored value changes."""
    return {key: _without_nulls_in(value) for key, value in row.items() if value is not None}


def _without_nulls_in(value: Any) -> Any:
    if isinstance(value, dict):
        return without_nulls(value)
    if isinstance(value, list):
        return [without_nulls(item) if isinstance(item, dict) else item for item in value]
    return value


def table_rows(ctx: SourceContext, spec: TableSpec, keep_nulls: bool = False) -> Callable[[List[Row]], Any]:
    """What a page of the endpoint becomes in `spec`'s table: its row shape, its JSON-text
    values, its custom fields pivoted into typed columns, the columns the source's column
    controls drop or hash (personal data) gone or hashed, and no null values (unless
    `keep_nulls`: dlt's scd2 hashes whole rows, nulls included, so leaving them out would
    record a new version of every row with a null once, on the first run after an upgrade)."""

    declared = {name: {"name": name, "data_type": data_type} for name, data_type in spec.columns.items()}

    def shape(page: List[Row]) -> Any:
        shaped = with_json_values(spec.rows(page) if spec.rows else page, spec.json_values, spec.json_value_keys)
        rows = shaped if keep_nulls else [without_nulls(row) for row in shaped]
        columns = dict(declared)
        if spec.custom_fields is not None and rows:
            catalog = ctx.catalog(spec, page)
            rows = [catalog.pivot(dict(row)) for row in rows]
            columns.update(catalog.column_hints())
        rows = ctx.controls.rows(spec.name, rows)
        columns = ctx.controls.column_hints(spec.name, columns)
        if not columns or not rows:
            return rows
        return dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=columns))

    return shape


def export_resource(
    ctx: SourceContext, spec: TableSpec, shape: Callable[[List[Row]], Any], **hints: Any
) -> DltResource:
    """A table walking its own export from its cursor."""
    endpoint = spec.endpoint
    walk, name = EXPORT_WALKS[endpoint.pagination], hints["name"]
    initial = ctx.start_epoch if endpoint.epoch_cursor else epoch_to_iso(ctx.start_epoch)

    def read(
        cursor: dlt.sources.incremental[Any] = change_stream_cursor(
            endpoint.export_cursor, initial_value=initial, primary_key="id" if spec.immutable_rows else ()
        ),
    ) -> Iterator[Any]:
        pages = walk(ctx, name, endpoint, cursor, spec.plan_gated)
        for page in _unless_unavailable(spec, pages) if spec.plan_gated else pages:
            yield shape(page)

    return dlt.resource(read, parallelized=True, **hints)


def export_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """An export that feeds one table (organizations, ticket metric events)."""
    return export_resource(ctx, spec, table_rows(ctx, spec), **table_hints(spec))


def fed_table(ctx: SourceContext, spec: TableSpec, reader: DltResource) -> DltResource:
    """A table made from the pages of a reader it shares with its siblings."""
    shape = table_rows(ctx, spec)

    def rows(page: List[Row]) -> Iterator[Any]:
        shaped = shape(page)
        if shaped:
            yield shaped

    return dlt.transformer(rows, data_from=reader, **table_hints(spec))


def emptied_list() -> Any:
    """What a whole-list table loads when its list is empty: the table replaced with no
    rows, in the destination's preferred format (DuckDB reads an empty jsonl file as one
    column named "json" and refuses the load). A dataset shared by several accounts turns
    it into a deletion of this account's rows alone (`accounts/datasets.py`)."""
    return dlt.mark.with_hints([], dlt.mark.make_hints(write_disposition="replace", file_format="preferred"))


def replace_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """Small tables without change tracking, replaced on every run."""
    shape = table_rows(ctx, spec)

    def read() -> Iterator[Any]:
        loaded = False
        try:
            for page in _full_list(ctx, spec):
                rows = shape(page)
                loaded = loaded or bool(rows)
                yield rows
        except TableUnavailable as error:
            record_skip(spec.name, error)
            return
        if not loaded:
            yield emptied_list()

    return dlt.resource(read, parallelized=True, **table_hints(spec))


def start_time_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """A list filtered server-side by start_time (satisfaction ratings), re-reading a
    lookback window.

    `start_time` is sent `spec.start_time_lookback` seconds before the cursor, so a row
    offered before the cursor and answered after it comes again whichever time Zendesk
    filters on; the cursor then drops the re-read rows that did not change (they are
    older than the cursor) and merge on id makes the rest harmless. The window costs the
    rows created in it: a page for every 100 of them, each run."""
    shape = table_rows(ctx, spec)

    def read(
        updated_at: dlt.sources.incremental[str] = change_stream_cursor(
            spec.cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key=()
        ),
    ) -> Iterator[Any]:
        cursor = iso_to_epoch(updated_at.start_value)
        start = {"start_time": max(ctx.start_epoch, cursor - spec.start_time_lookback)}
        for page in _unless_unavailable(spec, _full_list(ctx, spec, start)):
            yield shape(page)

    return dlt.resource(read, parallelized=True, **table_hints(spec))


def created_since_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """Rows that never change once made (skips, activities, audit logs), appended by id.

    With `spec.created_since` the list itself filters on creation: each run asks only for
    the rows created since the cursor (one request when nothing happened). Without it the
    list is read newest first (`endpoint.params` asks for that order) and dlt's incremental
    closes the read at the first row older than the cursor (`row_order="desc"`). Either
    way the cursor's second is read again and insert-only on id drops what is loaded."""
    shape = table_rows(ctx, spec)
    newest_first = spec.created_since is None

    def read(
        created_at: dlt.sources.incremental[str] = dlt.sources.incremental(
            spec.cursor,
            initial_value=epoch_to_iso(ctx.start_epoch),
            primary_key=spec.primary_key,
            row_order="desc" if newest_first else None,
            allow_external_schedulers=False,
        ),
    ) -> Iterator[Any]:
        extra = None
        if spec.created_since is not None:
            extra = dict(spec.created_since(iso_to_epoch(created_at.start_value), int(ctx.now())))
        for page in _unless_unavailable(spec, _full_list(ctx, spec, extra)):
            yield shape(page)

    return dlt.resource(read, parallelized=True, **table_hints(spec))


def _scanned_rows(ctx: SourceContext, spec: TableSpec, keep_nulls: bool = False) -> Iterable[List[Row]]:
    shape = table_rows(ctx, spec, keep_nulls)
    if spec.defines_custom_fields:
        # the same request also types custom columns; copies, because rows are reshaped
        return [shape([dict(row) for row in ctx.field_definitions(spec.defines_custom_fields)])]
    if spec.per_parent is not None:
        return [shape(_rows_per_parent(ctx, spec, spec.per_parent))]
    if spec.name in PARENT_TABLES:
        return [shape(ctx.scan(spec))]
    return (shape(page) for page in _full_list(ctx, spec))


def _rows_per_parent(ctx: SourceContext, spec: TableSpec, parent: PerParent) -> List[Row]:
    """The rows of every parent row (one request each), each with its parent's id. A
    parent deleted since its list was read answers 404: it has none."""
    endpoint = spec.endpoint
    rows: List[Row] = []
    for parent_row in ctx.scan(TABLES_BY_NAME[parent.table]):
        path = endpoint.path.format(id=parent_row["id"])
        try:
            for page in ctx.client.pages(
                endpoint, list_paginator(endpoint), list_params(endpoint), table=spec.name, plan_gated=True, path=path
            ):
                rows.extend({**row, parent.key: parent_row["id"]} for row in page)
        except TableUnavailable as error:
            if error.status_code != 404:
                raise
    return rows


#: Marks a list table's fingerprints as taken of rows without their null values. Release
#: 0.1 hashed rows with them, so its fingerprints all differ from 0.2's for any row with a
#: null field, and a plain comparison would reload such lists once after the upgrade.
FINGERPRINT_FORM = "fingerprint_form"


def _fingerprints_with_nulls(ctx: SourceContext, spec: TableSpec) -> Dict[str, str]:
    """The fingerprints release 0.1 kept for `spec`'s list as it is now (read once more:
    a request or two, only on the first run over fingerprints 0.1 wrote that differ)."""
    rows = [row for page in _scanned_rows(ctx, spec, keep_nulls=True) for row in page]
    return {str(row[spec.primary_key]): fingerprint(row) for row in rows}


def fingerprint_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """Small lists Zendesk cannot filter by time: one full scan (a request or two).

    `deletions="hard"` (default): a content hash per row, kept in the resource state, tells
    whether anything changed or vanished since the last run. Nothing did: nothing is loaded.
    Something did: the whole list is loaded with dlt's `cdc` merge, an upsert that also
    deletes the stored rows absent from the load, so vanished rows go without a tombstone
    column in the table. A list that became empty replaces the table with nothing (cdc
    deletes nothing when there is no row to load); the next load is a cdc merge again.
    `deletions="soft"`: the full list is loaded with dlt's scd2 merge, which keeps vanished
    rows and closes their validity (`_dlt_valid_to` is set): nothing is lost, history shows.
    A table the registry does not merge keeps its own disposition.
    """

    def read_changes() -> Iterator[Any]:
        state = dlt.current.resource_state()
        previous: Dict[str, str] = state.get("fingerprints", {})
        rows: List[Row] = []
        try:
            for page in _scanned_rows(ctx, spec):
                rows.extend(page)
        except TableUnavailable as error:
            record_skip(spec.name, error)
            return
        current = {str(row[spec.primary_key]): fingerprint(row) for row in rows}
        if current != previous and previous and FINGERPRINT_FORM not in state:
            if _fingerprints_with_nulls(ctx, spec) == previous:  # unchanged since a 0.1 run
                previous = current
        state[FINGERPRINT_FORM] = 2
        if current == previous:
            state["fingerprints"] = current
            return
        vanished = len(set(previous) - set(current))
        if vanished:
            logger.info("%s: %d rows no longer in Zendesk are deleted", spec.name, vanished)
        yield rows if rows else emptied_list()
        state["fingerprints"] = current

    def read_all() -> Iterator[List[Row]]:
        yield from _unless_unavailable(spec, _scanned_rows(ctx, spec, keep_nulls=True))

    def merged(strategy: str) -> Any:
        disposition = dlt_write_disposition(spec)
        return {"disposition": "merge", "strategy": strategy} if disposition == "merge" else disposition

    if ctx.deletions == "soft":
        return dlt.resource(
            read_all, parallelized=True, **table_hints(spec, primary_key=None, write_disposition=merged("scd2"))
        )
    return dlt.resource(read_changes, parallelized=True, **table_hints(spec, write_disposition=merged("cdc")))


def per_ticket_table(ctx: SourceContext, spec: TableSpec, ticket_reader: DltResource) -> DltResource:
    """A table read per ticket, for the tickets the ticket export says changed: a table's
    opt-in source (`audits_mode="per_ticket"`: full Zendesk audits, with `via.source` and
    `metadata.custom`; rows already loaded are not appended twice, cursor plus id dedup)
    or its only one (side conversations, conversation logs: a ticket's rows replace those
    it had, and a deleted ticket's tombstone deletes them).

    Costs one request per changed ticket that `needs` it; the progress log says how many a
    page of changed tickets adds and how long they take at the current pace. A plan-gated
    table the account lacks (403) is skipped for the rest of the run with one warning. A
    404 names a ticket deleted since the export listed it (it has no rows; the next run
    deletes them) or an account without the table: the run cannot tell which, so it warns
    once and goes on, since skipping would lose the rows of the run's other tickets."""
    per_ticket = spec.per_ticket
    assert per_ticket is not None, f"{spec.name} has no per-ticket source"
    shape = table_rows(ctx, spec) if per_ticket.only_source else _audit_rows(ctx, spec)
    #: load id -> (set once the plan said no, the statuses already warned of)
    runs: Dict[str, Tuple[threading.Event, Set[int]]] = {}

    def rows_of(page: List[Row]) -> Iterator[Any]:
        load_id = dlt.current.load_package_state()["load_id"]
        if load_id not in runs:
            runs.clear()
            runs[load_id] = (threading.Event(), set())
        stop, warned = runs[load_id]
        if stop.is_set():
            return
        tickets = [ticket for ticket in page if per_ticket.needs is None or per_ticket.needs(ticket)]
        live = [ticket["id"] for ticket in tickets if ticket.get("status") != "deleted"]
        if per_ticket.tombstones:
            gone = [per_ticket_tombstone(t["id"], per_ticket.key) for t in tickets if t.get("status") == "deleted"]
            if gone:
                yield shape(gone)
        progress.per_ticket_requests(spec.name, len(live), ctx.client.budget.seconds_per_request())
        started = time.monotonic()
        for ticket_id, rows in fetched_in_order(live, lambda ticket_id: _rows_of_ticket(ctx, spec, ticket_id, stop)):
            if isinstance(rows, TableUnavailable):
                if rows.status_code not in warned:
                    warned.add(rows.status_code)
                    _warn_unavailable(spec, rows)
            elif rows:
                yield shape(rows)
            elif rows is not None and per_ticket.tombstones:  # none left: any it had go
                yield shape([per_ticket_tombstone(ticket_id, per_ticket.key)])
        progress.per_ticket_fetched(spec.name, len(live), time.monotonic() - started)

    if per_ticket.only_source:
        return dlt.transformer(rows_of, data_from=ticket_reader, **table_hints(spec))

    def appended(
        page: List[Row],
        cursor: dlt.sources.incremental[str] = change_stream_cursor(
            spec.cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key=spec.primary_key
        ),
    ) -> Iterator[Any]:
        yield from rows_of(page)

    return dlt.transformer(appended, data_from=ticket_reader, **table_hints(spec))


def fetched_in_order(ids: List[int], fetch: Callable[[int], Any]) -> Iterator[Tuple[int, Any]]:
    """(id, fetch(id)) for each id, in order, fetched `PER_TICKET_WORKERS` at a time (the
    run's rate budget still paces every request). Closed early (an error further on, the
    run stopping), the fetches not started yet are cancelled: a page of tickets is queued
    at once, and their answers would be dropped anyway."""
    pool = ThreadPoolExecutor(max_workers=PER_TICKET_WORKERS)
    try:
        yield from zip(ids, pool.map(fetch, ids))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _warn_unavailable(spec: TableSpec, error: TableUnavailable) -> None:
    """A 403 skips the table (one warning, a line in the run report); a 404 is told once."""
    if error.status_code != 404:
        record_skip(spec.name, error)
        return
    logger.warning(
        "%s: Zendesk answered 404 for a ticket the export lists (deleted since, or this account"
        " lacks the table); such tickets load no rows, the run goes on",
        spec.name,
    )


def per_ticket_tombstone(ticket_id: int, key: Optional[str]) -> Row:
    """The row that deletes a deleted ticket's rows (`PER_TICKET_MERGE`): an empty id,
    which the merge never stores."""
    return {"id": "", key or "ticket_id": ticket_id}


def _audit_rows(ctx: SourceContext, spec: TableSpec) -> Callable[[List[Row]], List[Row]]:
    """Full audits as they come, their values as JSON text and the column controls applied."""

    def shape(rows: List[Row]) -> List[Row]:
        return ctx.controls.rows(spec.name, with_json_values(rows, spec.json_values, spec.json_value_keys))

    return shape


def _rows_of_ticket(
    ctx: SourceContext, spec: TableSpec, ticket_id: int, stop: threading.Event
) -> "Optional[List[Row]] | TableUnavailable":
    """All rows of one ticket, each with its id under the source's `key`. A plan-gated
    table's 403 or 404 is returned for the caller to judge; otherwise a 404 (the ticket was
    deleted since the export listed it) gives none. Once `stop` is set, nothing is asked
    (None)."""
    per_ticket = spec.per_ticket
    assert per_ticket is not None
    endpoint = per_ticket.endpoint
    rows: List[Row] = []
    if stop.is_set():
        return None
    path = endpoint.path.format(id=ticket_id)
    try:
        for page in ctx.client.pages(
            endpoint, list_paginator(endpoint), list_params(endpoint), table=spec.name, path=path, plan_gated=True
        ):
            rows.extend(page)
    except TableUnavailable as error:
        if spec.plan_gated:
            if error.status_code != 404:
                stop.set()  # no other worker asks again
            return error
        if error.status_code == 404:
            return []
        raise
    if per_ticket.key is not None:
        rows = [{**row, per_ticket.key: ticket_id} for row in rows]
    return rows


#: How a table that reads its own endpoint is built, by how it detects changes.
OWN_TABLES: Dict[ChangeDetection, Callable[[SourceContext, TableSpec], DltResource]] = {
    ChangeDetection.EXPORT_CURSOR: export_table,
    ChangeDetection.SERVER_START_TIME: start_time_table,
    ChangeDetection.FINGERPRINT: fingerprint_table,
    ChangeDetection.REPLACE: replace_table,
    ChangeDetection.CREATED_SINCE: created_since_table,
}


def build_resources(ctx: SourceContext) -> List[DltResource]:
    """One resource per table of the registry, and before the first table a shared reader
    feeds, that hidden reader."""
    resources: List[DltResource] = []
    readers: Dict[str, DltResource] = {}
    for spec in TABLES:
        reader_name = reader_of(spec.name, ctx.audits_mode)
        if reader_name is None:
            resources.append(OWN_TABLES[spec.change_detection](ctx, spec))
            continue
        if reader_name not in readers:
            source = next(s for s in TABLES if s.reader == reader_name)
            fed = [s.name for s in TABLES if reader_of(s.name, ctx.audits_mode) == reader_name]
            readers[reader_name] = shared_reader(ctx, source, reader_name, fed)
            resources.append(readers[reader_name])
        if spec.reader == reader_name:
            resources.append(fed_table(ctx, spec, readers[reader_name]))
        else:
            resources.append(per_ticket_table(ctx, spec, readers[reader_name]))
    return resources
