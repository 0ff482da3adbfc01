"""Errors the source raises, each worded to say what the user should fix."""

from __future__ import annotations


class ZendeskSourceError(Exception):
    """Base class: anything the user can act on."""


class ZendeskConfigError(ZendeskSourceError, ValueError):
    """A setting is missing or malformed; raised before any request is sent."""


class ZendeskSettingMissing(ZendeskConfigError):
    """A required setting is not set (or holds a placeholder): the message names where to
    set it. The command line treats it as a usage error (exit code 2)."""


class ZendeskAuthError(ZendeskSourceError):
    """Zendesk rejected the credentials (401): the run stops at once."""


class ZendeskApiError(ZendeskSourceError):
    """Zendesk answered with an error we cannot work around, or an unreadable body."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TableUnavailable(ZendeskSourceError):
    """A plan-gated table answered 403/404: skipped with a warning, the run goes on."""

    def __init__(self, table: str, status_code: int) -> None:
        super().__init__(
            f"Zendesk answered {status_code} for table '{table}': this account's plan or the"
            " authenticated user's role does not include it. The table is skipped; the other"
            " tables load."
        )
        self.table = table
        self.status_code = status_code


class ZendeskRunInProgress(ZendeskSourceError):
    """Another run of the same pipeline holds its lock: this one reads and loads nothing."""
