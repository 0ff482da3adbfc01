"""Zendesk Support accounts as Dagster assets (dagster-dlt): one asset per table per account.

Load it with `dagster dev -f examples/dagster/definitions.py` (with this repository on
PYTHONPATH, or the `zendesk` folder beside it as `dlt init` leaves it). What it shows:

- **No secret to load.** `zendesk_support()` is built while Dagster imports this file,
  often where no secret is set (the web server, `dagster definitions validate` in CI): the
  subdomain and credentials are resolved when a run starts, from each account's own
  section (`[sources.zendesk_<account>]` in `.dlt/secrets.toml`, or env vars such as
  `SOURCES__ZENDESK_ACME__SUBDOMAIN` and `SOURCES__ZENDESK_ACME__CREDENTIALS__OAUTH_TOKEN`).
  Loading the definitions sends no request and writes none of our files.
- **Per-account asset keys.** `zendesk/<account>/<table>`: two accounts never clash, and
  the hidden export readers do not show as upstream assets (each table's description
  names the Zendesk export it is read from).
- **One run per account at a time.** Each account's assets share the pool
  `zendesk_<account>`; `dagster.yaml` beside this file limits every pool to one step. The
  body also refuses a run that overlaps one of the same account (started outside the pool)
  before dagster-dlt drops the pipeline's working folder, which would delete the running
  one's load package.
- **Any selection loses nothing.** Materializing some tables of an account reads their
  exports from those tables' own positions; the others catch up when next selected.

Accounts: `ZENDESK_ACCOUNTS` (comma-separated names, default `acme`), not secrets. The
destination is dlt's: `ZENDESK_DESTINATION` (default duckdb), one dataset per account
(`zendesk_<account>_data`).
"""

# No `from __future__ import annotations`: Dagster reads the asset function's `context`
# annotation at definition time and refuses it as a string.
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

import dlt
from dagster import AssetExecutionContext, AssetKey, AssetSpec, AssetsDefinition, Definitions, MetadataValue
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from zendesk import zendesk_support
from zendesk.run.lock import raise_if_running
from zendesk.tables.registry import TABLES_BY_NAME, siblings

ACCOUNTS: List[str] = [name.strip() for name in os.environ.get("ZENDESK_ACCOUNTS", "acme").split(",") if name.strip()]
DESTINATION = os.environ.get("ZENDESK_DESTINATION", "duckdb")


@dataclass
class ZendeskTranslator(DagsterDltTranslator):
    """Asset keys `zendesk/<account>/<table>`, no upstream keys for the hidden readers."""

    account: str = "acme"

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        table = data.resource.name
        spec = TABLES_BY_NAME[table]
        shared = [name for name in siblings(table) if name != table]
        description = f"Zendesk {self.account}: {table}, read from /api/v2{spec.endpoint.path}"
        if shared:
            description += f" (one read shared with {', '.join(shared)})"
        return super().get_asset_spec(data).replace_attributes(
            key=AssetKey(["zendesk", self.account, table]),
            deps=[],
            group_name=f"zendesk_{self.account}",
            description=description,
        )


def row_count(pipeline: dlt.Pipeline, table: str) -> Dict[str, Any]:
    """Dagster's row-count metadata: the rows the destination table holds now (none when the
    table does not exist, such as a plan-gated table the account lacks).

    Not dagster-dlt's `fetch_row_count()`: it fails the step for a table that loaded
    nothing in the run (no load job), which most tables do on most runs."""
    try:
        with pipeline.sql_client() as client:
            rows = client.execute_sql(f"select count(*) from {client.make_qualified_table_name(table)}")
    except Exception:  # dlt's DatabaseUndefinedRelation and its kin, per destination
        return {}
    return {"dagster/row_count": MetadataValue.int(int(rows[0][0]))}


def account_assets(account: str, source: Any) -> AssetsDefinition:
    """The assets of one account: one per table, one pipeline and dataset of their own."""
    pipeline = dlt.pipeline(
        pipeline_name=f"zendesk_{account}",
        destination=DESTINATION,
        # Not the pipeline's name: DuckDB names its catalog after the file, <pipeline>.duckdb,
        # and a dataset of the same name is an ambiguous reference there.
        dataset_name=f"zendesk_{account}_data",
    )
    translator = ZendeskTranslator(account=account)

    @dlt_assets(
        dlt_source=source,
        dlt_pipeline=pipeline,
        name=f"zendesk_{account}",
        dagster_dlt_translator=translator,
        pool=f"zendesk_{account}",
    )
    def assets(context: AssetExecutionContext, dlt_resource: DagsterDltResource) -> Iterator[Any]:
        raise_if_running(pipeline)  # before dagster-dlt drops the working folder
        for event in dlt_resource.run(context=context):
            yield event._replace(metadata={**event.metadata, **row_count(pipeline, event.asset_key.path[-1])})

    return assets


# Every source is built before any pipeline exists: the source checks the active pipeline's
# run lock when it is built, and the active one would be another account's.
SOURCES: Dict[str, Any] = {account: zendesk_support.clone(section=f"zendesk_{account}")() for account in ACCOUNTS}

defs = Definitions(
    assets=[account_assets(account, source) for account, source in SOURCES.items()],
    resources={"dlt_resource": DagsterDltResource()},
)
