"""Column controls for personal data, end to end over HTTP from the fake into DuckDB: a
dropped column is absent from the destination's schema and data, a hashed column holds the
keyed hash of the fake's value, and neither the key nor a clear value is anywhere in the
loaded data, the pipeline's files (state, schemas, load packages, trace) or the logs, on
the plain call, batched syncs and per-ticket audits alike."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import dlt
import pytest
from dlt.common.normalizers.naming.snake_case import NamingConvention

from tests.helpers import query, source_args, sync
from zendesk import zendesk_support

KEY = f"test-hash-key-{uuid.uuid4().hex}"
COMMENT_COLUMNS = ["body", "html_body", "plain_body"]


def keyed_hash(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def custom_column(truth: Dict[str, List[Dict[str, Any]]], field_type: str) -> Dict[str, Any]:
    field = next(f for f in truth["ticket_fields"] if f["type"] == field_type)
    return {"id": field["id"], "column": NamingConvention().normalize_identifier(f"custom_{field['title']}")}


def controls(truth: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    return {
        "drop_columns": {
            "tickets": ["description", custom_column(truth, "text")["column"]],
            "ticket_comments": COMMENT_COLUMNS,
            "ticket_audits": [f"events.{c}" for c in COMMENT_COLUMNS],
        },
        "hash_columns": {
            "users": ["email"],
            "user_identities": ["value"],  # an e-mail identity's value is the address
            "suspended_tickets": ["author.email", "via.source.from.address"],
            "side_conversation_events": ["message.from.email", "actor.email"],
            "tickets": [custom_column(truth, "integer")["column"], "via.source.from.address"],
            "ticket_comments": ["via.source.from.address"],
            "ticket_audits": ["events.via.source.from.address"],  # every item of a list
            "groups": ["name"],  # a table loaded only when its content changed
        },
    }


def comment_bodies(truth: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    """The comment bodies no other table holds (the fake's macros reuse some comment lines)."""
    macros = json.dumps(truth["macros"], ensure_ascii=False)
    bodies = [c["body"] for c in truth["ticket_comments"] if c["body"] not in macros]
    assert len(bodies) > 50
    return bodies[::10]  # a sample keeps the searches below fast


def every_value(pipeline: dlt.Pipeline) -> str:
    """Every value of every table of the dataset, as one text."""
    parts: List[str] = []
    with pipeline.sql_client() as client:  # one connection: each costs a config resolution
        for table in pipeline.default_schema.data_table_names():
            rows = client.execute_sql(f"select * from {client.make_qualified_table_name(table)}")
            parts.extend(repr(tuple(row)) for row in rows)
    return "\n".join(parts)


def every_file(*roots: Path) -> Iterator[bytes]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.suffix != ".duckdb":
                yield path.read_bytes()


def assert_controlled(pipeline: dlt.Pipeline, fake: Any, tmp_path: Path, log: str) -> None:
    truth = fake.ground_truth()
    schema = pipeline.default_schema
    dropped_custom = custom_column(truth, "text")["column"]
    assert not {"description", dropped_custom} & set(schema.get_table_columns("tickets"))
    assert not set(COMMENT_COLUMNS) & set(schema.get_table_columns("ticket_comments"))
    assert not set(COMMENT_COLUMNS) & set(schema.get_table_columns("ticket_audits__events"))
    with pipeline.sql_client() as client:
        ticket_columns = {c[0] for c in client.execute_sql(
            "select column_name from information_schema.columns where table_schema = %s and table_name = 'tickets'",
            pipeline.dataset_name,
        )}
    assert not {"description", dropped_custom} & ticket_columns, "a dropped column was created in the destination"

    emails = {u["id"]: u["email"] for u in truth["users"]}
    assert dict(query(pipeline, "select id, email from {t:users}")) == {i: keyed_hash(e) for i, e in emails.items()}
    groups = {g["id"]: keyed_hash(g["name"]) for g in truth["groups"]}
    assert dict(query(pipeline, "select id, name from {t:groups}")) == groups
    hashed = custom_column(truth, "integer")
    assert schema.get_table_columns("tickets")[hashed["column"]]["data_type"] == "text"
    values = {t["id"]: next(c["value"] for c in t["custom_fields"] if c["id"] == hashed["id"]) for t in truth["tickets"]}
    stored = dict(query(pipeline, f"select id, {hashed['column']} from {{t:tickets}}"))
    assert stored == {i: None if v is None else keyed_hash(v) for i, v in values.items()}
    assert sum(v is not None for v in stored.values()) > 10
    # via.source.from is below the source's nesting depth: a JSON column holding the hash
    addresses = {a for (a,) in query(pipeline, "select distinct via__source__from->>'address' from {t:tickets}")}
    assert addresses == {keyed_hash("customer@example.com"), None}

    bodies = comment_bodies(truth)
    clear = [KEY, "customer@example.com", *emails.values(), *bodies]
    data = every_value(pipeline)
    assert [v for v in clear if v in data] == []
    files = b"\n".join(every_file(tmp_path / "pipelines", tmp_path / "dlt_data"))
    assert b"ticket_comments" in files, "no pipeline file to search: the test would prove nothing"
    assert [v for v in clear if v.encode() in files] == []
    assert [v for v in clear if v in log] == []
    assert KEY not in json.dumps(pipeline.last_trace.asdict(), default=str)


def test_dropped_and_hashed_columns_on_the_plain_call_and_batched_syncs(
    fake: Any, make_pipeline: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SOURCES__ZENDESK__HASH_KEY", KEY)  # resolved like any dlt secret
    settings = controls(fake.ground_truth())
    pipeline = make_pipeline()
    pipeline.run(zendesk_support(**source_args(fake, **settings))).raise_on_failed_jobs()
    assert_controlled(pipeline, fake, tmp_path, caplog.text)

    fake.mutate(seed=5, fraction=0.1)
    # batch after batch, as zendesk_pipeline.py runs
    sync(pipeline, fake, tables=["users", "tickets", "ticket_comments", "groups"], batch_pages=1, **settings)
    assert_controlled(pipeline, fake, tmp_path, caplog.text)


def test_per_ticket_audits_are_controlled(
    fake: Any, make_pipeline: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = make_pipeline()
    drop = {"ticket_audits": [f"events.{c}" for c in COMMENT_COLUMNS], "tickets": ["description"]}
    args = source_args(fake, tables=["tickets"], audits_mode="per_ticket", drop_columns=drop)
    pipeline.run(zendesk_support(**args)).raise_on_failed_jobs()
    events = pipeline.default_schema.get_table_columns("ticket_audits__events")
    assert "type" in events and not set(COMMENT_COLUMNS) & set(events)
    comments = query(pipeline, "select count(*) from {t:ticket_audits__events} where type = 'Comment'")[0][0]
    assert comments > 100
    bodies = comment_bodies(fake.ground_truth())
    data = every_value(pipeline)
    assert [b for b in bodies if b in data] == []


def test_a_column_no_row_carries_is_a_warning_once(
    fake: Any, make_pipeline: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = make_pipeline()
    args = source_args(fake, tables=["groups", "users"], drop_columns={"users": ["emial"]})
    pipeline.run(zendesk_support(**args)).raise_on_failed_jobs()
    warnings = [r.getMessage() for r in caplog.records if "emial" in r.getMessage()]
    assert len(warnings) == 1 and "users" in warnings[0]
    assert "email" in pipeline.default_schema.get_table_columns("users")
