"""Many Zendesk accounts in one deployment: one complete sync per account.

Zendesk's rate limits bind per account, so an agency or a company with several Zendesk
instances scales by syncing accounts side by side, never by splitting one account's sync
across processes. Each account listed in `sources.zendesk.accounts` gets its own:

- pipeline (`zendesk_<name>`), hence its own state and export cursors;
- dataset (`dataset`, default `zendesk_<name>_data`) and optionally its own `destination`;
- credentials, read from `credentials_section` (default `sources.zendesk_<name>.credentials`;
  a section of the same shape as `sources.zendesk.credentials`);
- OAuth token store (`~/.dlt/zendesk_tokens_<name>.json` unless `token_store_path` is set;
  a Postgres store gets the account's name as its key);
- rate budget: the client paces per account host, and any rate setting may be given per account.

Accounts that name the same dataset on the same destination (after the run's own
`destination`, if given, stands for every account's) share it (`share_dataset`): a
`subdomain` column and (`subdomain`, key) keys on every table, so one query covers all
accounts; on DuckDB they share one file. `prepare_dataset` keeps a dataset in line when
accounts join it, move into it, or are refreshed in it (see `datasets`).

The list itself holds no secret, so a scheduler can read it without touching credentials:

    [[sources.zendesk.accounts]]            # .dlt/config.toml
    name = "acme"
    subdomain = "acme"
    dataset = "zendesk_acme_data"           # optional
    max_requests_per_minute = 200           # optional: any zendesk_support setting

    [sources.zendesk_acme.credentials]      # .dlt/secrets.toml
    client_id = "..."

or as JSON in `SOURCES__ZENDESK__ACCOUNTS`. `sync_account(name)` is the one call that does
an account's whole sync (used by `zendesk_pipeline.py --account` and the Airflow DAG).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import dlt
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.specs import CredentialsConfiguration

from .. import TABLE_NAMES, select_tables, zendesk_support
from .datasets import (
    SUBDOMAIN_COLUMN,
    DeleteAccountRowsWhenEmptied,
    adopt_unshared_tables,
    cursors_from_elsewhere,
    delete_account_rows,
    reset_cursors,
)
from ..config import duckdb_name_clash, normalize_subdomain
from ..auth.credentials import (
    ZendeskApiTokenCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthTokenCredentials,
)
from ..errors import ZendeskAuthError, ZendeskConfigError, ZendeskSettingMissing
from ..run import SyncResult, run_until_drained
from ..tables.registry import TABLES_BY_NAME, ChangeDetection, state_holder
from ..auth.stores import account_store_location
from ..auth.token_store import DEFAULT_TOKEN_STORE_PATH

logger = logging.getLogger(__name__)

#: Tables whose every run reads the whole list (an empty list empties the table).
WHOLE_LISTS = (ChangeDetection.FINGERPRINT, ChangeDetection.REPLACE)

ACCOUNTS_KEY = "sources.zendesk.accounts"
"""Where the list of accounts is read from (config.toml, env var or any dlt provider)."""

ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

#: Keys of an account entry that are not source settings.
ACCOUNT_KEYS = ("name", "subdomain", "dataset", "destination", "credentials_section")

#: The source settings an account entry may set for itself (everything but the credentials,
#: which come from the account's credentials section).
SOURCE_SETTINGS = tuple(
    p for p in inspect.signature(zendesk_support).parameters if p not in ("subdomain", "credentials")
)

#: Tried in this order, as dlt tries the members of `ZendeskCredentials`.
CREDENTIAL_SPECS = (
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthTokenCredentials,
    ZendeskApiTokenCredentials,
)


@dataclass(frozen=True)
class ZendeskAccount:
    """One Zendesk account of a deployment, as listed in `sources.zendesk.accounts`.

    Attributes:
        name: A short label (lowercase letters, digits, `_`): names the pipeline, the
            default dataset, the default credentials section and the token store.
        subdomain: The account prefix (`acme` for https://acme.zendesk.com).
        dataset: The dataset the account loads into.
        destination: A dlt destination name; None: DuckDB.
        credentials_section: The config section holding the account's credential fields
            (it ends in `.credentials`, where dlt reads credentials).
        settings: Other `zendesk_support` settings for this account only.
        shared: The dataset is shared with other listed accounts: every table gets a
            `subdomain` column and keys (`subdomain`, id) (see `share_dataset`).
    """

    name: str
    subdomain: str
    dataset: str
    destination: Optional[str] = None
    credentials_section: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    shared: bool = False

    @property
    def pipeline_name(self) -> str:
        return f"zendesk_{self.name}"

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "ZendeskAccount":
        """Validate one entry of the accounts list; the message names what to fix."""
        if not isinstance(entry, Mapping):
            raise ZendeskConfigError(f"Each entry of {ACCOUNTS_KEY} must be a table, not {entry!r}.")
        name = str(entry.get("name") or "")
        if not ACCOUNT_NAME.match(name):
            raise ZendeskConfigError(
                f"Account name {name!r} in {ACCOUNTS_KEY} must start with a lowercase letter and"
                " hold only lowercase letters, digits and '_' (it names the pipeline and dataset)."
            )
        if not entry.get("subdomain"):
            raise ZendeskConfigError(f"Account '{name}' in {ACCOUNTS_KEY} has no subdomain.")
        section = str(entry.get("credentials_section") or f"sources.zendesk_{name}.credentials")
        if _sections(section)[-1:] != ("credentials",) or len(_sections(section)) < 2:
            raise ZendeskConfigError(
                f"credentials_section {section!r} of account '{name}' must name a section ending in"
                " '.credentials' (dlt reads credential fields from a `credentials` table), for"
                f" example 'sources.zendesk_{name}.credentials'."
            )
        unknown = sorted(set(entry) - set(ACCOUNT_KEYS) - set(SOURCE_SETTINGS))
        if unknown:
            raise ZendeskConfigError(
                f"Account '{name}' in {ACCOUNTS_KEY} has unknown setting(s) {', '.join(unknown)}."
                f" Known: {', '.join(ACCOUNT_KEYS + SOURCE_SETTINGS)}."
            )
        return cls(
            name=name,
            subdomain=str(entry["subdomain"]),
            dataset=str(entry.get("dataset") or f"zendesk_{name}_data"),
            destination=entry.get("destination") or None,
            credentials_section=section,
            settings={k: v for k, v in entry.items() if k in SOURCE_SETTINGS},
        )


def load_accounts(entries: Optional[Any] = None, destination: Any = None) -> List[ZendeskAccount]:
    """The accounts of `sources.zendesk.accounts` (or of `entries`), validated.

    Reads no secret: a scheduler may call this to plan one task per account. Raises
    `ZendeskConfigError` when the list is missing, malformed or names an account twice.
    `destination` is a destination given for this run (the command line's
    `--destination`): it stands for every account's own when deciding which accounts share
    a dataset, since accounts whose listed destinations differ meet in it.
    """
    if entries is None:
        entries = dlt.config.get(ACCOUNTS_KEY)
    if isinstance(entries, str):
        try:
            entries = json.loads(entries)
        except ValueError:
            raise ZendeskConfigError(f"{ACCOUNTS_KEY} is not valid JSON.") from None
    if not entries or not isinstance(entries, (list, tuple)):
        raise ZendeskSettingMissing(
            f"No Zendesk accounts are listed. Add [[{ACCOUNTS_KEY}]] tables (name, subdomain) to"
            " .dlt/config.toml, or a JSON list to the env var SOURCES__ZENDESK__ACCOUNTS."
        )
    accounts = [ZendeskAccount.from_entry(entry) for entry in entries]
    names = [a.name for a in accounts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ZendeskConfigError(f"Account name(s) listed twice in {ACCOUNTS_KEY}: {', '.join(twice)}.")
    targets = [(destination_key(destination or a.destination), a.dataset) for a in accounts]
    return [replace(a, shared=targets.count(target) > 1) for a, target in zip(accounts, targets)]


def destination_key(destination: Any) -> str:
    """What identifies a destination when comparing accounts' targets: its name (DuckDB
    when unset, as for the pipeline)."""
    if destination is None:
        return "duckdb"
    return str(getattr(destination, "destination_name", None) or destination)


def account_names() -> List[str]:
    """The names of the configured accounts, in their listed order."""
    return [account.name for account in load_accounts()]


def get_account(name: str, accounts: Optional[Sequence[ZendeskAccount]] = None) -> ZendeskAccount:
    """The configured account called `name`."""
    for account in accounts if accounts is not None else load_accounts():
        if account.name == name:
            return account
    raise ZendeskConfigError(f"No account named '{name}' in {ACCOUNTS_KEY}.")


def _sections(section: str) -> Tuple[str, ...]:
    return tuple(part for part in section.split(".") if part)


def resolve_account_credentials(account: ZendeskAccount) -> CredentialsConfiguration:
    """The account's credentials, from its own section only.

    The members of `ZendeskCredentials` are tried in dlt's order; the OAuth refresh kind
    gets the account's own token store unless `token_store_path` is set, so two accounts
    never share (and refuse) one store.
    """
    sections = _sections(account.credentials_section)[:-1]  # dlt adds the `credentials` part
    for spec in CREDENTIAL_SPECS:
        candidate = spec()
        if isinstance(candidate, ZendeskOAuthRefreshCredentials):
            candidate.token_store_path = account_store_location(DEFAULT_TOKEN_STORE_PATH, account.name)
        try:
            resolved = resolve_configuration(candidate, sections=sections)
        except ConfigFieldMissingException:
            continue
        if isinstance(resolved, ZendeskOAuthRefreshCredentials):
            resolved.token_store_path = account_store_location(resolved.token_store_path, account.name)
        return resolved
    env_prefix = "__".join(_sections(account.credentials_section)).upper()
    raise ZendeskSettingMissing(
        f"No credentials for Zendesk account '{account.name}': set them under"
        f" [{account.credentials_section}] in .dlt/secrets.toml (client_id and client_secret, or"
        f" oauth_token, or email and api_token), or as env vars {env_prefix}__<FIELD>."
    )


def account_pipeline(
    account: ZendeskAccount, destination: Any = None, pipelines_dir: Optional[str] = None, progress: Any = None
) -> dlt.Pipeline:
    """The account's own pipeline: its name keys the state, its dataset holds the tables."""
    return dlt.pipeline(
        pipeline_name=account.pipeline_name,
        pipelines_dir=pipelines_dir,
        destination=account_destination(account, destination),
        dataset_name=account.dataset,
        progress=progress,
    )


