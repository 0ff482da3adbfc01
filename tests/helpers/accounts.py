"""Several fake Zendesk accounts at once, configured the way a deployment lists them."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Dict, Iterator, List, Tuple

import dlt
import duckdb

from tests.helpers import FAST_LIMITS
from zendesk_fake import FakeZendesk
from zendesk import select_tables

SHARED_DATASET = "zendesk_all"

#: Three accounts of different sizes and seeds: their ticket, user and group ids overlap.
ACCOUNTS: Tuple[Tuple[str, int, int], ...] = (("acme", 11, 60), ("globex", 12, 40), ("initech", 13, 50))


@contextlib.contextmanager
def running_accounts() -> Iterator[Dict[str, FakeZendesk]]:
    """The three fakes, started; each named by its account (and subdomain)."""
    fakes = {name: FakeZendesk(seed=seed, tickets=tickets, subdomain=name) for name, seed, tickets in ACCOUNTS}
    for fake in fakes.values():
        fake.start()
    try:
        yield fakes
    finally:
        for fake in fakes.values():
            fake.stop()


def accounts_env(fakes: Dict[str, FakeZendesk], **extra: Any) -> Dict[str, str]:
    """Env vars listing the accounts (no secret in the list) and each one's own credentials."""
    entries: List[Dict[str, Any]] = [
        {"name": name, "subdomain": fake.subdomain, "base_url": fake.base_url, **FAST_LIMITS, **extra}
        for name, fake in fakes.items()
    ]
    env = {"SOURCES__ZENDESK__ACCOUNTS": json.dumps(entries)}
    for name, fake in fakes.items():
        env[f"SOURCES__ZENDESK_{name.upper()}__CREDENTIALS__OAUTH_TOKEN"] = fake.oauth_token
    return env


def dataset_reader(name: str, destination: Any, pipelines_dir: str) -> dlt.Pipeline:
    """A pipeline that only reads account `name`'s dataset (its default one)."""
    return dlt.pipeline(
        pipeline_name=f"reader_{name}",
        pipelines_dir=pipelines_dir,
        destination=destination,
        dataset_name=f"zendesk_{name}_data",
    )


def shared_dataset_reader(name: str, path: str, pipelines_dir: str) -> dlt.Pipeline:
    """A pipeline reading account `name`'s rows of the shared dataset in DuckDB file `path`,
    through per-account views (so each account is compared with its own truth)."""
    with duckdb.connect(path) as db:
        db.execute(f"create schema if not exists view_{name}")
        for table in select_tables(None):
            db.execute(
                f"create or replace view view_{name}.{table} as"
                f" select * from {SHARED_DATASET}.{table} where subdomain = '{name}'"
            )
    return dlt.pipeline(
        pipeline_name=f"view_reader_{name}",
        pipelines_dir=pipelines_dir,
        destination=dlt.destinations.duckdb(path),
        dataset_name=f"view_{name}",
    )


def account_views(destination: Any, dataset: str, name: str, pipelines_dir: str, tables: Any = None) -> dlt.Pipeline:
    """A pipeline reading account `name`'s rows of the shared `dataset` on any SQL
    destination, through per-account views in a dataset `<dataset>_v_<name>`."""
    views = f"{dataset}_v_{name}"
    tables = select_tables(None) if tables is None else tables
    writer = dlt.pipeline(
        pipeline_name=f"views_{name}", pipelines_dir=pipelines_dir, destination=destination, dataset_name=dataset
    )
    with writer.sql_client() as client:
        client.execute_sql(f"create schema if not exists {views}")
        for table in tables:
            client.execute_sql(
                f"create or replace view {views}.{table} as select * from {dataset}.{table} where subdomain = '{name}'"
            )
    return dlt.pipeline(
        pipeline_name=f"view_reader_{name}", pipelines_dir=pipelines_dir, destination=destination, dataset_name=views
    )


def drop_postgres_schemas(url: str, prefix: str) -> None:
    """Drop every schema whose name starts with `prefix` (a test's datasets and views)."""
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select nspname from pg_namespace where nspname like %s", (prefix + "%",))
        for (schema,) in cur.fetchall():
            cur.execute(f'drop schema "{schema}" cascade')
