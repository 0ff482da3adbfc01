"""dlt resources generated from the table registry in `settings.py`.

Readers walk an endpoint and keep its cursor; tables are either a reader itself or a
transformer fed by a shared reader (tickets + ticket_metrics from one ticket export;
ticket_comments + ticket_audits from one ticket events export), so no export is ever
read twice in a run.

A plain `pipeline.run(zendesk_support())` reads every export to its end: nothing is left
for a later run. With `batch_pages` set (what `sync.run_until_drained` uses for long first
syncs), the export readers of one run share that many pages between them: a reader that
finds them spent stops and records that it is not drained, the run commits what it has
(dlt saves state only when a whole extract succeeds) and the next run continues from
there. A batch therefore holds the same number of pages however large the account and
however many exports are running, and a crash never costs more than one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.helpers.rest_client.paginators import BasePaginator

from . import progress
from .client import ZendeskClient
from .custom_fields import SOURCE_ATTRIBUTE, FieldCatalog
from .errors import TableUnavailable
from .paginators import CursorExportPaginator, TimeExportPaginator, list_paginator, list_params
from .settings import (
    EXPORT_MIN_AGE_SECONDS,
    FIELD_DEFINITIONS,
    NATIVE_COLUMNS,
    PER_TICKET_AUDITS,
    SATISFACTION_LOOKBACK_SECONDS,
    TABLES_BY_NAME,
    ChangeDetection,
    Endpoint,
    TableSpec,
    dlt_write_disposition,
)

logger = logging.getLogger(__name__)

#: The table whose custom columns each kind of field definition types.
CUSTOM_FIELD_TABLES = {"ticket": "tickets", "user": "users", "organization": "organizations"}

#: Tickets whose audits are fetched at once in `audits_mode="per_ticket"`.
PER_TICKET_WORKERS = 4

#: ticket_metrics: a load replaces the metrics of every ticket it holds a row for, and
#: inserts only real metric rows (positive ids). A deleted ticket's row is a tombstone
#: with the negated ticket id: it deletes the ticket's metrics and is never stored, and
#: needs no column of its own.
TICKET_METRICS_MERGE = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "destination_scope": "ticket_id IN (SELECT ticket_id FROM {staging_table})",
    "source_filter": "id > 0",
}

Row = Dict[str, Any]

AUDITS_WRITE_DISPOSITION = dlt_write_disposition(TABLES_BY_NAME["ticket_audits"].write_disposition)


def epoch_to_iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_to_epoch(value: Any) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


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

    client: ZendeskClient
    start_epoch: int
    batch_pages: Optional[int] = None
    audits_mode: str = "events"
    deletions: str = "hard"
    now: Callable[[], float] = lambda: datetime.now(timezone.utc).timestamp()
    _field_definitions: Dict[str, List[Row]] = field(default_factory=dict)
    _field_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Called once per run, before its first request (takes the pipeline's run lock and
    #: cleans up after an interrupted load); an exception it raises fails every resource.
    on_run_start: Callable[[], None] = lambda: None
    _runs: Dict[str, Any] = field(default_factory=dict)
    _run_lock: threading.Lock = field(default_factory=threading.Lock)

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
                try:
                    self.on_run_start()
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
            endpoint = FIELD_DEFINITIONS[kind]
            rows: List[Row] = []
            try:
                # User and organization fields need a Team plan or better; without them the
                # values still load, untyped. Ticket fields are always readable by admins.
                for page in self.client.pages(
                    endpoint,
                    list_paginator(endpoint),
                    list_params(endpoint),
                    table=f"{kind}_fields",
                    plan_gated=kind != "ticket",
                ):
                    rows.extend(page)
            except TableUnavailable as error:
                logger.warning("%s custom fields load untyped: %s", kind, error)
                rows = []
            self._field_definitions[kind] = rows
        return self._field_definitions[kind]

    def catalog(self, kind: str, page: Iterable[Row] = ()) -> FieldCatalog:
        """The custom-field catalog of `kind`, with the types its columns already have in
        the destination schema: a field whose type changed in Zendesk keeps its column's
        type, and values that no longer fit go to a dlt variant column.

        Native column names are reserved for good: the documented ones, and every
        top-level key of `page` (kept in the source state, so a native field Zendesk sent
        once keeps its name reserved in later runs too)."""
        state = dlt.current.source_state()
        columns_state = state.setdefault("custom_field_columns", {}).setdefault(kind, {})
        seen = state.setdefault("native_columns", {}).setdefault(kind, [])
        attribute = SOURCE_ATTRIBUTE[kind]
        new_keys = {key for record in page for key in record if key != attribute} - set(seen) - NATIVE_COLUMNS[kind]
        seen.extend(sorted(new_keys))
        table = CUSTOM_FIELD_TABLES[kind]
        existing = dlt.current.source_schema().tables.get(table, {}).get("columns", {})
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
    """Record whether this reader has more to fetch (`sync.run_until_drained` reads it),
    and say so loudly when it has: the tables it feeds are behind Zendesk until a later
    run continues from here."""
    dlt.current.resource_state()["drained"] = drained
    if not drained:
        logger.warning(
            "%s: stopped after %d page(s) because batch_pages is set; the tables it feeds are"
            " not complete yet and the next run continues from here (zendesk.sync."
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
    ctx: SourceContext, name: str, endpoint: Endpoint, paginator: BasePaginator
) -> Iterator[List[Row]]:
    """Walk an export while the batch has pages left, logging progress as pages arrive."""
    pages = 0
    budget = ctx.run()
    if not budget.take():
        mark_batch(name, drained=False)
        return
    for page in ctx.client.pages(endpoint, paginator, {"per_page": endpoint.page_size, **endpoint.params}):
        pages += 1
        progress.export_page(name, endpoint.export_cursor, paginator, page)
        if page:
            yield page
        if paginator.has_next_page and not budget.take():
            mark_batch(name, drained=False, pages=pages)
            return
    mark_batch(name, drained=True)


def cursor_export_reader(ctx: SourceContext, spec: TableSpec, initial: Any) -> DltResource:
    """A cursor-based export (tickets, users) resumed from Zendesk's own cursor. No id
    dedup at the cursor: the export's cursor never repeats a row, and a row changed twice
    within one second must load its second version."""
    name, endpoint = spec.reader, spec.endpoint

    def read(
        cursor: dlt.sources.incremental[Any] = change_stream_cursor(
            endpoint.export_cursor, initial_value=initial, primary_key=()
        ),
    ) -> Iterator[List[Row]]:
        state = dlt.current.resource_state()
        start = ctx.export_start(iso_to_epoch(cursor.start_value))
        paginator = CursorExportPaginator(start_time=start, cursor=state.get("after_cursor"))
        try:
            yield from _export_pages(ctx, name, endpoint, paginator)
        finally:
            state["after_cursor"] = paginator.after_cursor

    return dlt.resource(read, name=name, selected=False, parallelized=True)


def time_export_pages(
    ctx: SourceContext, name: str, endpoint: Endpoint, cursor: dlt.sources.incremental[Any]
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
        for page in _export_pages(ctx, name, endpoint, paginator):
            kept = dedup.filter(page)
            if kept:
                yield kept
    finally:
        state["next_start_time"] = paginator.start_time


def _full_list(
    ctx: SourceContext, spec: TableSpec, extra_params: Optional[Row] = None
) -> Iterator[List[Row]]:
    ctx.run()
    endpoint = spec.endpoint
    params = {**list_params(endpoint), **(extra_params or {})}
    for page in ctx.client.pages(
        endpoint, list_paginator(endpoint), params, table=spec.name, plan_gated=spec.plan_gated
    ):
        yield page


def _unless_unavailable(spec: TableSpec, pages: Iterable[List[Row]]) -> Iterator[List[Row]]:
    """Pass pages through; a plan-gated table that is not on the plan ends quietly, with
    one warning and a line in the run report."""
    try:
        yield from pages
    except TableUnavailable as error:
        record_skip(spec.name, error)


def json_text(value: Any) -> Optional[str]:
    """A value as its JSON text (`"open"`, `509974`, `true`, `["a","b"]`); NULL stays NULL."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_text_items(items: Any, keys: Iterable[str]) -> None:
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            for key in keys:
                if key in item:
                    item[key] = json_text(item[key])


