"""Write docs/tables.md from the table registry (`zendesk.tables.registry.TABLES`).

One section per table: endpoint, pagination, key, write disposition, change tracking,
plan gating and the requests it costs a run. The page is generated so it can never
disagree with the registry; `tests/test_docs.py` fails when the committed file differs.

Run: `python -m tools.tables_doc` from the repository root.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from zendesk.tables.custom_fields import SOURCE_ATTRIBUTE
from zendesk.tables.registry import (
    API_PREFIX,
    TABLES,
    ChangeDetection,
    Pagination,
    TableSpec,
    dlt_write_disposition,
    reader_of,
)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "tables.md"

PAGINATION = {
    Pagination.CURSOR_EXPORT: "incremental cursor export (`start_time`, then Zendesk's `cursor`; 1000 rows a page)",
    Pagination.TIME_EXPORT: "incremental time-based export (`start_time` pages; 1000 rows a page, boundary repeats dropped)",
    Pagination.CURSOR_LIST: "cursor pagination (`page[size]=100`, `page[after]`)",
    Pagination.OFFSET_LIST: "offset pagination (`per_page=100`; Zendesk offers no cursor pagination here)",
    Pagination.SINGLE_PAGE: "none: Zendesk answers the whole list in one page",
}

CHANGES = {
    ChangeDetection.EXPORT_CURSOR: "the export returns only rows changed after the stored cursor",
    ChangeDetection.SERVER_START_TIME: "the list is asked for rows from the stored cursor (minus a lookback window)",
    ChangeDetection.FINGERPRINT: (
        "full scan; a content hash per row tells what changed: nothing changed, nothing is loaded;"
        " otherwise the list is merged and rows gone from Zendesk are deleted (`deletions=\"soft\"` keeps them, closed)"
    ),
    ChangeDetection.REPLACE: "full scan; the table is replaced each run",
    ChangeDetection.CREATED_SINCE: (
        "the list is asked only for rows created since the stored cursor (or read newest first"
        " up to it); rows never change once created"
    ),
}


#: What a reader of one table must know that its registry entry cannot say.
TABLE_NOTES = {
    "brands": (
        "a brand's own `subdomain` is loaded as `brand_subdomain`: `subdomain` names the account"
        " in a dataset several accounts share."
    ),
    "tickets": (
        "a deleted ticket stays, with `status = 'deleted'`: the ticket export carries deletions,"
        " so there is no `deleted_tickets` table (Zendesk's `/deleted_tickets` list would cost a"
        " scan per run for what the export already says); its ticket_metrics row is deleted."
    ),
    "users": (
        "a deleted user stays, with `active = false`, as the user export carries it: no"
        " `deleted_users` table for the same reason as tickets."
    ),
    "tags": (
        "Zendesk's `/tags` holds up to the 20,000 most popular tags in the last 60 days, not every"
        " tag ever used: every tag of a ticket is in `tickets__tags`."
    ),
}


def custom_field_line(spec: TableSpec) -> str:
    """Which fields of the payload become typed custom columns (and are not stored as they come)."""
    kind = spec.custom_fields
    dropped = [SOURCE_ATTRIBUTE[kind]] + (["fields"] if kind == "ticket" else [])
    return (
        f"- custom fields: the values in {' and '.join(f'`{f}`' for f in dropped)} become typed columns"
        " `custom_<field>` (typed from the field definitions); those lists themselves are not stored"
    )


def request_cost(spec: TableSpec) -> str:
    """What the table costs a run, in requests."""
    endpoint = spec.endpoint
    if spec.per_ticket is not None and spec.per_ticket.only_source:
        which = "every changed ticket"
        if spec.per_ticket.needs is not None:
            which += " of a chat or messaging channel"
        return f"1 for {which} the ticket export names (more for one with over 100 rows), plus that export"
    if spec.change_detection is ChangeDetection.EXPORT_CURSOR:
        shared = f", shared with the tables of the `{spec.reader}` reader" if spec.reader else ""
        return f"one per 1000 changed rows (at least 1){shared}; counts against the export limit (10 a minute)"
    if spec.defines_custom_fields:
        return (
            f"1 per 100 definitions, the same request that types the {spec.defines_custom_fields} custom columns:"
            " nothing extra when those are loaded too"
        )
    if spec.per_parent is not None:
        return (
            f"1 per row of `{spec.per_parent.table}` (Zendesk lists them per {spec.per_parent.table} row only),"
            f" plus the `{spec.per_parent.table}` list, shared when that table is loaded too"
        )
    if spec.change_detection is ChangeDetection.SERVER_START_TIME:
        return "one per 100 rows created in the lookback window (at least 1)"
    if endpoint.pagination is Pagination.SINGLE_PAGE:
        return "1"
    return "one per 100 rows (1 for most accounts)"


def section(spec: TableSpec) -> List[str]:
    endpoint = spec.endpoint
    params = "&".join(f"{key}={value}" for key, value in endpoint.params.items())
    path = f"{API_PREFIX}{endpoint.path}" + (f"?{params}" if params else "")
    disposition = dlt_write_disposition(spec)
    if isinstance(disposition, dict):
        disposition = f"{disposition['disposition']} ({disposition.get('strategy', 'default strategy')})"
    lines = [
        f"## {spec.name}",
        "",
        f"- endpoint: `{path}` (rows under `{endpoint.data_key}`)",
        f"- pagination: {PAGINATION[endpoint.pagination]}",
        f"- primary key: `{spec.primary_key}`",
        f"- write disposition: {disposition}",
        f"- change tracking: {CHANGES[spec.change_detection]}"
        + (f"; replication key `{spec.cursor}`" if spec.cursor else ""),
        f"- plan-gated: {'yes: a 403 or 404 skips the table with one warning' if spec.plan_gated else 'no'}",
        f"- loaded by default: {'yes' if spec.default else 'no: name it (or its group) in `tables`'}"
        + (f"; group `{spec.group}`" if spec.group else ""),
        f"- requests a run: {request_cost(spec)}",
    ]
    if spec.custom_fields is not None:
        lines.append(custom_field_line(spec))
    if spec.name in TABLE_NOTES:
        lines.append(f"- note: {TABLE_NOTES[spec.name]}")
    if spec.per_parent is not None:
        lines.append(
            f"- listed per `{spec.per_parent.table}` row (`{{id}}` in the path); each row gains that row's id"
            f" as `{spec.per_parent.key}`"
        )
    if spec.per_ticket is not None and spec.per_ticket.only_source:
        per_ticket = spec.per_ticket
        lines.append(
            f"- read per ticket (`{{id}}` in the path) for the tickets the `{per_ticket.reader}` reader says changed"
            + (f"; each row gains the ticket's id as `{per_ticket.key}`" if per_ticket.key else "")
            + ("; a ticket's rows are replaced by what it has now, a deleted ticket's are deleted"
               if per_ticket.tombstones else "")
        )
    elif spec.per_ticket is not None:
        per_ticket = spec.per_ticket
        lines.append(
            f"- with `audits_mode=\"per_ticket\"`: `{API_PREFIX}{per_ticket.endpoint.path}`, one request per changed"
            f" ticket, fed by the `{reader_of(spec.name, 'per_ticket')}` reader"
        )
    return lines + [""]


def render() -> str:
    lines = [
        "# Tables",
        "",
        "<!-- Generated from sources/zendesk/tables/registry.py by `python -m tools.tables_doc`; do not edit. -->",
        "",
        f"{len(TABLES)} tables, in the registry's order. Each endpoint is under `https://<subdomain>.zendesk.com`.",
        "",
    ]
    for spec in TABLES:
        lines.extend(section(spec))
    return "\n".join(lines)


def main() -> None:
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(TABLES)} tables)")


if __name__ == "__main__":
    main()
