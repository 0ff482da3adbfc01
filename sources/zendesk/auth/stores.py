"""Choosing the token store by its location: a file path or a `postgresql://` URL.

The one place that knows both store kinds, so neither store module imports the other:
`token_store.py` (the file store and the interface) stays below `token_store_pg.py`
(the Postgres store, a subclass).
"""

from __future__ import annotations

import os
from typing import Optional, Union

from .token_store import DEFAULT_TOKEN_STORE_PATH, TokenStore, is_postgres_location
from .token_store_pg import PostgresTokenStore, _shown, with_default_key


def open_token_store(location: Union[str, "os.PathLike[str]"]) -> TokenStore:
    """The store at `location`: a `PostgresTokenStore` for a `postgresql://` location, else
    the JSON file store."""
    if is_postgres_location(location):
        return PostgresTokenStore(str(location))
    return TokenStore(location)


def shown_location(location: Optional[str]) -> Optional[str]:
    """A store location as messages may show it: a Postgres location loses its password."""
    if location is not None and is_postgres_location(location):
        return _shown(location)
    return location


def account_store_location(location: str, account: str) -> str:
    """The token store location of one of several accounts, derived from a shared setting.

    Tokens are per account and OAuth client, so accounts must never share a store entry:
    the default file becomes `~/.dlt/zendesk_tokens_<account>.json`; a Postgres location
    without a `key` gets `key=<account>`; any other location was chosen for this account
    and is kept.
    """
    if is_postgres_location(location):
        return with_default_key(location, account)
    if str(location) == DEFAULT_TOKEN_STORE_PATH:
        return DEFAULT_TOKEN_STORE_PATH.replace("zendesk_tokens.json", f"zendesk_tokens_{account}.json")
    return str(location)