def with_json_values(spec: TableSpec, rows: List[Row]) -> List[Row]:
    """Each of `spec.json_values` lists' `value` as its JSON text, in place.

    Why text and not dlt's `json` type: in dlt 1.31 a `json` column holds objects and
    lists; a scalar in it lands in a variant column (`value__v_bool`), or, sent as text, is
    written unquoted and refused by DuckDB and Postgres. One text column of JSON text keeps
    every value, typed as Zendesk sent it, in one place (`value::json` reads it back)."""
    for row in rows:
        for path in spec.json_values:
            node: Any = row
            for step in path:
                node = node.get(step) if isinstance(node, dict) else None
            _json_text_items(node, ("value",))
    return rows


def json_value_hints(paths: Iterable[Tuple[str, ...]], keys: Iterable[str] = ("value",)) -> Dict[Any, Any]:
    """Nested hints typing the JSON-text columns as text (a value that looks like a number
    or a date stays the JSON text it is). Dicts on the way are flattened into the nested
    table's name, so every path prefix is declared too, as dlt requires."""
    columns = {"columns": {key: {"name": key, "data_type": "text"} for key in keys}}
    hints: Dict[Any, Any] = {}
    for path in paths:
        for depth in range(1, len(path)):
            hints.setdefault(path[:depth], {})
        hints[path if len(path) > 1 else path[0]] = columns
    return hints


