"""Many Zendesk accounts in one deployment, one complete sync per account.

- `sync`: the accounts list (`load_accounts`), each account's pipeline, credentials,
  `sync_account` / `sync_accounts`, and its `check` and `authorize`;
- `datasets`: an account's dataset brought in line with its entry before a sync.

The top layer: it drives the source (`zendesk_support`) per account. What the pipeline
script, the Airflow DAG and users import is re-exported here.
"""

from __future__ import annotations

from .sync import (
    ZendeskAccount,
    ZendeskAccountsFailed,
    account_destination,
    account_names,
    authorize_account,
    check_account,
    load_accounts,
    resolve_account_credentials,
    sync_account,
    sync_accounts,
)

__all__ = [
    "ZendeskAccount",
    "ZendeskAccountsFailed",
    "account_destination",
    "account_names",
    "authorize_account",
    "check_account",
    "load_accounts",
    "resolve_account_credentials",
    "sync_account",
    "sync_accounts",
]
