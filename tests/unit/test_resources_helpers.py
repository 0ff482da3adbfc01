"""resources.py: its helpers (PageBudget, BoundaryDedup, fingerprint, iso_to_epoch /
epoch_to_iso), and the registry as what builds its resources."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Dict, List

import dlt
import pytest

from zendesk import resources, zendesk_support
from zendesk.tables.registry import TABLES, TABLES_BY_NAME
from zendesk.resources import (
    PER_TICKET_WORKERS,
    BoundaryDedup,
    PageBudget,
    epoch_to_iso,
    fetched_in_order,
    fingerprint,
    iso_to_epoch,
)


def test_page_budget_grants_exactly_its_pages_across_threads() -> None:
    budget = PageBudget(100)
    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = list(pool.map(lambda _: budget.take(), range(500)))
    assert granted.count(True) == 100
    assert budget.take() is False


def dedup() -> BoundaryDedup:
    return BoundaryDedup(lambda row: row["t"])


def ids(rows: List[Dict[str, Any]]) -> List[Any]:
    return [row["id"] for row in rows]


def test_dedup_drops_rows_repeated_at_the_page_boundary() -> None:
    d = dedup()
    page1 = [{"id": 1, "t": 100}, {"id": 2, "t": 101}, {"id": 3, "t": 101}]
    page2 = [{"id": 2, "t": 101}, {"id": 3, "t": 101}, {"id": 4, "t": 102}]
    assert ids(d.filter(page1)) == [1, 2, 3]
    assert ids(d.filter(page2)) == [4]


def test_dedup_keeps_a_new_id_in_the_same_second() -> None:
    d = dedup()
    d.filter([{"id": 1, "t": 100}, {"id": 2, "t": 101}])
    assert ids(d.filter([{"id": 2, "t": 101}, {"id": 9, "t": 101}, {"id": 10, "t": 101}])) == [9, 10]
    # and the ids kept on this page are remembered for the next boundary
    assert ids(d.filter([{"id": 9, "t": 101}, {"id": 10, "t": 101}, {"id": 11, "t": 105}])) == [11]


def test_dedup_keeps_same_id_in_a_later_second() -> None:
    d = dedup()
    d.filter([{"id": 1, "t": 100}])
    assert ids(d.filter([{"id": 1, "t": 100}, {"id": 1, "t": 200}])) == [1]
    assert d.filter([{"id": 1, "t": 200}]) == []


def test_dedup_forgets_older_seconds() -> None:
    d = dedup()
    d.filter([{"id": 1, "t": 100}, {"id": 2, "t": 101}])
    # id 1 was at second 100, no longer the boundary second: a repeat at 101 is a new change
    assert ids(d.filter([{"id": 1, "t": 101}])) == [1]


def test_dedup_first_page_keeps_everything() -> None:
    rows = [{"id": 1, "t": 5}, {"id": 2, "t": 5}, {"id": 3, "t": 6}]
    assert dedup().filter(rows) == rows


def test_fingerprint_stable_under_key_order() -> None:
    a = {"id": 1, "name": "Support", "meta": {"x": 1, "y": [1, 2]}}
    b = {"meta": {"y": [1, 2], "x": 1}, "name": "Support", "id": 1}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) == fingerprint(dict(a))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"name": "Sales"}, id="string-value"),
        pytest.param({"id": 2}, id="id"),
        pytest.param({"deleted": True}, id="new-key"),
        pytest.param({"updated_at": "2024-01-01T00:00:01Z"}, id="same-minute-timestamp"),
        pytest.param({"meta": {"x": 2, "y": [1, 2]}}, id="nested-value"),
        pytest.param({"meta": {"x": 1, "y": [2, 1]}}, id="list-order"),
        pytest.param({"count": "1"}, id="type-change"),
        pytest.param({"count": None}, id="null"),
    ],
)
def test_fingerprint_changes_when_any_value_changes(change: Dict[str, Any]) -> None:
    base = {"id": 1, "name": "Support", "updated_at": "2024-01-01T00:00:00Z", "count": 1, "meta": {"x": 1, "y": [1, 2]}}
    assert fingerprint({**base, **change}) != fingerprint(base)


def test_fingerprint_is_short_hex() -> None:
    value = fingerprint({"id": 1})
    assert len(value) == 16
    int(value, 16)


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("2024-01-01T00:00:00Z", 1704067200, id="z"),
        pytest.param("2024-01-01T00:00:00+00:00", 1704067200, id="offset-utc"),
        pytest.param("2024-01-01T01:00:00+01:00", 1704067200, id="offset-plus-one"),
        pytest.param("2024-01-01T00:00:00", 1704067200, id="naive-is-utc"),
        pytest.param(1704067200, 1704067200, id="int"),
        pytest.param(1704067200.9, 1704067200, id="float"),
        pytest.param(datetime(2024, 1, 1, tzinfo=timezone.utc), 1704067200, id="datetime"),
    ],
)
def test_iso_to_epoch(value: Any, expected: int) -> None:
    assert iso_to_epoch(value) == expected


def test_epoch_to_iso_round_trip() -> None:
    assert epoch_to_iso(1704067200) == "2024-01-01T00:00:00Z"
    assert iso_to_epoch(epoch_to_iso(1717171717)) == 1717171717


# --- the registry drives the resources ---------------------------------------------------


def load_tags(tmp_path: Any, zendesk_http: Any, answers: List[List[str]]) -> List[str]:
    """Run the source's tags table once per answer of `/tags`; the names loaded in the end."""
    pipeline = dlt.pipeline(
        pipeline_name="registry",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "registry.duckdb")),
        dataset_name="zendesk_data",
    )
    for names in answers:
        page = {"tags": [{"name": name, "count": 1} for name in names], "meta": {"has_more": False}}
        zendesk_http.register_uri("GET", "https://acme.zendesk.com/api/v2/tags", json=page)
        source = zendesk_support(
            subdomain="acme",
            credentials={"oauth_token": "t0ken"},
            max_requests_per_minute=100_000,
            rate_state_dir=str(tmp_path / "rate"),
        )
        pipeline.run(source.with_resources("tags"))
    with pipeline.sql_client() as client:
        return sorted(row[0] for row in client.execute_sql(f"select name from {client.make_qualified_table_name('tags')}"))