def account_destination(account: ZendeskAccount, destination: Any = None) -> Any:
    """The destination the account loads into.

    DuckDB with no configured path puts each pipeline in a file of its own
    (`zendesk_<name>.duckdb`), so accounts "sharing" a dataset would share nothing: a shared
    dataset gets one file named after it (`<dataset>_shared.duckdb`, in the same folder; a
    file named as its dataset would make DuckDB's names ambiguous).
    """
    chosen = destination or account.destination or "duckdb"
    if chosen != "duckdb":
        return chosen
    configured = dlt.secrets.get("destination.duckdb.credentials")
    if account.shared and not configured:
        return dlt.destinations.duckdb(f"{account.dataset}_shared.duckdb")
    path = configured if isinstance(configured, str) and configured else f"{account.pipeline_name}.duckdb"
    if duckdb_name_clash(path, account.dataset):
        raise ZendeskConfigError(
            f"Account '{account.name}': dataset {account.dataset} is also the name of its DuckDB file"
            f" ({account.dataset}.duckdb), which DuckDB cannot tell apart: set another dataset in its"
            f" entry of {ACCOUNTS_KEY} (for example {account.dataset}_data)."
        )
    return chosen


def share_dataset(source: Any, subdomain: str) -> Any:
    """Make `source`'s tables hold several accounts side by side in one dataset.

    Ids are per account (ticket 1 exists in every account), so a shared table keyed on `id`
    would keep only the account loaded last. Every row gets a `subdomain` column and every
    key (primary and merge) becomes (`subdomain`, key); the tables replaced on each run
    become merges that replace only this account's rows (`merge_key = subdomain`), and
    soft-deleting (scd2) tables retire only this account's vanished rows; a whole list
    that empties deletes only this account's rows. Applied from
    outside as hints, so the single-account source is unchanged.
    """
    for name in TABLE_NAMES:
        if name not in source.resources:
            continue
        resource = source.resources[name]
        spec = TABLES_BY_NAME[name]
        resource.add_map(_stamp(subdomain))
        columns = {SUBDOMAIN_COLUMN: {"name": SUBDOMAIN_COLUMN, "data_type": "text", "nullable": False}}
        disposition = resource.write_disposition
        strategy = disposition.get("strategy") if isinstance(disposition, dict) else None
        if spec.change_detection in WHOLE_LISTS and strategy != "scd2":
            resource.add_step(DeleteAccountRowsWhenEmptied(name, subdomain))
        if strategy == "scd2":
            resource.apply_hints(columns=columns, merge_key=SUBDOMAIN_COLUMN)
        elif disposition == "replace":
            resource.apply_hints(
                columns=columns,
                write_disposition="merge",
                primary_key=[SUBDOMAIN_COLUMN, spec.primary_key],
                merge_key=SUBDOMAIN_COLUMN,
            )
        else:
            declared = resource.compute_table_schema()["columns"]
            merge_keys = [column for column, hints in declared.items() if hints.get("merge_key")]
            resource.apply_hints(columns=columns, primary_key=[SUBDOMAIN_COLUMN, spec.primary_key])
            if merge_keys:  # e.g. ticket_metrics by ticket_id: scope it to this account too
                resource.apply_hints(merge_key=[SUBDOMAIN_COLUMN, *merge_keys])
            if strategy == "cdc" or (isinstance(disposition, dict) and disposition.get("destination_scope")):
                # A load holds one account's rows: what it may delete (cdc: rows absent from
                # it; ticket_metrics: the tickets it holds) must stay within that account.
                scope = f"{SUBDOMAIN_COLUMN} IN (SELECT {SUBDOMAIN_COLUMN} FROM {{staging_table}})"
                if disposition.get("destination_scope"):
                    scope += f" AND ({disposition['destination_scope']})"
                resource.apply_hints(write_disposition={**disposition, "destination_scope": scope})
    return source


