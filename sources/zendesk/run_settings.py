"""The account settings (subdomain, credentials) resolved when a run starts, not when the
source is built.

Orchestrators build the source when they load their definitions: Dagster's `@dlt_assets`
calls `zendesk_support()` while a code location is imported, often in a process that has
no secrets (a web server, `dagster definitions validate` in CI). So the source accepts a
missing subdomain or credentials at build time, and the run resolves them from dlt's
configuration then, in the source's own sections, raising dlt's usual
`ConfigFieldMissingException` when they are still missing. Values that are given are
validated at build time as before.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import dlt
from dlt.common.configuration import configspec, known_sections, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from .credentials import ZendeskCredentials


@configspec
class AccountSettings(BaseConfiguration):
    """The two settings every run needs, as the source declares them."""

    subdomain: str = None
    credentials: ZendeskCredentials = None


def resolve_account(subdomain: Optional[str], credentials: Any) -> Tuple[str, Any]:
    """`subdomain` and `credentials`, each from the argument when given, else from dlt's
    configuration in the sections of the source being extracted (`sources.<section>.<name>`,
    as dlt looks up the source's own arguments). Called inside a run."""
    if subdomain is not None and credentials is not None:
        return subdomain, credentials
    source = dlt.current.source()
    given = {key: value for key, value in (("subdomain", subdomain), ("credentials", credentials)) if value is not None}
    settings = resolve_configuration(
        AccountSettings(), sections=(known_sections.SOURCES, source.section, source.name), explicit_value=given
    )
    return settings.subdomain, settings.credentials
