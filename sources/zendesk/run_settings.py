"""The account settings (subdomain, credentials) resolved when a run starts, not when the
source is built.

Orchestrators build the source when they load their definitions: Dagster's `@dlt_assets`
calls `zendesk_support()` while a code location is imported, often in a process that has
no secrets (a web server, `dagster definitions validate` in CI). So the source accepts a
missing subdomain or credentials at build time, and the run resolves them from dlt's
configuration then, in the source's own sections, raising dlt's usual
`ConfigFieldMissingException` (told in one line) when they are still missing. Values that are given are
validated at build time as before.

Both stay required fields of the source's configuration spec (so `dlt init` still writes
them into the generated config and secrets); the spec's base accepts them missing through
dlt's own `on_partial` hook.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Tuple, Type

import dlt
from dlt.common.configuration import configspec, known_sections, resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.reflection.spec import spec_from_signature

from .auth.credentials import ZendeskCredentials


#: The settings a run resolves when they were missing at build time.
RESOLVED_AT_RUN_START = frozenset({"subdomain", "credentials"})


@configspec
class ResolvedAtRunStart(BaseConfiguration):
    """Base of the source's configuration spec: missing account settings (and only those)
    do not fail the build."""

    def on_partial(self) -> None:
        missing = set(getattr(self.__exception__, "fields", ()))
        if missing and missing <= RESOLVED_AT_RUN_START:
            self.resolve()


def source_spec(source_function: Callable[..., Any]) -> Type[BaseConfiguration]:
    """The configuration spec dlt would derive from `source_function`'s signature, on
    `ResolvedAtRunStart`."""
    spec, _ = spec_from_signature(source_function, inspect.signature(source_function), base=ResolvedAtRunStart)
    return spec


@configspec
class AccountSettings(BaseConfiguration):
    """The two settings every run needs, as the source declares them."""

    subdomain: str = None
    credentials: ZendeskCredentials = None


class AccountSettingsMissing(ConfigFieldMissingException):
    """dlt's exception, so every handler of it still works, told in one line: dlt's own
    text lists each provider and key it tried for each kind of credentials (about 80 lines
    in a plain `pipeline.run`, where nothing else explains it)."""

    def __init__(self, missing: ConfigFieldMissingException) -> None:
        super().__init__(missing.config, missing.traces)

    def __str__(self) -> str:
        return (
            f"Zendesk settings are missing ({', '.join(self.fields)}): set sources.zendesk.subdomain and one"
            " kind of sources.zendesk.credentials (client_id and client_secret, or oauth_token, or email and"
            " api_token) in .dlt/secrets.toml or as env vars (SOURCES__ZENDESK__SUBDOMAIN,"
            " SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN, ...); docs/configuration.md lists every setting."
        )


def resolve_account(subdomain: Optional[str], credentials: Any) -> Tuple[str, Any]:
    """`subdomain` and `credentials`, each from the argument when given, else from dlt's
    configuration in the sections of the source being extracted (`sources.<section>.<name>`,
    as dlt looks up the source's own arguments). Called inside a run."""
    if subdomain is not None and credentials is not None:
        return subdomain, credentials
    source = dlt.current.source()
    given = {key: value for key, value in (("subdomain", subdomain), ("credentials", credentials)) if value is not None}
    try:
        settings = resolve_configuration(
            AccountSettings(), sections=(known_sections.SOURCES, source.section, source.name), explicit_value=given
        )
    except ConfigFieldMissingException as missing:
        raise AccountSettingsMissing(missing) from None
    return settings.subdomain, settings.credentials
