"""Serve the recorded Zendesk payloads of `tests/fixtures/real` over real HTTP.

Each endpoint the source calls answers with its recorded page. Exports honour their
paging parameters the way Zendesk does, so the source's paginators run unchanged: a
cursor export answers the recorded page to a `start_time` request and an empty final page
to its own `after_cursor`; a time-based export answers the recorded rows at or after
`start_time`, with `end_time` the last row's second.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import dlt

from tests.helpers import FAST_LIMITS
from zendesk import zendesk_support
from zendesk.tables.registry import FIELD_DEFINITIONS, TABLES, TICKETS_EXPORT, Endpoint, Pagination

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real"

def fixture_name(endpoint: Endpoint) -> str:
    """A recorded payload's file name (without .json): its endpoint's path under /api/v2,
    slashes as underscores, without a parent's `{id}` (`/slas/policies` -> `slas_policies`,
    `/business_hours/schedules/{id}/holidays` -> `business_hours_schedules_holidays`)."""
    return "_".join(part for part in endpoint.path.strip("/").split("/") if part != "{id}")


#: A record id in a path (a number or a UUID), for endpoints listed per parent row.
ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?=/|$)")


#: Every endpoint the source calls (the tables' and the field definitions'), by path.
ENDPOINTS: Dict[str, Endpoint] = {
    **{spec.endpoint.path: spec.endpoint for spec in TABLES},
    **{endpoint.path: endpoint for endpoint, _ in FIELD_DEFINITIONS.values()},
}

#: Endpoint path (under /api/v2) -> fixture file (without .json).
ENDPOINT_FIXTURES: Dict[str, str] = {path: fixture_name(endpoint) for path, endpoint in ENDPOINTS.items()}


def load(name: str) -> Dict[str, Any]:
    """One recorded payload, parsed fresh (callers may change it)."""
    payload: Dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return payload


def epoch(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())


class FixtureZendesk:
    """A loopback server answering every endpoint of the source from the fixtures.

    `payloads` (endpoint path -> payload) replaces a fixture for one test; `requests`
    lists every path and query received."""

    def __init__(self, payloads: Optional[Dict[str, Dict[str, Any]]] = None) -> None:
        self.payloads = {path: load(name) for path, name in ENDPOINT_FIXTURES.items()}
        # The recorded tickets came by the API and the web form: the last is served as a
        # messaging ticket, so that the conversation log (asked for those only) is read.
        self.payloads[TICKETS_EXPORT.path][TICKETS_EXPORT.data_key][-1]["from_messaging_channel"] = True
        self.payloads.update(payloads or {})
        self.requests: List[Tuple[str, Dict[str, List[str]]]] = []
        self._server: Optional[ThreadingHTTPServer] = None

    def answer(self, path: str, query: Dict[str, List[str]]) -> Tuple[int, Any]:
        route = path.removeprefix("/api/v2").removesuffix(".json")
        self.requests.append((route, query))
        if route not in self.payloads:
            route = ID_SEGMENT.sub("/{id}", route)  # every parent row gets the recorded page
        payload = self.payloads.get(route)
        if payload is None:
            return 404, {"error": "InvalidEndpoint", "description": "Not found"}
        endpoint = ENDPOINTS[route]
        if endpoint.pagination is Pagination.CURSOR_EXPORT:
            return 200, self._cursor_page(endpoint, payload, query)
        if endpoint.pagination is Pagination.TIME_EXPORT:
            return 200, self._time_page(endpoint, payload, query)
        return 200, payload

    @staticmethod
    def _cursor_page(endpoint: Endpoint, payload: Dict[str, Any], query: Dict[str, List[str]]) -> Dict[str, Any]:
        if query.get("cursor") == [payload["after_cursor"]]:
            cursor = payload["after_cursor"]
            return {**payload, endpoint.data_key: [], "before_cursor": cursor, "end_of_stream": True}
        return payload

    @staticmethod
    def _time_page(endpoint: Endpoint, payload: Dict[str, Any], query: Dict[str, List[str]]) -> Dict[str, Any]:
        key, field = endpoint.data_key, endpoint.export_cursor
        assert field is not None, endpoint.path
        start = int(query.get("start_time", ["0"])[0])
        rows = [row for row in payload[key] if epoch(row[field]) >= start]
        end_time = max((epoch(row[field]) for row in rows), default=start)
        page = {**payload, key: rows, "count": len(rows), "end_time": end_time}
        if "end_of_stream" in payload:
            page["end_of_stream"] = True
        return page

    def start(self) -> "FixtureZendesk":
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                parts = urlsplit(self.path)
                status, body = fixture.answer(parts.path, parse_qs(parts.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def run_recorded(pipeline: dlt.Pipeline, server: FixtureZendesk, **overrides: Any) -> Any:
    """The plain `pipeline.run(zendesk_support(...))` over the recorded payloads."""
    args: Dict[str, Any] = {
        "subdomain": "company",
        "base_url": server.base_url,
        "credentials": {"oauth_token": "recorded-payloads"},
        **FAST_LIMITS,
        **overrides,
    }
    info = pipeline.run(zendesk_support(**args))
    info.raise_on_failed_jobs()
    return info