@pytest.mark.parametrize(
    "disposition, expected",
    [
        pytest.param(None, ["c"], id="registry-replace"),
        pytest.param("merge", ["a", "b", "c"], id="changed-to-merge"),
    ],
)
def test_a_tables_write_disposition_comes_from_its_spec(
    disposition: Any, expected: List[str], tmp_path: Any, zendesk_http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TABLES_BY_NAME["tags"].write_disposition == "replace"
    if disposition is not None:
        tables = tuple(
            dataclasses.replace(spec, write_disposition=disposition) if spec.name == "tags" else spec for spec in TABLES
        )
        monkeypatch.setattr(resources, "TABLES", tables)
    assert load_tags(tmp_path, zendesk_http, [["a", "b"], ["c"]]) == expected


class _PerParentClient:
    """Answers each parent's child list; `gone` parents answer 404 (deleted since the
    parent list was read), `forbidden` ones 403."""

    def __init__(self, gone: int = 0, forbidden: int = 0) -> None:
        self.gone, self.forbidden = gone, forbidden
        self.paths: List[str] = []

    def pages(self, endpoint: Any, paginator: Any, params: Any, table: str, plan_gated: bool, path: str) -> Any:
        self.paths.append(path)
        parent = int(path.split("/")[-2])
        if parent in (self.gone, self.forbidden):
            raise resources.TableUnavailable(table, 404 if parent == self.gone else 403)
        yield [{"id": parent * 10, "name": "holiday"}]


class _PerParentContext:
    def __init__(self, client: _PerParentClient) -> None:
        self.client = client

    def scan(self, spec: Any) -> List[Dict[str, Any]]:
        assert spec.name == "schedules"
        return [{"id": 1}, {"id": 2}, {"id": 3}]


def test_per_parent_rows_carry_their_parent_and_skip_a_deleted_parent() -> None:
    spec = TABLES_BY_NAME["schedule_holidays"]
    assert spec.per_parent is not None
    client = _PerParentClient(gone=2)
    rows = resources._rows_per_parent(_PerParentContext(client), spec, spec.per_parent)  # type: ignore[arg-type]
    assert client.paths == [spec.endpoint.path.format(id=i) for i in (1, 2, 3)]
    assert rows == [{"id": 10, "name": "holiday", "schedule_id": 1}, {"id": 30, "name": "holiday", "schedule_id": 3}]


def test_per_parent_table_forbidden_for_one_parent_is_unavailable() -> None:
    spec = TABLES_BY_NAME["schedule_holidays"]
    assert spec.per_parent is not None
    with pytest.raises(resources.TableUnavailable):
        resources._rows_per_parent(_PerParentContext(_PerParentClient(forbidden=2)), spec, spec.per_parent)  # type: ignore[arg-type]


def test_per_ticket_fetches_come_in_order_and_stop_when_the_reader_closes() -> None:
    """A page of tickets is queued at once; a reader that stops early (an error further
    on) must not leave the rest of the page to be fetched for nothing."""
    import threading
    import time

    fetched: list = []
    lock = threading.Lock()

    def fetch(ticket_id: int) -> int:
        time.sleep(0.02)
        with lock:
            fetched.append(ticket_id)
        return ticket_id * 10

    assert list(fetched_in_order(list(range(12)), fetch)) == [(i, i * 10) for i in range(12)]
    fetched.clear()
    answers = fetched_in_order(list(range(200)), fetch)
    assert next(answers) == (0, 0)
    answers.close()
    assert len(fetched) <= 3 * PER_TICKET_WORKERS, len(fetched)
