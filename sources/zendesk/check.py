"""A dry connection check: are the subdomain and credentials right, which tables can we read?

One request per distinct endpoint (the smallest page each allows), nothing loaded.
Settings resolve exactly as for the source (section `sources.zendesk`). With `base_url`
set (a test server), the check also verifies that the server answers for the subdomain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration.inject import with_config

from . import build_client, marketplace_headers
from .api.client import ZendeskClient
from .config import normalize_subdomain
from .auth.credentials import ZendeskCredentials
from .errors import TableUnavailable, ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .api.rate_limit import account_budget
from .tables.registry import TABLES, TABLES_BY_NAME, Pagination, TableSpec


@dataclass
class CheckResult:
    """Who we are signed in as, and per table: readable, or why not."""

    user: Dict[str, Any]
    tables: Dict[str, str] = field(default_factory=dict)
    requests: int = 0

    @property
    def readable(self) -> List[str]:
        return [t for t, status in self.tables.items() if status == "ok"]

    def describe(self) -> str:
        who = f"{self.user.get('name')} <{self.user.get('email')}>, role {self.user.get('role')}"
        lines = [f"Connected as {who}.", f"Tables ({len(self.readable)}/{len(self.tables)} readable):"]
        lines += [f"  {table:22} {status}" for table, status in self.tables.items()]
        lines.append(f"({self.requests} requests)")
        return "\n".join(lines)


def _probe_params(spec: TableSpec) -> Dict[str, Any]:
    pagination = spec.endpoint.pagination
    if pagination in (Pagination.CURSOR_EXPORT, Pagination.TIME_EXPORT):
        return {"start_time": 0, "per_page": 1}
    if pagination is Pagination.CURSOR_LIST:
        return {"page[size]": 1}
    if pagination is Pagination.OFFSET_LIST:
        return {"per_page": 1}
    return {}


def probe_tables(client: ZendeskClient) -> Dict[str, str]:
    """Read one small page of every distinct endpoint; tables sharing one share the answer."""
    answers: Dict[str, str] = {}
    result: Dict[str, str] = {}
    for spec in TABLES:
        # A table read per parent row (holidays per schedule) is readable when its parent is.
        probed = TABLES_BY_NAME[spec.per_parent.table] if spec.per_parent else spec
        path = probed.endpoint.path
        if path not in answers:
            try:
                client.get(path, _probe_params(probed), table=spec.name, plan_gated=True)
                answers[path] = "ok"
            except TableUnavailable as error:
                answers[path] = f"not available ({error.status_code}: not on this plan or role)"
            except ZendeskAuthError:
                raise
            except ZendeskApiError as error:
                answers[path] = f"error: {error}"
        result[spec.name] = answers[path]
    return result


def same_account(subdomain: str, me: Dict[str, Any]) -> None:
    """With `base_url` set, the subdomain names no host, so a wrong one would still
    connect: compare it with the account the server says it is (the host of the signed-in
    user's `url`). Raises ZendeskConfigError when they differ."""
    host = urlsplit(str(me.get("url") or "")).hostname or ""
    expected = f"{normalize_subdomain(subdomain)}.zendesk.com"
    if host.endswith(".zendesk.com") and host != expected:
        raise ZendeskConfigError(
            f"base_url answers for the account {host}, not for subdomain '{subdomain}' ({expected}):"
            " set sources.zendesk.subdomain to that account's, or point base_url at the right server."
        )


@with_config(sections=("sources", "zendesk"))
def check_connection(
    subdomain: str = dlt.config.value,
    credentials: ZendeskCredentials = dlt.secrets.value,
    base_url: Optional[str] = None,
    marketplace_name: Optional[str] = None,
    marketplace_organization_id: Optional[str] = None,
    marketplace_app_id: Optional[str] = None,
    export_requests_per_minute: int = 10,
    rate_limit_window_seconds: float = 60.0,
    rate_state_dir: Optional[str] = None,
    **_: Any,
) -> CheckResult:
    """Verify the settings with `/users/me`, then probe which tables this account can read."""
    client = build_client(
        subdomain,
        credentials,
        base_url,
        marketplace_headers(marketplace_name, marketplace_organization_id, marketplace_app_id),
        # A check sends a few requests once: a small pace of its own, on the account's
        # shared ledger so that a sync started right after it counts these requests too.
        lambda account_url: account_budget(
            account_url,
            60,
            export_requests_per_minute,
            window=rate_limit_window_seconds,
            rate_dir=rate_state_dir,
        ),
    )
    me = client.get("/users/me").get("user", {})
    if base_url:
        same_account(subdomain, me)
    result = CheckResult(user=me, tables=probe_tables(client))
    result.requests = client.counter.total
    return result