def _stamp(subdomain: str) -> Any:
    def stamp(row: Dict[str, Any]) -> Dict[str, Any]:
        row[SUBDOMAIN_COLUMN] = subdomain
        return row

    return stamp


def names_own_section(func: Callable[..., Any]) -> Callable[..., Any]:
    """Rejected credentials name the account's own settings section, not the default one.

    The client words a 401 for the single-account setup (`sources.zendesk.credentials`,
    `SOURCES__ZENDESK__CREDENTIALS__*`); for one of several accounts that points at the
    wrong place, so the message is re-worded here, where the account is known."""

    @functools.wraps(func)
    def wrapper(account: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(account, *args, **kwargs)
        except Exception as exc:
            rejected = _innermost(exc, ZendeskAuthError)
            if rejected is None:
                raise
            if not isinstance(account, ZendeskAccount):
                account = get_account(str(account))
            raise ZendeskAuthError(in_section(str(rejected), account.credentials_section)) from exc

    return wrapper


def _innermost(exc: BaseException, kind: type) -> Optional[BaseException]:
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def in_section(message: str, section: str) -> str:
    """`message` with the default credentials section replaced by `section`."""
    env_prefix = "__".join(_sections(section)).upper()
    named = message.replace("SOURCES__ZENDESK__CREDENTIALS__", f"{env_prefix}__")
    named = named.replace("sources.zendesk.credentials", section)
    if f"[{section}]" not in named:
        named = named.replace(".dlt/secrets.toml", f"[{section}] of .dlt/secrets.toml", 1)
    return named


@names_own_section
def sync_account(
    account: Any,
    tables: Optional[Sequence[str]] = None,
    destination: Any = None,
    pipelines_dir: Optional[str] = None,
    full_refresh: bool = False,
    progress: Any = None,
    **overrides: Any,
) -> SyncResult:
    """One account's whole sync, batch after batch until every export is drained.

    Args:
        account: A `ZendeskAccount` or the name of a configured one.
        tables: A subset of the tables (siblings sharing an export are added); None: all.
        destination: Overrides the account's destination (a name or a dlt destination).
        pipelines_dir: Where the pipeline keeps its local working state; None: dlt's default.
            A scheduler whose tasks land on different machines passes a fresh directory per
            task: the state is then restored from the destination, and a package a crashed
            attempt left behind is never loaded over newer data by a later run.
        full_refresh: Drop the selected tables and their cursors, and reload. In a shared
            dataset: delete the account's own rows of those tables, forget its cursors, reload.
        progress: dlt's progress display.
        overrides: `zendesk_support` settings for this call (over the account's own).

    Returns:
        What the sync did: batches and rows per table.
    """
    if isinstance(account, ZendeskAccount):
        accounts = load_accounts(destination=destination) if account.shared else [account]
    else:
        accounts = load_accounts(destination=destination)
        account = get_account(str(account), accounts)
    args: Dict[str, Any] = {**account.settings, **overrides}
    audits_mode = args.get("audits_mode") or dlt.config.get("sources.zendesk.audits_mode", str) or "events"
    selected = select_tables(tables, audits_mode)
    credentials = resolve_account_credentials(account)
    pipeline = account_pipeline(account, destination, pipelines_dir, progress)
    full_refresh = prepare_dataset(pipeline, account, accounts, selected, audits_mode, full_refresh)

    def make_source(batch_tables: Sequence[str]) -> Any:
        source = zendesk_support(subdomain=account.subdomain, credentials=credentials, **args)
        if account.shared:
            share_dataset(source, normalize_subdomain(account.subdomain))
        return source.with_resources(*batch_tables)

    logger.info("Zendesk account %s: syncing %d table(s) into %s", account.name, len(selected), account.dataset)
    result = run_until_drained(
        pipeline,
        make_source,
        selected,
        audits_mode=audits_mode,
        refresh="drop_resources" if full_refresh else None,
    )
    logger.info("Zendesk account %s: %d batch(es) loaded", account.name, result.batches)
    return result


def prepare_dataset(
    pipeline: dlt.Pipeline,
    account: ZendeskAccount,
    accounts: Sequence[ZendeskAccount],
    tables: Sequence[str],
    audits_mode: str,
    full_refresh: bool,
) -> bool:
    """Make the account's dataset ready for its sync; returns whether dlt must still run
    the full refresh (a shared dataset's is done here, on the account's own rows).

    - Cursors kept from another dataset (the account was moved): forgotten, so the move
      loads everything instead of nothing.
    - A dataset shared since the last run: the tables its single account filled get their
      `subdomain` column (see `datasets.adopt_unshared_tables`).
    - A full refresh in a shared dataset: the account's cursors of `tables` are forgotten
      and its rows deleted; the other accounts' rows stay.
    """
    if cursors_from_elsewhere(pipeline):
        logger.warning(
            "Zendesk account %s: dataset %s holds no state of pipeline %s (the account was moved"
            " here): loading its tables from the start.", account.name, account.dataset, pipeline.pipeline_name,
        )
        reset_cursors(pipeline)
    if not account.shared:
        return full_refresh
    owners = {a.pipeline_name: normalize_subdomain(a.subdomain) for a in accounts if a.dataset == account.dataset}
    adopt_unshared_tables(pipeline, TABLE_NAMES, owners)
    if full_refresh and pipeline.default_schema_name:
        if pipeline.has_pending_data:
            raise ZendeskConfigError(
                f"Account '{account.name}' has a load that an earlier run did not finish: run"
                f" `python zendesk_pipeline.py --account {account.name}` once to finish it, then the"
                " full refresh."
            )
        holders = {h for t in tables if (h := state_holder(t, audits_mode))}
        reset_cursors(pipeline, sorted({*tables, *holders}))
        delete_account_rows(pipeline, tables, normalize_subdomain(account.subdomain))
    return False


def sync_accounts(
    names: Optional[Iterable[str]] = None, destination: Any = None, **kwargs: Any
) -> Dict[str, SyncResult]:
    """Sync the named accounts (all by default) one after another, in one process.

    An account that fails does not stop the others; after all have run, the failures are
    raised together in a `ZendeskAccountsFailed` naming each account.
    """
    accounts = load_accounts(destination=destination)
    kwargs["destination"] = destination
    chosen = accounts if names is None else [get_account(n, accounts) for n in names]
    results: Dict[str, SyncResult] = {}
    failures: Dict[str, BaseException] = {}
    for account in chosen:
        try:
            results[account.name] = sync_account(account, **kwargs)
        except Exception as exc:  # one account's failure must not cost the others their run
            logger.error("Zendesk account %s failed: %s", account.name, exc)
            failures[account.name] = exc
    if failures:
        raise ZendeskAccountsFailed(failures, results)
    return results


@names_own_section
def check_account(account: Any) -> Any:
    """`check` for one account: its settings and credentials, one request per endpoint."""
    from ..check import check_connection

    if not isinstance(account, ZendeskAccount):
        account = get_account(str(account))
    return check_connection(
        subdomain=account.subdomain, credentials=resolve_account_credentials(account), **account.settings
    )


def authorize_account(account: Any, redirect_uri: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
    """`authorize` for one account: its OAuth client from its credentials section, its own
    token store (so signing in a second account never meets the first one's tokens).

    `kwargs` go to `zendesk.auth.authorize.authorize_interactive` (tests pass `input_fn`/`print_fn`).
    """
    from ..auth.authorize import authorize_interactive

    if not isinstance(account, ZendeskAccount):
        account = get_account(str(account))
    client = ZendeskOAuthRefreshCredentials()
    client.token_store_path = account_store_location(DEFAULT_TOKEN_STORE_PATH, account.name)
    resolve_configuration(client, sections=_sections(account.credentials_section)[:-1], accept_partial=True)
    return authorize_interactive(
        account.subdomain,
        client.client_id,
        client.client_secret,
        account_store_location(client.token_store_path, account.name),
        base_url=account.settings.get("base_url"),
        redirect_uri=redirect_uri,
        expires_in=client.access_token_expires_in,
        **kwargs,
    )


class ZendeskAccountsFailed(Exception):
    """Some accounts of a multi-account sync failed; the others completed."""

    def __init__(self, failures: Mapping[str, BaseException], results: Mapping[str, SyncResult]) -> None:
        listed = "; ".join(f"{name}: {exc}" for name, exc in failures.items())
        super().__init__(f"{len(failures)} of {len(failures) + len(results)} account(s) failed: {listed}")
        self.failures = dict(failures)
        self.results = dict(results)
