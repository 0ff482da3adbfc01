"""Zendesk Support source: 16 tables, incremental, with typed custom fields.

Tables (write disposition, key, change tracking):

- tickets (merge, id, generated_timestamp) and ticket_metrics (merge, id, side-loaded
  metric_set) from one pass over `/incremental/tickets/cursor`;
- ticket_comments (merge, id) and ticket_audits (merge insert-only, id, created_at) from
  one pass over `/incremental/ticket_events?include=comment_events`;
- ticket_metric_events (merge, id, time), users (merge, id, updated_at),
  organizations (merge, id, updated_at) from their incremental exports;
- groups, group_memberships, macros, ticket_fields, ticket_forms (merge, id): full scan,
  loaded only when a row changed or vanished (cdc merge: vanished rows are deleted);
- satisfaction_ratings (merge, id, updated_at via start_time);
- sla_policies, talk_phone_numbers (replace, id) and tags (replace, name).

Plan-gated tables (sla_policies, ticket_forms, satisfaction_ratings, talk_phone_numbers)
are skipped with a warning when the account's plan does not include them.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Literal, Optional, Sequence

import dlt
from dlt.extract.resource import DltResource

from .client import ZendeskClient
from .config import normalize_subdomain, parse_start_date, resolve_base_url
from .credentials import (
    ZendeskApiTokenCredentials,
    ZendeskCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthTokenCredentials,
)
from .errors import ZendeskConfigError
from .rate_limit import EXPORT_SCOPES, RateBudget, account_budget
from .resources import SourceContext, build_resources
from .run import hooks as run_hooks
from .settings import TABLES, siblings

__all__ = [
    "zendesk_support",
    "ZendeskApiTokenCredentials",
    "ZendeskOAuthTokenCredentials",
    "ZendeskOAuthRefreshCredentials",
    "ZendeskOAuthClientCredentials",
    "TABLE_NAMES",
    "select_tables",
]

TABLE_NAMES: List[str] = [spec.name for spec in TABLES]

MARKETPLACE_HEADERS = {
    "marketplace_name": "X-Zendesk-Marketplace-Name",
    "marketplace_organization_id": "X-Zendesk-Marketplace-Organization-Id",
    "marketplace_app_id": "X-Zendesk-Marketplace-App-Id",
}


def marketplace_headers(
    name: Optional[str], organization_id: Optional[str], app_id: Optional[str]
) -> Dict[str, str]:
    """The `X-Zendesk-Marketplace-*` headers for the settings that are set."""
    values = {
        "marketplace_name": name,
        "marketplace_organization_id": organization_id,
        "marketplace_app_id": app_id,
    }
    return {MARKETPLACE_HEADERS[k]: str(v) for k, v in values.items() if v not in (None, "")}


def build_client(
    subdomain: str,
    credentials: ZendeskCredentials,
    base_url: Optional[str],
    headers: Dict[str, str],
    budget: Callable[[str], RateBudget],
) -> ZendeskClient:
    """Validate the account settings and build the run's one HTTP client, paced by
    `budget(account_url)`."""
    account = normalize_subdomain(subdomain)
    root = resolve_base_url(account, base_url)
    return ZendeskClient(root, credentials.auth(root), budget(root), headers=headers)


def select_tables(requested: Optional[Sequence[str]], audits_mode: str = "events") -> List[str]:
    """Validate table names and add the siblings that share an export with them."""
    if not requested:
        return list(TABLE_NAMES)
    unknown = [name for name in requested if name not in TABLE_NAMES]
    if unknown:
        raise ZendeskConfigError(
            f"Unknown table(s): {', '.join(unknown)}. Choose from: {', '.join(TABLE_NAMES)}."
        )
    selected: List[str] = []
    for name in requested:
        for table in siblings(name, audits_mode):
            if table not in selected:
                selected.append(table)
    return selected


@dlt.source(name="zendesk", max_table_nesting=2)
def zendesk_support(
    subdomain: str = dlt.config.value,
    credentials: ZendeskCredentials = dlt.secrets.value,
    start_date: Optional[str] = None,
    base_url: Optional[str] = None,
    marketplace_name: Optional[str] = None,
    marketplace_organization_id: Optional[str] = None,
    marketplace_app_id: Optional[str] = None,
    max_requests_per_minute: Optional[int] = None,
    account_rate_share: float = 0.5,
    export_requests_per_minute: int = 10,
    export_rate_scope: Literal["shared", "per_endpoint", "auto"] = "shared",
    rate_limit_window_seconds: float = 60.0,
    rate_state_dir: Optional[str] = None,
    batch_pages: Optional[int] = None,
    audits_mode: Literal["events", "per_ticket"] = "events",
    deletions: Literal["hard", "soft"] = "hard",
    tables: Optional[Sequence[str]] = None,
) -> Sequence[DltResource]:
    """Replicate a Zendesk Support account.

    Args:
        subdomain: The account prefix: `acme` for https://acme.zendesk.com (the full host
            or URL is accepted too).
        credentials: One of, in the order dlt tries them: `client_id` + `client_secret` +
            `refresh_token` (refreshed and rotated, kept in `token_store_path`); `client_id` +
            `client_secret` (client credentials grant); an OAuth access token
            (`oauth_token`); `email` + `api_token` (ends 2027-04-30).
        start_date: Load changes from this date on: MM/DD/YYYY or ISO 8601. Empty: all history.
        base_url: Only for tests and the demo: a loopback fake Zendesk.
        marketplace_name, marketplace_organization_id, marketplace_app_id: Sent as the
            `X-Zendesk-Marketplace-*` headers on every request, for Marketplace apps.
        max_requests_per_minute: Pin this run's pace on the account-wide limit. Unset: take
            `account_rate_share` of the limit Zendesk reports in its rate-limit headers.
        account_rate_share: The share of the account's limit this run may use (0-1].
        export_requests_per_minute: For the incremental exports (Zendesk allows 10, 30 with
            the High Volume add-on).
        export_rate_scope: `shared` (default): all exports together stay within
            `export_requests_per_minute`, safe however Zendesk counts; `per_endpoint`: each
            export endpoint on its own, faster full syncs where the account allows it
            (Zendesk's documentation does not say which; 429s show it does not); `auto`:
            per endpoint until an export answers 429, then shared for good (remembered
            per account in `rate_state_dir`).
        rate_limit_window_seconds: Length of a rate-limit "minute"; only benchmarks and
            tests change it, to compress time against the fake Zendesk.
        rate_state_dir: Where the requests of the last minute are kept per account host,
            shared by every process that reads the account, so back-to-back runs stay
            within Zendesk's limits. Default: `<dlt data dir>/zendesk/rate`.
        batch_pages: Unset (default): every export is read to its end in this run. A
            number bounds the run to that many export pages, all exports together, and
            leaves the rest to the next run (with a warning naming the exports that are
            behind): `zendesk.run.run_until_drained` uses it to commit a long first sync
            batch by batch.
        audits_mode: `events` (default) builds ticket_audits from the ticket events export
            at no extra request; `per_ticket` fetches `/tickets/{id}/audits` for each
            changed ticket, for the full audit shape.
        deletions: How rows that vanished from Zendesk's small lists (groups, memberships,
            macros, ticket fields and forms) show: `hard` deletes them; `soft` keeps them
            with dlt's scd2 validity columns (`_dlt_valid_to` set when they vanished).
        tables: Load only these tables (all when unset), with the siblings that share their
            export added: `with_resources("tickets")` would read the ticket export and move
            its cursor past changes that ticket_metrics then never gets.

    Returns:
        The resources, one per table (plus hidden export readers shared by sibling tables).
    """
    if audits_mode not in ("events", "per_ticket"):
        raise ZendeskConfigError(f"audits_mode must be 'events' or 'per_ticket', not '{audits_mode}'.")
    if deletions not in ("hard", "soft"):
        raise ZendeskConfigError(f"deletions must be 'hard' or 'soft', not '{deletions}'.")
    if export_rate_scope not in EXPORT_SCOPES:
        raise ZendeskConfigError(
            f"export_rate_scope must be one of {', '.join(EXPORT_SCOPES)}, not '{export_rate_scope}'."
        )
    if batch_pages is not None and batch_pages < 1:
        raise ZendeskConfigError("batch_pages must be at least 1.")
    selected = select_tables(tables, audits_mode)
    client = build_client(
        subdomain,
        credentials,
        base_url,
        marketplace_headers(marketplace_name, marketplace_organization_id, marketplace_app_id),
        lambda account_url: account_budget(
            account_url,
            max_requests_per_minute,
            export_requests_per_minute,
            window=rate_limit_window_seconds,
            account_share=account_rate_share,
            export_scope=export_rate_scope,
            rate_dir=rate_state_dir,
        ),
    )
    pipeline = run_hooks.active_pipeline()
    if pipeline is not None:
        run_hooks.before_run(pipeline)
    ctx = SourceContext(
        client=client,
        start_epoch=parse_start_date(start_date),
        batch_pages=batch_pages,
        audits_mode=audits_mode,
        deletions=deletions,
        on_run_start=run_hooks.start_of_run,
    )
    resources = build_resources(ctx)
    for resource in resources:
        if resource.name in TABLE_NAMES:
            resource.selected = resource.name in selected
    run_hooks.apply_file_formats(resources, TABLE_NAMES, pipeline.destination if pipeline is not None else None)
    return resources