def replace_table(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """Small tables without change tracking, replaced on every run."""

    def read() -> Iterator[List[Row]]:
        for page in _unless_unavailable(spec, _full_list(ctx, spec)):
            yield with_json_values(spec, page)

    return dlt.resource(
        read,
        name=spec.name,
        primary_key=spec.primary_key,
        write_disposition="replace",
        nested_hints=json_value_hints(spec.json_values),
        parallelized=True,
    )


def _scanned_rows(ctx: SourceContext, spec: TableSpec) -> Iterable[List[Row]]:
    if spec.name == "ticket_fields":
        # the same request also types custom columns; copies, because rows are reshaped
        return [with_json_values(spec, [dict(row) for row in ctx.field_definitions("ticket")])]
    return (with_json_values(spec, page) for page in _full_list(ctx, spec))


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
        if current == previous:
            return
        vanished = len(set(previous) - set(current))
        if vanished:
            logger.info("%s: %d rows no longer in Zendesk are deleted", spec.name, vanished)
        if rows:
            yield rows
        else:
            # The destination's preferred format: DuckDB reads an empty jsonl file as one
            # column named "json" and refuses the load.
            yield dlt.mark.with_hints([], dlt.mark.make_hints(write_disposition="replace", file_format="preferred"))
        state["fingerprints"] = current

    def read_all() -> Iterator[List[Row]]:
        yield from _unless_unavailable(spec, _scanned_rows(ctx, spec))

    if ctx.deletions == "soft":
        return dlt.resource(
            read_all,
            name=spec.name,
            write_disposition={"disposition": "merge", "strategy": "scd2"},
            nested_hints=json_value_hints(spec.json_values),
            parallelized=True,
        )
    return dlt.resource(
        read_changes,
        name=spec.name,
        primary_key=spec.primary_key,
        write_disposition={"disposition": "merge", "strategy": "cdc"},
        nested_hints=json_value_hints(spec.json_values),
        parallelized=True,
    )


def satisfaction_ratings(ctx: SourceContext, spec: TableSpec) -> DltResource:
    """Ratings filtered server-side by start_time, re-reading a lookback window.

    `start_time` is sent `SATISFACTION_LOOKBACK_SECONDS` before the `updated_at` cursor,
    so a rating offered before the cursor and answered after it comes again whichever
    time Zendesk filters on; the cursor then drops the re-read ratings that did not change
    (they are older than the cursor) and merge on id makes the rest harmless. The window
    costs the ratings created in it: a page of 100 for every 100 of them, each run."""

    def read(
        updated_at: dlt.sources.incremental[str] = change_stream_cursor(
            spec.cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key=()
        ),
    ) -> Iterator[List[Row]]:
        cursor = iso_to_epoch(updated_at.start_value)
        start = {"start_time": max(ctx.start_epoch, cursor - SATISFACTION_LOOKBACK_SECONDS)}
        yield from _unless_unavailable(spec, _full_list(ctx, spec, start))

    return dlt.resource(read, name=spec.name, primary_key="id", write_disposition="merge", parallelized=True)


def ticket_resources(ctx: SourceContext) -> List[DltResource]:
    """tickets and ticket_metrics from one pass over the ticket export."""
    spec = TABLES_BY_NAME["tickets"]
    reader = cursor_export_reader(ctx, spec, ctx.start_epoch)

    @dlt.transformer(data_from=reader, name="tickets", primary_key="id", write_disposition="merge")
    def tickets(page: List[Row]) -> Iterator[Any]:
        if not page:
            return
        catalog = ctx.catalog("ticket", page)
        rows = [catalog.pivot({k: v for k, v in ticket.items() if k != "metric_set"}) for ticket in page]
        yield dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=catalog.column_hints()))

    @dlt.transformer(
        data_from=reader,
        name="ticket_metrics",
        primary_key="id",
        write_disposition=TICKET_METRICS_MERGE,
    )
    def ticket_metrics(page: List[Row]) -> Iterator[List[Row]]:
        rows: List[Row] = []
        for ticket in page:
            if ticket.get("status") == "deleted":
                # Zendesk drops a deleted ticket's metrics; so do we (TICKET_METRICS_MERGE).
                rows.append({"id": -int(ticket["id"]), "ticket_id": ticket["id"]})
            elif ticket.get("metric_set"):
                rows.append(ticket["metric_set"])
        if rows:
            yield rows

    return [reader, tickets, ticket_metrics]


