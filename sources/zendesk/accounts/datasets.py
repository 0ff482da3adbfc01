"""Bringing an account's dataset in line with its place in the accounts list, before a sync.

An account's dataset can change under its pipeline: it is moved into a dataset other
accounts already fill, a second account is added to its dataset (which becomes shared), or
a full refresh is asked for in a dataset other accounts share. dlt handles none of these on
its own: it keeps the local cursors when the new dataset exists but holds no state of the
pipeline (so nothing is loaded for the moved account), it cannot add the shared dataset's
NOT NULL `subdomain` column to tables that already hold rows, and its refresh drops whole
tables (every account's rows). Each function here does one of these steps with dlt's own
means (the pipeline's destination client, `pipeline_drop` for state) and touches only the
account's own rows.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.schema import Schema
from dlt.common.schema.typing import PIPELINE_STATE_TABLE_NAME
from dlt.extract.hints import HintsMeta
from dlt.extract.items_transform import ItemTransform
from dlt.pipeline.helpers import pipeline_drop
from dlt.pipeline.state_sync import load_pipeline_state_from_destination

from ..errors import ZendeskConfigError

logger = logging.getLogger(__name__)

SUBDOMAIN_COLUMN = "subdomain"
"""In a dataset shared by several accounts: the account each row belongs to."""


def _has_cursors(pipeline: dlt.Pipeline) -> bool:
    sources = pipeline.state.get("sources", {})
    return any(source.get("resources") for source in sources.values())


def cursors_from_elsewhere(pipeline: dlt.Pipeline) -> bool:
    """True when the pipeline holds cursors locally but its dataset exists and holds no
    state of this pipeline: its rows are in another dataset (or file), and a sync would
    load only what changed since. (dlt resets the state itself when the dataset does not
    exist yet.)"""
    if not pipeline.default_schema_name or pipeline.has_pending_data or not _has_cursors(pipeline):
        return False
    try:
        with pipeline.destination_client() as client:
            if not client.is_storage_initialized():
                return False
            return load_pipeline_state_from_destination(pipeline.pipeline_name, client) is None  # type: ignore[arg-type]
    except DestinationUndefinedEntity:
        return False


def reset_cursors(pipeline: dlt.Pipeline, resources: Optional[Sequence[str]] = None) -> None:
    """Forget the cursors of `resources` (all when None), tables kept: the next sync reads
    them from the start. dlt's drop command commits the reset state to the destination."""
    if not pipeline.default_schema_name:
        return
    patterns = list(resources) if resources is not None else ["re:.*"]
    pipeline_drop(pipeline, resources=patterns, state_only=True)()


def _unshared(job_client: Any, tables: List[str]) -> List[str]:
    found = job_client.get_storage_tables(tables)
    return [name for name, columns in found if columns and SUBDOMAIN_COLUMN not in columns]


def pipelines_in_dataset(pipeline: dlt.Pipeline) -> List[str]:
    """The pipelines whose state the dataset holds (who loaded into it)."""
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(PIPELINE_STATE_TABLE_NAME)
        try:
            rows = client.execute_sql(f"SELECT DISTINCT pipeline_name FROM {table}")
        except DestinationUndefinedEntity:
            return []
    return sorted(str(row[0]) for row in rows or [])


