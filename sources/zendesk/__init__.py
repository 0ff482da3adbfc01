"""Zendesk Support source: incremental tables, typed custom fields, field and tag history,
add-on products by name (docs/tables.md lists every table).

Tables (write disposition, key, change tracking):

- tickets (merge, id, generated_timestamp) and ticket_metrics (merge, id, side-loaded
  metric_set) from one pass over `/incremental/tickets/cursor`;
- ticket_comments (merge, id), ticket_audits (merge insert-only, id, created_at), and
  ticket_field_history / ticket_tag_history (merge insert-only, `<event id>:<field or tag>`:
  every field and tag change, derived from the same events) from one pass over
  `/incremental/ticket_events?include=comment_events`;
- ticket_metric_events (merge, id, time), users (merge, id, updated_at),
  organizations (merge, id, updated_at) from their incremental exports;
- groups, group_memberships, macros, ticket_fields, ticket_forms and the account
  configuration (brands, triggers, views, user_fields, ...; merge, id): full scan,
  loaded only when a row changed or vanished (cdc merge: vanished rows are deleted);
- satisfaction_ratings (merge, id, updated_at via start_time);
- sla_policies, talk_phone_numbers (replace, id) and tags (replace, name).

- activity (group): user_identities (merge, id; side-loaded with the user export, a
  user's identities replaced whenever the user changes), suspended_tickets (replace, id),
  ticket_skips, ticket_activities and audit_logs (merge insert-only, id, created_at: the
  lists are asked only for rows created since the cursor; skips are read newest first up
  to it), side_conversation_events (merge insert-only, id, created_at, from Zendesk's
  incremental side conversation event export).

Off by default, loaded when named in `tables` by table or by group:

- help_center: help_center_articles (merge, id, updated_at, from the incremental
  articles export), help_center_sections, help_center_categories, community_posts,
  community_topics (merge, id, full scan loaded only when something changed);
- talk: talk_calls and talk_legs (merge, id, updated_at, from Talk's incremental exports),
  with talk_phone_numbers;
- per ticket: side_conversations and ticket_conversation_logs (merge, id; a request per
  ticket the ticket export says changed, the log only for chat and messaging tickets; a
  ticket's rows are replaced, a deleted ticket's deleted).

Plan-gated tables (sla_policies, ticket_forms, satisfaction_ratings, custom_roles, schedules,
audit_logs, side_conversation_events, Help Center and Talk, ...) are skipped with one warning
when the account's plan does not include them.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Literal, Optional, Sequence

import dlt
from dlt.extract.resource import DltResource

from .api.client import DEFAULT_MAX_RETRY_AFTER_SECONDS, ZendeskClient
from .tables.column_controls import ColumnControls, configured_hash_key
from .config import normalize_subdomain, parse_start_date, resolve_base_url
from .auth.credentials import (
    ZendeskApiTokenCredentials,
    ZendeskCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthTokenCredentials,
)
from .errors import ZendeskConfigError
from .version import __version__
from .api.rate_limit import EXPORT_SCOPES, RateBudget, account_budget
from .resources import SourceContext, build_resources
from .run import hooks as run_hooks
from .run_settings import resolve_account, source_spec
from .tables.registry import DEFAULT_TABLES, GROUPS, TABLES, siblings

__all__ = [
    "__version__",
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
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
) -> ZendeskClient:
    """Validate the account settings and build the run's one HTTP client, paced by
    `budget(account_url)`."""
    account = normalize_subdomain(subdomain)
    root = resolve_base_url(account, base_url)
    return ZendeskClient(root, credentials.auth(root), budget(root), headers=headers, max_retry_after=max_retry_after)


def select_tables(requested: Optional[Sequence[str]], audits_mode: str = "events") -> List[str]:
    """Validate table and group names (a group stands for its tables) and add the siblings
    that share an export with them. Nothing requested: the tables loaded by default."""
    if not requested:
        return list(DEFAULT_TABLES)
    unknown = [name for name in requested if name not in TABLE_NAMES and name not in GROUPS]
    if unknown:
        raise ZendeskConfigError(
            f"Unknown table(s): {', '.join(unknown)}. Choose from: {', '.join(TABLE_NAMES)};"
            f" or the groups: {', '.join(GROUPS)}."
        )
    named = [table for name in requested for table in GROUPS.get(name, (name,))]
    selected: List[str] = []
    for name in named:
        for table in siblings(name, audits_mode):
            if table not in selected:
                selected.append(table)
    return selected


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
    max_retry_after_seconds: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
    batch_pages: Optional[int] = None,
    audits_mode: Literal["events", "per_ticket"] = "events",
    deletions: Literal["hard", "soft"] = "hard",
    tables: Optional[Sequence[str]] = None,
    drop_columns: Optional[Dict[str, List[str]]] = None,
    hash_columns: Optional[Dict[str, List[str]]] = None,
) -> Sequence[DltResource]:
    """Replicate a Zendesk Support account.

    Args:
        subdomain: The account prefix: `acme` for https://acme.zendesk.com (the full host
            or URL is accepted too). Like `credentials`, it may be missing when the source
            is built (an orchestrator loading its definitions without secrets): it is then
            resolved when the run starts, which fails at once when it is still missing.
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
        max_retry_after_seconds: A `Retry-After` longer than this (default 900) ends the run
            with a one-line error instead of sleeping through it; shorter ones are waited
            out, announced in the log.
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
        tables: Load only these tables, with the siblings that share their export added,
            so one read keeps them in step. A group name (`activity`, `help_center`,
            `talk`) stands for its tables. Unset: the tables on by default (every table but
            the add-on products' and those read once per parent row).
            `with_resources("tickets")` loses nothing either: each table keeps its own
            position in a shared export, and the one left out catches up when it is next
            selected.
        drop_columns: Personal data: columns never loaded, per table, as in
            `drop_columns = {tickets = ["description"], ticket_comments = ["body",
            "html_body", "plain_body"]}`. A column is the field's name in the table's rows
            (custom fields: their `custom_<name>` column); dots step into objects and list
            items (`via.source.from.address`, `events.body` of ticket_audits). A mapping
            and not `"table.column"` strings: one line per table reads well in toml, table
            names are checked as keys, and a dotted column path stays unambiguous. Applied
            before anything is written, on every table and run path. See
            docs/personal-data.md.
        hash_columns: Personal data: columns whose values are replaced by their keyed hash
            (HMAC-SHA256, hex text; NULL stays NULL), same form as `drop_columns`, as in
            `hash_columns = {users = ["email"]}`: the same value under the same key gives
            the same hash, so joins still work. The key is the secret
            `sources.zendesk.hash_key` (.dlt/secrets.toml, `SOURCES__ZENDESK__HASH_KEY` or
            any dlt secrets provider), read only when `hash_columns` is set and never
            logged or stored. It is not an argument: dlt init writes every secret argument
            as a placeholder into each project's secrets.toml, and dlt warns about it on
            every run. An unknown table in either setting, `hash_columns` without a key,
            or a column both dropped and hashed fails at source build; a column the rows
            do not carry is a warning, once per table (Zendesk adds fields).

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
    controls = ColumnControls.from_settings(
        drop_columns, hash_columns, configured_hash_key() if hash_columns else None, TABLE_NAMES
    )
    if subdomain is not None:  # a given subdomain (and base_url) fail here, before any run
        resolve_base_url(normalize_subdomain(subdomain), base_url)
    headers = marketplace_headers(marketplace_name, marketplace_organization_id, marketplace_app_id)

    def connect() -> ZendeskClient:
        """The run's client, built when the run starts: building it opens the rate ledger
        (and the token store), which loading an orchestrator's definitions must not."""
        return build_client(
            *resolve_account(subdomain, credentials),
            base_url,
            headers,
            lambda account_url: account_budget(
                account_url,
                max_requests_per_minute,
                export_requests_per_minute,
                window=rate_limit_window_seconds,
                account_share=account_rate_share,
                export_scope=export_rate_scope,
                rate_dir=rate_state_dir,
            ),
            max_retry_after_seconds,
        )

    pipeline = run_hooks.active_pipeline()
    if pipeline is not None:
        run_hooks.before_run(pipeline)
    ctx = SourceContext(
        connect=connect,
        start_epoch=parse_start_date(start_date),
        batch_pages=batch_pages,
        audits_mode=audits_mode,
        deletions=deletions,
        on_run_start=run_hooks.start_of_run,
        controls=controls,
    )
    resources = build_resources(ctx)
    for resource in resources:
        if resource.name in TABLE_NAMES:
            resource.selected = resource.name in selected
    run_hooks.apply_file_formats(resources, TABLE_NAMES, pipeline.destination if pipeline is not None else None)
    return resources


# Decorated here, not with `@`: its configuration spec is derived from the signature above.
zendesk_support = dlt.source(name="zendesk", max_table_nesting=2, spec=source_spec(zendesk_support))(zendesk_support)