def _comment_rows(event: Row) -> Iterator[Row]:
    for child in event.get("child_events") or ():
        if child.get("event_type") in ("Comment", "VoiceComment") or child.get("type") in ("Comment", "VoiceComment"):
            row = {k: v for k, v in child.items() if k != "event_type"}
            row["ticket_id"] = event["ticket_id"]
            row.setdefault("created_at", event.get("created_at"))
            row.setdefault("audit_id", event["id"])
            yield row


#: Ticket event fields an audit names differently; every other field keeps its name.
AUDIT_FIELDS_FROM_EVENT = ("updater_id", "via", "system", "child_events")


def _audit_row(event: Row) -> Row:
    """A ticket event is one ticket update, i.e. one audit. Every field the export gives
    is kept (`timestamp`, `event_type`, `via_reference_id`, `comment_present`,
    `comment_public`, ...); the ones an audit has under another name move there:
    `updater_id` is `author_id`, the channel name in `via` is `via.channel`, `system` is
    `metadata.system`, and the child events are `events`. The export has no audit
    `via.source` and no `metadata.custom`."""
    row = {key: value for key, value in event.items() if key not in AUDIT_FIELDS_FROM_EVENT}
    row.update(
        {
            "created_at": event.get("created_at") or epoch_to_iso(event["timestamp"]),
            "author_id": event.get("updater_id"),
            "via": {"channel": event.get("via")},
            "metadata": {"system": event.get("system") or {}},
            "events": _audit_events([dict(child) for child in event.get("child_events") or ()]),
        }
    )
    return row


#: Audit events carry `value` / `previous_value` as a string, a number, a boolean or a
#: list (tags), depending on the field: each is loaded as its JSON text in one text column
#: (`"open"`, `509974`, `true`, `["a","b"]`), with no variant columns and no child table
#: for list values (see `with_json_values` for why not dlt's json type).
AUDIT_EVENT_VALUES = ("value", "previous_value")
AUDIT_EVENT_HINTS = json_value_hints([("events",)], AUDIT_EVENT_VALUES)


def _audit_events(events: List[Row]) -> List[Row]:
    _json_text_items(events, AUDIT_EVENT_VALUES)
    return events


def ticket_event_resources(ctx: SourceContext) -> List[DltResource]:
    """ticket_comments and ticket_audits from one pass over the ticket events export."""
    spec = TABLES_BY_NAME["ticket_comments"]
    endpoint = spec.endpoint

    def read_events(
        cursor: dlt.sources.incremental[int] = change_stream_cursor(
            endpoint.export_cursor, initial_value=ctx.start_epoch, primary_key="id"
        ),
    ) -> Iterator[List[Row]]:
        yield from time_export_pages(ctx, spec.reader, endpoint, cursor)

    reader = dlt.resource(read_events, name=spec.reader, selected=False, parallelized=True)

    @dlt.transformer(data_from=reader, name="ticket_comments", primary_key="id", write_disposition="merge")
    def ticket_comments(page: List[Row]) -> Iterator[List[Row]]:
        rows = [row for event in page for row in _comment_rows(event)]
        if rows:
            yield rows

    resources = [reader, ticket_comments]
    if ctx.audits_mode == "events":

        @dlt.transformer(
            data_from=reader,
            name="ticket_audits",
            primary_key="id",
            write_disposition=AUDITS_WRITE_DISPOSITION,
            nested_hints=AUDIT_EVENT_HINTS,
        )
        def ticket_audits(page: List[Row]) -> Iterator[List[Row]]:
            yield [_audit_row(event) for event in page]

        resources.append(ticket_audits)
    return resources


