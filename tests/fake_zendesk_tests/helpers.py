"""HTTP walkers for the fake's pagination styles, written the way a careful client would
be, and asserting the style's contract on every page (so each walk is also a check)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

import requests

from zendesk_fake.generator import iso_to_epoch

Row = Dict[str, Any]


def api_session(fake: Any, bearer: bool = False) -> requests.Session:
    session = requests.Session()
    if bearer:
        session.headers["Authorization"] = f"Bearer {fake.oauth_token}"
    else:
        session.auth = (f"{fake.email}/token", fake.api_token)
    return session


def get_json(session: requests.Session, url: str, params: Optional[Dict[str, Any]] = None) -> Row:
    response = session.get(url, params=params)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    payload: Row = response.json()
    return payload


def walk_cursor_export(session: requests.Session, url: str, key: str, sideloaded: Optional[Dict[str, List[Row]]] = None,
                       **params: Any) -> Tuple[List[Row], str]:
    """Follow after_url until end_of_stream; returns the rows and the last after_cursor.
    The records of the side-loads named in `sideloaded` are added to its lists."""
    rows: List[Row] = []
    page = get_json(session, url, params)
    while True:
        rows.extend(page[key])
        for name, records in (sideloaded or {}).items():
            records.extend(page[name])
        assert page["after_url"].startswith("http://127.0.0.1:")
        if page["end_of_stream"]:
            return rows, page["after_cursor"]
        page = get_json(session, page["after_url"])


def ts_of(key: str, row: Row) -> int:
    """The timestamp a time-based export orders `row` by."""
    if key == "ticket_events":
        return int(row["timestamp"])
    if key == "ticket_metric_events":
        return iso_to_epoch(row["time"])
    if key == "tickets":
        return int(row["generated_timestamp"])
    return iso_to_epoch(row.get("updated_at") or row["created_at"])


def walk_time_export(session: requests.Session, url: str, key: str, start_time: int = 0,
                     per_page: int = 1000, **params: Any) -> Iterator[List[Row]]:
    """Follow next_page as Zendesk documents it, stopping on end_of_stream (or a short page for
    exports without it), and yield each page's rows. When a whole page shares one second
    (end_time == start_time) next_page would repeat it forever: continue at end_time + 1.

    Checks on every transition that the only repeated rows are exactly the rows of the
    boundary second, and that they come first."""
    page = get_json(session, url, {"start_time": start_time, "per_page": per_page, **params})
    previous: Optional[Row] = None
    while True:
        rows = page[key]
        assert page["count"] == len(rows)
        if rows:
            assert page["end_time"] == ts_of(key, rows[-1])
            stamps = [(ts_of(key, r), r["id"]) for r in rows]
            assert stamps == sorted(stamps), "rows must be ordered by (timestamp, id)"
            assert stamps[0][0] >= start_time
        if previous is not None:
            boundary = previous["end_time"]
            carried = {r["id"] for r in previous[key] if ts_of(key, r) == boundary}
            again = [r["id"] for r in rows if ts_of(key, r) == boundary]
            if start_time == boundary:
                assert set(again) == carried, "the next page repeats exactly the boundary second"
                assert again == [r["id"] for r in rows[: len(again)]], "repeated rows come first"
            else:
                assert again == []
        yield rows
        done = page["end_of_stream"] if "end_of_stream" in page else page["count"] < per_page
        if done:
            return
        assert f"start_time={page['end_time']}" in page["next_page"]
        previous = page
        if page["end_time"] == start_time:
            start_time += 1
            page = get_json(session, url, {"start_time": start_time, "per_page": per_page, **params})
        else:
            start_time = page["end_time"]
            page = get_json(session, page["next_page"])


def walk_cursor_list(session: requests.Session, url: str, key: str, size: int = 100, **params: Any) -> List[Row]:
    """CBP: page[size] then links.next until meta.has_more is false."""
    rows: List[Row] = []
    page = get_json(session, url, {"page[size]": size, **params})
    while True:
        assert len(page[key]) <= size
        rows.extend(page[key])
        if not page["meta"]["has_more"]:
            assert page["links"]["next"] is None
            return rows
        assert page["links"]["next"].startswith("http://127.0.0.1:")
        page = get_json(session, page["links"]["next"])


def walk_offset_list(session: requests.Session, url: str, key: str, per_page: int = 100) -> List[Row]:
    """OBP: per_page then next_page until it is null."""
    rows: List[Row] = []
    page = get_json(session, url, {"per_page": per_page})
    while True:
        rows.extend(page[key])
        assert page["count"] >= len(rows)
        if page["next_page"] is None:
            assert page["count"] == len(rows)
            return rows
        page = get_json(session, page["next_page"])


def ids(rows: List[Row]) -> List[Any]:
    return [row["id"] for row in rows]
