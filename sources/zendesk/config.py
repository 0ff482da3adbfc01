"""Validation of the user's settings: subdomain, base URL, start date and DuckDB names.

Everything here runs before the first request, so a typo fails fast with a message that
names the setting, and credentials can never be sent to a host that is not the
account's own `<subdomain>.zendesk.com` (or a loopback test server).
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import date, datetime, timezone
from typing import Optional, Union
from urllib.parse import urlsplit

from .errors import ZendeskConfigError, ZendeskSettingMissing

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def is_placeholder(value: object) -> bool:
    """True for a value the user has not filled in yet: empty, `...`, or `<...>` (what
    `dlt init` and our secrets.toml.example write). No real setting looks like that, and
    sending one to Zendesk would only earn a confusing rejection."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text in ("", "...") or (text.startswith("<") and text.endswith(">"))


def normalize_subdomain(value: Optional[str]) -> str:
    """Accept `acme`, `acme.zendesk.com` or `https://acme.zendesk.com/...`; return `acme`."""
    if not value or is_placeholder(str(value)):
        raise ZendeskSettingMissing(
            "The Zendesk subdomain is not set. Set sources.zendesk.subdomain (or the env var"
            " SOURCES__ZENDESK__SUBDOMAIN) to the first part of your Zendesk address: 'acme'"
            " for https://acme.zendesk.com."
        )
    text = str(value).strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/", 1)[0]
    if text.endswith(".zendesk.com"):
        text = text[: -len(".zendesk.com")]
    if not _SUBDOMAIN_RE.match(text):
        raise ZendeskConfigError(
            f"'{value}' is not a Zendesk subdomain. Use only the account prefix of your Zendesk"
            " address (letters, digits and hyphens): 'acme' for https://acme.zendesk.com."
        )
    return text


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(subdomain: str, base_url: Optional[str] = None) -> str:
    """The API root credentials are sent to.

    `base_url` exists for tests and the demo: it must be a loopback server, or the
    account's own https://<subdomain>.zendesk.com. Anything else would hand the
    credentials to a foreign host and is refused.
    """
    official = f"https://{subdomain}.zendesk.com"
    if not base_url:
        return official
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    if _is_loopback(host):
        if parts.scheme not in ("http", "https"):
            raise ZendeskConfigError(f"base_url '{base_url}' must start with http:// or https://.")
        return f"{parts.scheme}://{parts.netloc}".rstrip("/")
    if parts.scheme != "https":
        raise ZendeskConfigError(
            f"base_url '{base_url}' is not HTTPS. Zendesk is only reachable over HTTPS; plain"
            " HTTP is accepted only for a local test server on 127.0.0.1 or localhost."
        )
    if host != f"{subdomain}.zendesk.com":
        raise ZendeskConfigError(
            f"base_url '{base_url}' points to '{host}', not to your account's"
            f" {subdomain}.zendesk.com. Credentials are only ever sent to the account's own"
            " host (or a loopback test server); remove base_url to use the default."
        )
    return official


_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S")


def parse_start_date(
    value: Union[None, str, date, datetime, int], now: Optional[datetime] = None
) -> int:
    """Return the start date as a Unix epoch second (0 = all history).

    The seed document's format is MM/DD/YYYY; ISO dates and datetimes are accepted too.
    A date in the future is an error: it would silently load nothing.
    """
    now = now or datetime.now(timezone.utc)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ZendeskConfigError(f"start_date {value!r} is not a date. Use MM/DD/YYYY or YYYY-MM-DD.")
    if isinstance(value, int):
        moment = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    else:
        moment = _parse_text_date(str(value).strip())
    if moment > now:
        raise ZendeskConfigError(
            f"start_date {value} is in the future (now is {now:%Y-%m-%d %H:%M} UTC). Use a past"
            " date, or leave it empty to load all history."
        )
    return max(0, int(moment.timestamp()))


def _parse_text_date(text: str) -> datetime:
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ZendeskConfigError(
            f"start_date '{text}' is not a date this source understands. Use MM/DD/YYYY (as in"
            " 01/31/2024) or ISO 8601 (2024-01-31 or 2024-01-31T00:00:00Z)."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def duckdb_name_clash(path: str, dataset: str) -> bool:
    """True when a DuckDB file and a dataset in it share a name: DuckDB names the file's
    catalog after the file, and then cannot tell the catalog from the schema ("Ambiguous
    reference to catalog or schema" on every load)."""
    return os.path.splitext(os.path.basename(path))[0] == dataset