def per_ticket_audits(ctx: SourceContext, ticket_reader: DltResource) -> DltResource:
    """Opt-in `audits_mode="per_ticket"`: full Zendesk audits (with `via.source` and
    `metadata.custom`) from `/tickets/{id}/audits`, only for tickets changed since the last
    run. Costs one request per changed ticket; audits already loaded are not appended twice
    (created_at cursor plus id dedup)."""
    endpoint = PER_TICKET_AUDITS

    @dlt.transformer(
        data_from=ticket_reader,
        name="ticket_audits",
        primary_key="id",
        write_disposition=AUDITS_WRITE_DISPOSITION,
        nested_hints=AUDIT_EVENT_HINTS,
    )
    def ticket_audits(
        page: List[Row],
        created_at: dlt.sources.incremental[str] = change_stream_cursor(
            TABLES_BY_NAME["ticket_audits"].cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key="id"
        ),
    ) -> Iterator[List[Row]]:
        live = [ticket["id"] for ticket in page if ticket.get("status") != "deleted"]
        # Several tickets at once: the run's rate budget still paces every request.
        with ThreadPoolExecutor(max_workers=PER_TICKET_WORKERS) as pool:
            for audits in pool.map(lambda ticket_id: _ticket_audits(ctx, endpoint, ticket_id), live):
                if audits:
                    yield audits

    return ticket_audits


def _ticket_audits(ctx: SourceContext, endpoint: Endpoint, ticket_id: int) -> List[Row]:
    """All audits of one ticket; none if it was deleted since the export listed it (404)."""
    rows: List[Row] = []
    path = endpoint.path.format(id=ticket_id)
    try:
        for audits in ctx.client.pages(
            endpoint, list_paginator(endpoint), list_params(endpoint), path=path, plan_gated=True
        ):
            for audit in audits:
                audit["events"] = _audit_events(audit.get("events") or [])
            rows.extend(audits)
    except TableUnavailable as error:
        if error.status_code != 404:
            raise
    return rows


def user_resources(ctx: SourceContext) -> List[DltResource]:
    """users from the cursor export, with typed custom fields. Soft-deleted users come
    through the export too, with `active: false`."""
    spec = TABLES_BY_NAME["users"]
    reader = cursor_export_reader(ctx, spec, epoch_to_iso(ctx.start_epoch))

    @dlt.transformer(data_from=reader, name="users", primary_key="id", write_disposition="merge")
    def users(page: List[Row]) -> Iterator[Any]:
        if not page:
            return
        catalog = ctx.catalog("user", page)
        rows = [catalog.pivot(dict(user)) for user in page]
        yield dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=catalog.column_hints()))

    return [reader, users]


def organizations(ctx: SourceContext) -> DltResource:
    """organizations from the time-based export, with typed custom fields. No id dedup at
    the cursor: an organization changed twice within one second must load its second
    version (merge makes the re-read boundary row harmless)."""
    spec = TABLES_BY_NAME["organizations"]

    def read(
        cursor: dlt.sources.incremental[str] = change_stream_cursor(
            spec.endpoint.export_cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key=()
        ),
    ) -> Iterator[Any]:
        for page in time_export_pages(ctx, spec.name, spec.endpoint, cursor):
            catalog = ctx.catalog("organization", page)
            rows = [catalog.pivot(dict(org)) for org in page]
            yield dlt.mark.with_hints(rows, dlt.mark.make_hints(columns=catalog.column_hints()))

    return dlt.resource(read, name="organizations", primary_key="id", write_disposition="merge", parallelized=True)


def ticket_metric_events(ctx: SourceContext) -> DltResource:
    """Metric events never change, so dlt's id dedup at the cursor is exactly right."""
    spec = TABLES_BY_NAME["ticket_metric_events"]

    def read(
        cursor: dlt.sources.incremental[str] = change_stream_cursor(
            spec.endpoint.export_cursor, initial_value=epoch_to_iso(ctx.start_epoch), primary_key="id"
        ),
    ) -> Iterator[List[Row]]:
        yield from time_export_pages(ctx, spec.name, spec.endpoint, cursor)

    return dlt.resource(
        read,
        name="ticket_metric_events",
        primary_key="id",
        write_disposition="merge",
        parallelized=True,
    )


def build_resources(ctx: SourceContext) -> List[DltResource]:
    """All 16 tables (and their hidden readers), in the registry's order of concerns."""
    ticket_export = ticket_resources(ctx)
    resources: List[DltResource] = [*ticket_export, *ticket_event_resources(ctx)]
    if ctx.audits_mode == "per_ticket":
        resources.append(per_ticket_audits(ctx, ticket_export[0]))
    resources += [ticket_metric_events(ctx), *user_resources(ctx), organizations(ctx)]
    for spec in TABLES_BY_NAME.values():
        if spec.change_detection is ChangeDetection.FINGERPRINT:
            resources.append(fingerprint_table(ctx, spec))
        elif spec.change_detection is ChangeDetection.REPLACE:
            resources.append(replace_table(ctx, spec))
        elif spec.name == "satisfaction_ratings":
            resources.append(satisfaction_ratings(ctx, spec))
    return resources