def adopt_unshared_tables(
    pipeline: dlt.Pipeline, tables: Iterable[str], subdomain_of_pipeline: Mapping[str, str]
) -> List[str]:
    """Give the tables filled while the dataset had one account (no `subdomain` column)
    that column, set to the account that filled them, so accounts can be added to a
    dataset. The staging dataset of merges gets the same (dlt alters it too).

    Raises ZendeskConfigError when the rows cannot be attributed to one listed account.
    Returns the tables changed.
    """
    with pipeline.destination_client() as job_client:
        if not job_client.is_storage_initialized():
            return []
        legacy = _unshared(job_client, list(tables))
    if not legacy:
        return []
    owners = pipelines_in_dataset(pipeline)
    if len(owners) != 1 or owners[0] not in subdomain_of_pipeline:
        raise ZendeskConfigError(
            f"Dataset {pipeline.dataset_name} holds tables ({', '.join(legacy)}) loaded before it was"
            f" shared, by pipeline(s) {', '.join(owners) or 'unknown'}, which are not one account of the"
            f" accounts list: give the accounts a new dataset, or drop those tables first with"
            f" `dlt pipeline {owners[0] if owners else '<pipeline>'} drop --drop-all`."
        )
    subdomain = subdomain_of_pipeline[owners[0]]
    with pipeline.destination_client() as job_client:
        client = job_client.sql_client  # type: ignore[attr-defined]
        column = client.escape_column_name(SUBDOMAIN_COLUMN)
        for staging in (False, True):
            with client.with_staging_dataset() if staging else contextlib.nullcontext():
                if staging and not client.has_dataset():
                    continue
                for table in _unshared(job_client, legacy):
                    name = client.make_qualified_table_name(table)
                    client.execute_sql(f"ALTER TABLE {name} ADD COLUMN {column} VARCHAR")
                    client.execute_sql(f"UPDATE {name} SET {column} = %s", subdomain)
    logger.warning(
        "Dataset %s is now shared: its tables %s got a subdomain column set to '%s' (pipeline %s loaded them).",
        pipeline.dataset_name, ", ".join(legacy), subdomain, owners[0],
    )
    return legacy


def _owned_rows(schema: Schema, table: str, subdomain: str, quote: Dict[str, str]) -> str:
    """SQL condition selecting the rows of `table` that belong to the account (nested
    tables through their parent chain: they carry no subdomain of their own)."""
    parent = schema.tables[table].get("parent")
    if parent is None:
        return f"{quote[SUBDOMAIN_COLUMN]} = '{subdomain}'"
    inner = _owned_rows(schema, parent, subdomain, quote)
    return f"{quote['_dlt_parent_id']} IN (SELECT {quote['_dlt_id']} FROM {quote[parent]} WHERE {inner})"


def delete_account_rows(pipeline: dlt.Pipeline, root_tables: Iterable[str], subdomain: str) -> None:
    """Delete one account's rows from `root_tables` and their nested tables (children
    first, while their parents still say whose they are). `subdomain` is a validated
    subdomain (letters, digits and hyphens), so it is safe inside the statement."""
    schema = pipeline.default_schema
    roots = set(root_tables)

    def root_of(table: str) -> str:
        while schema.tables[table].get("parent"):
            table = schema.tables[table]["parent"]
        return table

    def depth(table: str) -> int:
        parent = schema.tables[table].get("parent")
        return 0 if parent is None else 1 + depth(parent)

    tables = [t for t in schema.data_table_names() if root_of(t) in roots]
    with pipeline.destination_client() as job_client:
        present = {name for name, columns in job_client.get_storage_tables(tables) if columns}  # type: ignore[attr-defined]
    with pipeline.sql_client() as client:
        quote = {t: client.make_qualified_table_name(t) for t in present}
        quote.update({c: client.escape_column_name(c) for c in (SUBDOMAIN_COLUMN, "_dlt_id", "_dlt_parent_id")})
        for table in sorted(present, key=depth, reverse=True):
            if root_of(table) in present:
                client.execute_sql(f"DELETE FROM {quote[table]} WHERE {_owned_rows(schema, table, subdomain, quote)}")


class DeleteAccountRowsWhenEmptied(ItemTransform[Any, Dict[str, Any]]):
    """A pipe step for a whole-list table in a shared dataset: when the account's list is
    empty, the source's load (`resources.emptied_list`) would replace the table, every
    account's rows with it; this step deletes the account's own rows instead and drops
    that load. Runs at extract time, ahead of the load that commits the table's state:
    if that load fails, the next run finds the list empty again and deletes again."""

    def __init__(self, table: str, subdomain: str) -> None:
        super().__init__(lambda item: item)
        self.table = table
        self.subdomain = subdomain

    def __call__(self, item: Any, meta: Any = None) -> Any:
        emptied = isinstance(meta, HintsMeta) and meta.hints.get("write_disposition") == "replace"
        if not (emptied and isinstance(item, list) and not item):
            return item
        pipeline = dlt.current.pipeline()
        if self.table in pipeline.default_schema.tables:
            delete_account_rows(pipeline, [self.table], self.subdomain)
        logger.info("%s: the list of %s is empty; its rows are deleted", self.table, self.subdomain)
        return None
