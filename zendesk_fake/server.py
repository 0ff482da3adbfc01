"""The fake Zendesk Support API: HTTP server, routing, pagination styles and fault switches.

`FakeZendesk` serves a generated account (see `generator.py`) on 127.0.0.1: the tables of
the map in `tables.py`, with the pagination styles, error bodies and quirks a Zendesk
replication connector meets (see docs/zendesk-api.md), and can be told to misbehave: plan-gated
tables, rate limits, server errors, dropped connections, truncated JSON, expiring OAuth
tokens. Every request is counted per endpoint template so tests can assert how many
requests a client needed.

Pipeline of one request: count -> OAuth endpoints (no API auth) -> authenticate ->
rate limits (429) -> plan gating (403/404) -> injected 5xx -> the endpoint -> malformed
JSON -> dropped connection. Rate-limit headers are added to every API answer.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import gc
import hashlib
import json
import math
import random
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from operator import itemgetter
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from .addons import addons_of
from .generator import Account, Row, generate_account, iso, paused_gc
from .ground_truth import build_ground_truth
from .tables import DATA_TABLES, ENDPOINT_TABLES, PAGE_SIZES, TABLES_BY_NAME, FakeTable, Paging, gated_templates, live, minimum_requests
from .oauth import OAuthServer

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
API = "/api/v2"
EXPORT_PREFIX = API + "/incremental/"
EXPORT_MAX_PAGE = PAGE_SIZES[Paging.CURSOR_EXPORT]
LIST_MAX_PAGE = PAGE_SIZES[Paging.CURSOR_LIST]
#: Offset pagination stops at page 100 (10,000 records) since 2023.
OFFSET_MAX_PAGE_NUMBER = 100
#: Exports withhold rows changed in the last minute and refuse a start_time that recent.
EXPORT_WITHHOLD_SECONDS = 60
#: What `x-rate-limit` reports when no limit is configured (Enterprise plan).
DEFAULT_ACCOUNT_LIMIT = 700

NOT_FOUND_ENDPOINT = {"error": "InvalidEndpoint", "description": "Not found"}
RECORD_NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}
BASIC_AUTH_FAILED = {"error": "Couldn't authenticate you"}
BEARER_AUTH_FAILED = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}
MISSING_READ_SCOPE = {"error": "Forbidden", "description": "Missing the following required scopes: read"}
PLAN_FORBIDDEN = {"error": {
    "title": "Forbidden",
    "message": "Access to this resource is restricted. Please contact the account administrator for assistance.",
}}
EXPORT_RATE_LIMITED = {
    "error": "APIRateLimitExceeded",
    "description": "Number of allowed incremental export API requests per minute exceeded",
}
SERVER_ERROR = {"error": "InternalServerError", "description": "Something went wrong on our side. Please retry."}

#: A record id in a path: a number, or a UUID (routing attributes).
_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?=/|$)")
_EPOCH = re.compile(r"^\d{1,12}$")


def endpoint_template(path: str) -> str:
    """`/api/v2/tickets/42/audits.json` -> `/api/v2/tickets/{id}/audits` (the counting key)."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0].removesuffix(".json"))


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: Dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Reply:
    """Serialize once per answer. ASCII output (non-ASCII as \\u escapes, same JSON once
    parsed) because the C encoder is three times faster that way than writing raw UTF-8."""
    body = json.dumps(payload, separators=(",", ":")).encode("ascii")
    return Reply(status, body, JSON_TYPE, dict(headers or {}))


def text_reply(status: int, text: str, headers: Optional[Dict[str, str]] = None) -> Reply:
    return Reply(status, text.encode("utf-8"), TEXT_TYPE, dict(headers or {}))


class Refusal(Exception):
    """Raised by parameter checks deep in a handler to answer with an error at once."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def bad_request(error: str, description: str) -> Refusal:
    return Refusal(json_reply(400, {"error": error, "description": description}))


@dataclass
class Request:
    method: str
    path: str  # as sent (maybe with .json), without the query: links keep the caller's form
    route: str  # path without .json
    template: str
    query: Dict[str, str]
    pairs: List[Tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


Key = Tuple[Any, ...]


class ExportIndex:
    """One export's rows ordered by (timestamp, id); bisect finds any start position.

    Changes always carry a newer timestamp than everything indexed, so re-filing changed
    rows is a linear filter plus a sort that finds two presorted runs (also linear).
    """

    def __init__(self, rows: Iterable[Row], key: Callable[[Row], Tuple[int, int]]) -> None:
        self._key = key
        self.keys: List[Tuple[int, int]] = []
        self.rows: List[Row] = []
        with paused_gc():
            self._add(list(rows))

    def _add(self, rows: Sequence[Row]) -> None:
        pairs = sorted(((self._key(row), row) for row in rows), key=itemgetter(0))
        if pairs and self.keys and pairs[0][0] < self.keys[-1]:
            pairs = list(zip(self.keys, self.rows)) + pairs
            pairs.sort(key=itemgetter(0))
            self.keys, self.rows = [], []
        self.keys.extend(k for k, _ in pairs)
        self.rows.extend(r for _, r in pairs)

    def refile(self, rows: Sequence[Row]) -> None:
        """Rows whose timestamp moved (or that are new) go to their new place."""
        moved = {self._key(row)[1] for row in rows}
        with paused_gc():
            kept = [i for i, key in enumerate(self.keys) if key[1] not in moved]
            self.keys = [self.keys[i] for i in kept]
            self.rows = [self.rows[i] for i in kept]
            self._add(rows)

    def append(self, rows: Sequence[Row]) -> None:
        """New rows of an append-only export (audits, metric events)."""
        with paused_gc():
            self._add(rows)

    def first_from(self, epoch: int) -> int:
        """Position of the first row with timestamp >= epoch (ids are positive)."""
        return bisect.bisect_left(self.keys, (epoch, 0))

    def first_after(self, key: Tuple[int, int]) -> int:
        return bisect.bisect_right(self.keys, key)

    def visible_end(self, cutoff: int) -> int:
        """End of the rows an export may show: those stamped at or before `cutoff`."""
        return bisect.bisect_right(self.keys, (cutoff, math.inf))


def encode_export_cursor(key: Tuple[int, int]) -> str:
    """Opaque like Zendesk's: base64 of "<timestamp>.0||<id>|"."""
    return base64.b64encode(f"{key[0]}.0||{key[1]}|".encode()).decode()


def decode_export_cursor(cursor: str) -> Tuple[int, int]:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        stamp, _, rest = text.partition("||")
        return int(float(stamp)), int(rest.rstrip("|"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("InvalidValue", "cursor is not a valid export cursor") from None


def encode_list_cursor(order: str, key: Key) -> str:
    raw = json.dumps({"o": order, "v": list(key)}, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_list_cursor(order: str, cursor: str) -> Key:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if data["o"] != order:
            raise ValueError(order)
        return tuple(data["v"])
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise bad_request("InvalidPaginationParameter", "page[after]/page[before] is not a cursor of this list") from None


@dataclass
class ListView:
    """Rows of a list endpoint in its order, with the sort keys its cursors encode."""

    order: str
    keys: List[Key]
    rows: List[Row]


def _filtered(view: ListView, keep: Callable[[Row], bool]) -> ListView:
    pairs = [(k, r) for k, r in zip(view.keys, view.rows) if keep(r)]
    return ListView(view.order, [k for k, _ in pairs], [r for _, r in pairs])


def _epoch_param(req: Request, name: str) -> Optional[int]:
    value = req.query.get(name)
    if value is None:
        return None
    if not _EPOCH.match(value):
        raise bad_request("InvalidValue", f"{name} must be a Unix epoch time in seconds")
    return int(value)


def _int_param(req: Request, name: str, default: int, maximum: int, error: str) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise bad_request(error, f"{name} must be an integer from 1 to {maximum}")
    return int(raw)


# -- switches: name -> validator (returns the value to set, raises ValueError)

Check = Callable[[str, Any], Any]


def _one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}")
        return value

    return check


def _optional_positive_int(name: str, value: Any) -> Optional[int]:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be None or a positive int")
    return value


def _optional_positive_number(name: str, value: Any) -> Optional[float]:
    if value is not None and not value > 0:
        raise ValueError(f"{name} must be None or > 0")
    return value


def _positive_seconds(name: str, value: Any) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0")
    return float(value)


def _fraction(name: str, value: Any) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be within [0, 1]")
    return float(value)


def _plan_gated(name: str, value: Any) -> Dict[str, int]:
    gated = dict(value or {})
    for table, status in gated.items():
        if table not in TABLES_BY_NAME and not str(table).startswith(API + "/"):
            raise ValueError(f"unknown table {table!r}; use one of {sorted(TABLES_BY_NAME)} or an endpoint template")
        if not isinstance(status, int) or not 400 <= status < 600:
            raise ValueError(f"plan_gated status for {table!r} must be an HTTP error status")
    return gated


def _endpoint_templates(name: str, value: Any) -> Tuple[str, ...]:
    return tuple(endpoint_template(path) for path in value)


def _absolute_urls(name: str, value: Any) -> Tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(url, str) and "://" in url for url in value):
        raise ValueError(f"{name} must be a list of absolute URLs")
    return tuple(value)


#: Every switch `configure()` sets, with its check; see `FakeZendesk.configure`.
SWITCHES: Dict[str, Check] = {
    "plan_gated": _plan_gated,
    "rate_limit_per_minute": _optional_positive_int,
    "export_rate_limit_per_minute": _optional_positive_int,
    "rate_window_seconds": _positive_seconds,
    "export_rate_scope": _one_of("per_endpoint", "shared"),
    "retry_after_format": _one_of("int", "multi"),
    "error_rate": _fraction,
    "drop_rate": _fraction,
    "malformed_json_paths": _endpoint_templates,
    "export_page_rows": _optional_positive_int,
    "satisfaction_time_field": _one_of("updated_at", "created_at"),
    "oauth_access_token_ttl": _optional_positive_number,
    "oauth_redirect_urls": _absolute_urls,
}


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False")
    return value


def _pagination_faults(name: str, value: Any) -> Dict[str, str]:
    kinds = ("same_cursor", "no_end_of_stream", "stuck_time", "same_page")
    if not isinstance(value, dict) or not all(t in TABLES_BY_NAME and k in kinds for t, k in value.items()):
        raise ValueError(f"{name} must map table names to one of {kinds}")
    return dict(value)


#: Transport fault switches (the transport branch's block):
#: retry_after_always: every API request answers 429 with this Retry-After (seconds); None = off.
#: pagination_faults: table name -> how its pages stop advancing: "same_cursor" (a cursor
#:     export repeats the cursor it was sent), "no_end_of_stream" (a cursor export never says
#:     end_of_stream), "stuck_time" (a time export's end_time and next_page do not move),
#:     "same_page" (a list's next page is the page just served).
#: oauth_echo_secrets: the token endpoint's error_description echoes the refresh token and
#:     client secret it received (a misbehaving endpoint).
TRANSPORT_SWITCHES: Dict[str, Check] = {
    "retry_after_always": _optional_positive_int,
    "oauth_echo_secrets": _flag,
    "pagination_faults": _pagination_faults,
}
SWITCHES.update(TRANSPORT_SWITCHES)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], fake: "FakeZendesk") -> None:
        self.fake = fake
        self.open_connections: Set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer are normal here (drop tests, stop()); stay quiet about those."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with Zendesk
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms per request on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return "FakeZendesk"

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        reply, drop = self.server.fake.handle(self.command, self.path, self.headers, body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if drop:
            # Announce the whole body, send half, hang up: the client sees a truncated read.
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """No access log: benchmarks send hundreds of thousands of requests."""


class FakeZendesk:
    """A fake Zendesk Support account over real HTTP. See the package docstring for the API.

    Switches are plain attributes read on every request; `configure(**switches)` sets
    several at once and validates them. Either way works while the server runs.
    """

    def __init__(
        self, seed: int = 1, tickets: int = 200, port: int = 0, now: Optional[float] = None, subdomain: str = "fakeacme"
    ) -> None:
        self.seed = seed
        self.subdomain = subdomain
        self._port = port
        self._lock = threading.RLock()
        self.account: Account = generate_account(seed, tickets, now=now, subdomain=self.subdomain)
        self.email: str = self.account.users[0]["email"]
        digest = hashlib.sha256(f"fake-zendesk:{seed}".encode()).hexdigest()
        self.api_token = f"fake-api-token-{digest[:32]}"
        self.oauth_token = f"fake-oauth-token-{digest[32:64]}"
        self.oauth_client_id = "fake_zendesk_client"
        self.oauth_client_secret = f"fake-client-secret-{digest[:24]}"
        self.oauth = OAuthServer(self.oauth_client_id, self.oauth_client_secret, self.oauth_token)

        # Switches (see configure()).
        self.plan_gated: Dict[str, int] = {}
        self.rate_limit_per_minute: Optional[int] = None
        self.export_rate_limit_per_minute: Optional[int] = None
        self.export_rate_scope: str = "per_endpoint"
        self.rate_window_seconds: float = 60.0
        self.retry_after_format: str = "int"
        self.error_rate: float = 0.0
        self.drop_rate: float = 0.0
        self.malformed_json_paths: Tuple[str, ...] = ()
        self.export_page_rows: Optional[int] = None
        self.satisfaction_time_field: str = "updated_at"
        # Transport faults (see TRANSPORT_SWITCHES).
        self.retry_after_always: Optional[int] = None
        self.pagination_faults: Dict[str, str] = {}
        self.oauth_echo_secrets: bool = False

        self._fault_rng = random.Random(f"fake-zendesk-faults:{seed}")
        self._fault_lock = threading.Lock()
        self._rate_lock = threading.Lock()
        self._account_window: Deque[float] = deque()
        self._export_windows: Dict[str, Deque[float]] = {}
        self._stats_lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()

        self._version = 0
        self._list_cache: Dict[str, Tuple[int, ListView]] = {}
        self._users_by_id = {u["id"]: u for u in self.account.users}
        self._orgs_by_id = {o["id"]: o for o in self.account.organizations}
        self._build_indexes()
        # Millions of long-lived, acyclic rows: keep the cyclic GC from rescanning them on every
        # full collection (seconds each at 200k tickets, in whatever process hosts the fake).
        # Refcounting still frees them when the fake is dropped.
        gc.freeze()

        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        #: Endpoint template -> the table it serves; the routes that are not a table follow.
        self._endpoints: Dict[str, FakeTable] = {table.template: table for table in ENDPOINT_TABLES}
        self._other_routes: List[Tuple["re.Pattern[str]", Callable[[Request, Tuple[str, ...]], Reply]]] = [
            (re.compile(f"^{API}/tickets/(\\d+)/audits$"), self._ticket_audits),
            (re.compile(f"^{API}/users/me$"), self._me),
        ]

    def _build_indexes(self) -> None:
        """One index per export, ordered as the export serves it."""
        self._indexes: Dict[str, ExportIndex] = {
            table.name: ExportIndex(table.rows(self.account), table.index_key)
            for table in ENDPOINT_TABLES
            if table.paging in (Paging.CURSOR_EXPORT, Paging.TIME_EXPORT)
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: Optional[int] = None) -> "FakeZendesk":
        """Bind 127.0.0.1 (a free port unless one is given) and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self._port if port is None else port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-zendesk", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut kept-alive connections, so no answer comes after stop()."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeZendesk":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake Zendesk is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ switches

    def configure(self, **switches: Any) -> None:
        """Set fault and limit switches (validated); unknown names raise TypeError.

        plan_gated: table name (or endpoint template) -> status, {} allows everything.
        rate_limit_per_minute / export_rate_limit_per_minute: None = unlimited.
        rate_window_seconds: length of the sliding rate window.
        export_rate_scope: "per_endpoint" (each export endpoint has its own export limit) or
            "shared" (all exports together).
        retry_after_format: "int" ("3") or "multi" ("3, 2").
        error_rate / drop_rate: fractions of API requests answered 500/503 / cut mid-body.
        malformed_json_paths: endpoint templates whose 200 answers are truncated JSON.
        export_page_rows: at most this many rows on an export page, whatever `per_page`
            asks (Zendesk promises no full pages); None = `per_page` rows.
        satisfaction_time_field: what `/satisfaction_ratings?start_time=` filters on,
            "updated_at" or "created_at" (Zendesk's documentation does not say).
        oauth_access_token_ttl: seconds for tokens issued from now on; None = no expiry.
        oauth_redirect_urls: the OAuth client's registered Redirect URLs (the consent page
            refuses any other redirect_uri, and a missing one, as Zendesk does).
        """
        unknown = sorted(set(switches) - set(SWITCHES))
        if unknown:
            raise TypeError(f"unknown switch {unknown[0]!r}; the switches are {sorted(SWITCHES)}")
        checked = {name: SWITCHES[name](name, value) for name, value in switches.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    @property
    def oauth_access_token_ttl(self) -> Optional[float]:
        return self.oauth.access_token_ttl

    @oauth_access_token_ttl.setter
    def oauth_access_token_ttl(self, value: Optional[float]) -> None:
        self.oauth.access_token_ttl = value

    @property
    def oauth_redirect_urls(self) -> Tuple[str, ...]:
        return tuple(self.oauth.redirect_urls)

    @oauth_redirect_urls.setter
    def oauth_redirect_urls(self, value: Tuple[str, ...]) -> None:
        self.oauth.redirect_urls = tuple(value)

    # ------------------------------------------------------------------ data changes

    def mutate(self, seed: int = 2, fraction: float = 0.01) -> Dict[str, Any]:
        """Everyday account activity stamped with one new second; returns the ids changed per kind."""
        with self._lock:
            summary = self.account.mutate(seed, fraction)
            tickets = self.account.tickets
            moved = summary["tickets_updated"] + summary["tickets_deleted"] + summary["tickets_created"]
            self._indexes["tickets"].refile([tickets[tid - 1] for tid in moved])
            self._indexes["users"].refile([self._users_by_id[uid] for uid in summary["users_updated"] + summary["users_deleted"]])
            self._indexes["organizations"].refile([self._orgs_by_id[oid] for oid in summary["organizations_updated"]])
            self._indexes["ticket_audits"].append(self.account.audits[len(self.account.audits) - len(summary["audits_created"]):])
            new_events = len(summary["ticket_metric_events_created"])
            self._indexes["ticket_metric_events"].append(self.account.ticket_metric_events[len(self.account.ticket_metric_events) - new_events:])
            moved = addons_of(self.account).mutate(seed, summary["stamp"])
            for table, rows in moved.items():
                self._indexes[table].refile(rows)
            summary["users_updated"] = sorted(set(summary["users_updated"]) | {u["id"] for u in moved["users"]})
            # tickets changed only by add-on activity (a side conversation, a chat message)
            listed = set(summary["tickets_updated"] + summary["tickets_deleted"] + summary["tickets_created"])
            summary["tickets_touched"] = sorted({t["id"] for t in moved["tickets"]} - listed)
            self._version += 1
        return summary

    def edit_lists(self) -> Dict[str, Any]:
        """Change and delete a row in every fixed list table (see `Account.edit_data_tables`);
        returns the ids per table."""
        with self._lock:
            summary = self.account.edit_data_tables(DATA_TABLES)
            self._version += 1
        return summary

    def add_custom_field(self, kind: str, type: str) -> Dict[str, Any]:  # noqa: A002 - the brief's name
        """Create a ticket/user/organization field of `type`; ~10% of records get a value.

        Returns the new field definition (as `/ticket_fields` etc. serve it). Records given
        a value have a new timestamp (tickets also a new audit), so exports resend them.
        """
        with self._lock:
            definition, moved = self.account.add_custom_field(kind, type)
            if "tickets" in moved:
                self._indexes["tickets"].refile([self.account.tickets[tid - 1] for tid in moved["tickets"]])
                self._indexes["ticket_audits"].append(self.account.audits[len(self.account.audits) - len(moved["audits"]):])
            if "users" in moved:
                self._indexes["users"].refile([self._users_by_id[uid] for uid in moved["users"]])
            if "organizations" in moved:
                self._indexes["organizations"].refile([self._orgs_by_id[oid] for oid in moved["organizations"]])
            self._version += 1
            copied: Dict[str, Any] = json.loads(json.dumps(definition))
        return copied

    def refresh(self) -> None:
        """Re-index after rows were added to `fake.account` or their timestamps moved by
        hand (tests that build edge cases); `mutate()` and `add_custom_field()` do this
        themselves."""
        with self._lock:
            self._build_indexes()
            self._users_by_id = {u["id"]: u for u in self.account.users}
            self._orgs_by_id = {o["id"]: o for o in self.account.organizations}
            self._version += 1

    def ground_truth(self) -> Dict[str, List[Row]]:
        """Per table, the rows a correct replica holds now (see ground_truth.py)."""
        with self._lock:
            return build_ground_truth(self.account)

    def minimum_requests(self, tables: Optional[Iterable[str]] = None) -> Dict[str, int]:
        """Per endpoint template, the fewest requests a full sync of `tables` (None: every
        table the fake serves) needs now."""
        with self._lock:
            return minimum_requests(self.account, tables)

    # ------------------------------------------------------------------ OAuth helpers

    def issue_authorization_code(self, scope: str = "read", redirect_uri: Optional[str] = None) -> str:
        return self.oauth.issue_authorization_code(scope, redirect_uri)

    def oauth_refresh_count(self) -> int:
        return self.oauth.refresh_count

    @property
    def used_refresh_tokens(self) -> Set[str]:
        return set(self.oauth.used_refresh_tokens)

    # ------------------------------------------------------------------ counters

    def request_counts(self) -> Dict[str, int]:
        """Requests received per endpoint template, whatever the answer."""
        with self._stats_lock:
            return dict(self._requests)

    def status_counts(self) -> Dict[str, int]:
        """Answers that were not a clean success: "429 <template>", "503 <template>", ...
        plus "dropped <template>" and "malformed <template>" for injected faults."""
        with self._stats_lock:
            return dict(self._statuses)

    def total_requests(self) -> int:
        with self._stats_lock:
            return sum(self._requests.values())

    def reset_counts(self) -> None:
        with self._stats_lock:
            self._requests.clear()
            self._statuses.clear()

    # ------------------------------------------------------------------ request pipeline

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Tuple[Reply, bool]:
        """Answer one request; returns the reply and whether to cut the connection mid-body."""
        parts = urlsplit(target)
        path = parts.path
        route = path[: -len(".json")] if path.endswith(".json") else path
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        req = Request(method, path, route, _ID_SEGMENT.sub("/{id}", route), dict(pairs), pairs, headers, body)
        with self._stats_lock:
            self._requests[req.template] += 1
        try:
            reply, drop = self._answer(req)
        except Exception as exc:  # a bug in the fake: say so loudly instead of hanging up
            traceback.print_exc()
            reply, drop = json_reply(500, {"error": "FakeZendeskBug", "description": repr(exc)}), False
        with self._stats_lock:
            if reply.status >= 400:
                self._statuses[f"{reply.status} {req.template}"] += 1
            if drop:
                self._statuses[f"dropped {req.template}"] += 1
        return reply, drop

    def _answer(self, req: Request) -> Tuple[Reply, bool]:
        if req.route.startswith("/oauth/"):
            return self._oauth_endpoint(req), False
        if not req.route.startswith(API + "/"):
            return json_reply(404, NOT_FOUND_ENDPOINT), False
        refused = self._authenticate(req)
        if refused is not None:
            refused.headers.update(self._rate_headers(time.monotonic()))
            return refused, False
        throttled, rate_headers = self._forced_retry_after() or self._throttle(req)
        if throttled is not None:
            throttled.headers.update(rate_headers)
            return throttled, False
        reply = self._gate(req) or self._injected_error() or self._route(req)
        reply.headers.update(rate_headers)
        if reply.status == 200 and req.template in self.malformed_json_paths:
            reply.body = reply.body[: len(reply.body) // 2]
            with self._stats_lock:
                self._statuses[f"malformed {req.template}"] += 1
        return reply, self._roll(self.drop_rate)

    def _authenticate(self, req: Request) -> Optional[Reply]:
        """None when the request carries valid credentials, else the refusal Zendesk sends."""
        scheme, _, credentials = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            token = self.oauth.authenticate(credentials.strip())
            if token is None:
                return json_reply(401, BEARER_AUTH_FAILED)
            if "read" not in token.scopes:
                return json_reply(403, MISSING_READ_SCOPE)
            return None
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if user == f"{self.email}/token" and secrets.compare_digest(password.encode(), self.api_token.encode()):
                return None
        return json_reply(401, BASIC_AUTH_FAILED, {"WWW-Authenticate": 'Basic realm="Web Password"'})

    def _roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._fault_lock:
            return self._fault_rng.random() < rate

    def _injected_error(self) -> Optional[Reply]:
        if not self._roll(self.error_rate):
            return None
        with self._fault_lock:
            server_error = self._fault_rng.random() < 0.5
        if server_error:
            return json_reply(500, SERVER_ERROR)
        return text_reply(503, "Service Unavailable", {"Retry-After": "1"})

    def _gate(self, req: Request) -> Optional[Reply]:
        for table, status in self.plan_gated.items():
            if req.template in (gated_templates(table) if table in TABLES_BY_NAME else (table,)):
                if req.template.startswith(API + "/channels/"):
                    # The Talk API answers plain HTTP errors, not Zendesk's JSON envelope.
                    return text_reply(status, HTTPStatus(status).phrase)
                if status == 403:
                    return json_reply(403, PLAN_FORBIDDEN)
                if status == 404:
                    return json_reply(404, NOT_FOUND_ENDPOINT)
                return json_reply(status, {"error": HTTPStatus(status).phrase})
        return None

    # -- rate limits

    def _prune(self, window: Deque[float], now: float) -> None:
        horizon = now - self.rate_window_seconds
        while window and window[0] <= horizon:
            window.popleft()

    def _seconds_until_free(self, window: Deque[float], now: float) -> int:
        return max(1, math.ceil(window[0] + self.rate_window_seconds - now))

    def _rate_headers(self, now: float) -> Dict[str, str]:
        with self._rate_lock:
            self._prune(self._account_window, now)
            limit = self.rate_limit_per_minute or DEFAULT_ACCOUNT_LIMIT
            used = len(self._account_window)
            reset = self._seconds_until_free(self._account_window, now) if used else math.ceil(self.rate_window_seconds)
        remaining = str(max(0, limit - used))
        return {"x-rate-limit": str(limit), "x-rate-limit-remaining": remaining, "ratelimit-limit": str(limit),
                "ratelimit-remaining": remaining, "ratelimit-reset": str(reset)}

    def _retry_after(self, seconds: int) -> str:
        if self.retry_after_format == "multi":
            return f"{seconds}, {max(1, seconds - 1)}"
        return str(seconds)

    def _throttle(self, req: Request) -> Tuple[Optional[Reply], Dict[str, str]]:
        """Sliding windows: account-wide, and the exports' (one per export endpoint, or one
        for all of them). Refused requests don't count."""
        now = time.monotonic()
        throttled: Optional[Reply] = None
        with self._rate_lock:
            account = self._account_window
            self._prune(account, now)
            limit = self.rate_limit_per_minute
            export = None
            if req.template.startswith(EXPORT_PREFIX):
                bucket = req.template if self.export_rate_scope == "per_endpoint" else EXPORT_PREFIX
                export = self._export_windows.setdefault(bucket, deque())
                self._prune(export, now)
            if limit is not None and len(account) >= limit:
                wait = self._retry_after(self._seconds_until_free(account, now))
                throttled = text_reply(429, "Too Many Requests", {"Retry-After": wait})
            elif export is not None and self.export_rate_limit_per_minute is not None \
                    and len(export) >= self.export_rate_limit_per_minute:
                wait = self._retry_after(self._seconds_until_free(export, now))
                throttled = json_reply(429, EXPORT_RATE_LIMITED, {"Retry-After": wait})
            else:
                account.append(now)
                if export is not None:
                    export.append(now)
        return throttled, self._rate_headers(now)

    # -- routing

    def _route(self, req: Request) -> Reply:
        if req.method != "GET":
            return json_reply(404, NOT_FOUND_ENDPOINT)
        try:
            with self._lock:
                table = self._endpoints.get(req.route) or self._endpoints.get(req.template)
                if table is not None:
                    return self._serve(table, req)
                for pattern, handler in self._other_routes:
                    match = pattern.match(req.route)
                    if match:
                        return handler(req, match.groups())
        except Refusal as refusal:
            return refusal.reply
        return json_reply(404, NOT_FOUND_ENDPOINT)

    def _serve(self, table: FakeTable, req: Request) -> Reply:
        """A table's endpoint, paged the way the map says (and broken as the
        `pagination_faults` switch says)."""
        reply = self._serve_table(table, req)
        fault = self.pagination_faults.get(table.name)
        if fault is None or reply.status != 200:
            return reply
        return json_reply(200, self._break_pagination(fault, req, json.loads(reply.body)), reply.headers)

    def _serve_table(self, table: FakeTable, req: Request) -> Reply:
        if table.paging is Paging.CURSOR_EXPORT:
            return self._cursor_export(req, table)
        if table.paging is Paging.TIME_EXPORT:
            return self._time_export(req, table)
        view = self._view(table)
        if table.parent is not None:
            view = self._children(req, table, view)
        if table.time_filtered:
            view = self._time_filtered(req, view)
        if table.query_filter is not None:
            view = _filtered(view, table.query_filter(req.pairs))
        if table.paging is Paging.CURSOR_LIST:
            return self._list(req, table.data_key, view)
        if table.paging is Paging.OFFSET_LIST:
            return self._offset_list(req, table.data_key, view.rows)
        return self._unpaginated(table.data_key, view.rows)

    def _oauth_endpoint(self, req: Request) -> Reply:
        if req.route == "/oauth/tokens" and req.method == "POST":
            content_type = (req.headers.get("Content-Type") or "").lower()
            try:
                if "json" in content_type:
                    parsed = json.loads(req.body.decode("utf-8") or "{}")
                    if not isinstance(parsed, dict):
                        raise ValueError("not an object")
                    params = {k: str(v) for k, v in parsed.items() if v is not None}
                else:
                    params = dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
            except (UnicodeDecodeError, ValueError):
                return json_reply(400, {"error": "invalid_request", "error_description": "The body is neither JSON nor a form."})
            basic = None
            scheme, _, credentials = (req.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "basic":
                try:
                    client_id, _, secret = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
                    basic = (client_id, secret)
                except (binascii.Error, UnicodeDecodeError):
                    return json_reply(401, {"error": "invalid_client"})
            status, payload = self.oauth.token(params, basic)
            if self.oauth_echo_secrets and status != 200:
                sent = [params.get("refresh_token"), params.get("client_secret"), basic[1] if basic else None]
                payload = {**payload, "error_description": f"{payload.get('error_description', '')}"
                           f" (received: {', '.join(str(v) for v in sent if v)})"}
            return json_reply(status, payload, {"Cache-Control": "no-store", "Pragma": "no-cache"})
        if req.route == "/oauth/authorizations/new" and req.method == "GET":
            status, page, target = self.oauth.authorization_page(req.query)
            return Reply(status, page.encode("utf-8"), HTML_TYPE, {"Location": target} if target else {})
        return json_reply(404, NOT_FOUND_ENDPOINT)

    def _link(self, req: Request, drop: Iterable[str], **params: Any) -> str:
        """Absolute URL of the same endpoint, the caller's other parameters kept."""
        removed = set(drop) | set(params)
        query = [(k, v) for k, v in req.pairs if k not in removed] + [(k, str(v)) for k, v in params.items()]
        return f"{self.base_url}{req.path}?{urlencode(query)}"

    def _cutoff(self) -> int:
        return int(time.time()) - EXPORT_WITHHOLD_SECONDS

    def _start_time(self, req: Request) -> int:
        start = _epoch_param(req, "start_time")
        if start is None:
            raise bad_request("InvalidValue", "start_time is required: a Unix epoch time in seconds")
        if start > self._cutoff():
            raise bad_request("InvalidValue", "start_time must be more than one minute in the past")
        return start

    # -- transport faults (TRANSPORT_SWITCHES)

    def _forced_retry_after(self) -> Optional[Tuple[Optional[Reply], Dict[str, str]]]:
        """`retry_after_always`: every API request answers 429 with that Retry-After."""
        if self.retry_after_always is None:
            return None
        reply = text_reply(429, "Too Many Requests", {"Retry-After": str(self.retry_after_always)})
        return reply, self._rate_headers(time.monotonic())

    def _break_pagination(self, fault: str, req: Request, payload: Dict[str, Any]) -> Dict[str, Any]:
        """A page whose pagination does not advance, the way `fault` names."""
        if fault == "same_cursor":  # cursor export: after_cursor is the cursor just sent
            sent = req.query.get("cursor") or payload["before_cursor"]
            payload.update(after_cursor=sent, end_of_stream=False,
                           after_url=self._link(req, ("start_time", "cursor"), cursor=sent))
        elif fault == "no_end_of_stream":  # cursor export: the end is never announced
            payload.pop("end_of_stream", None)
        elif fault == "stuck_time":  # time export: end_time and next_page stay where they were
            start = self._start_time(req)
            payload.update(end_time=start, end_of_stream=False,
                           next_page=self._link(req, ("start_time",), start_time=start))
        elif fault == "same_page":  # list: the next page is the one just served
            meta = payload.get("meta")
            if isinstance(meta, dict):
                meta["has_more"] = True
                meta["after_cursor"] = req.query.get("page[after]") or meta.get("after_cursor")
            else:
                payload["next_page"] = f"{self.base_url}{req.path}?{urlencode(req.pairs)}" if req.pairs \
                    else f"{self.base_url}{req.path}"
        return payload

    # -- exports

    def _cursor_export(self, req: Request, table: FakeTable) -> Reply:
        per_page = self._export_page(req)
        index = self._indexes[table.name]
        serialize = table.serializer(req.query, self.account)
        cursor = req.query.get("cursor")
        if cursor:
            position = decode_export_cursor(cursor)
        else:
            position = (self._start_time(req), 0)
            cursor = encode_export_cursor(position)
        first = index.first_after(position)
        end = index.visible_end(self._cutoff())
        stop = min(end, first + per_page)
        rows = [serialize(row) for row in index.rows[first:stop]]
        after = encode_export_cursor(index.keys[stop - 1] if stop > first else position)
        payload: Dict[str, Any] = {
            table.data_key: rows,
            "after_url": self._link(req, ("start_time", "cursor"), cursor=after),
            "before_url": self._link(req, ("start_time", "cursor"), cursor=cursor),
            "after_cursor": after,
            "before_cursor": cursor,
            "end_of_stream": stop >= end,
        }
        includes = req.query.get("include", "").split(",")
        for key, records in table.sideloads.items():
            if key in includes:
                payload[key] = records(self.account, index.rows[first:stop])
        return json_reply(200, payload)

    def _export_page(self, req: Request) -> int:
        """Rows on this export page: `per_page`, or fewer with `export_page_rows`."""
        per_page = _int_param(req, "per_page", EXPORT_MAX_PAGE, EXPORT_MAX_PAGE, "InvalidValue")
        return min(per_page, self.export_page_rows or per_page)

    def _time_export(self, req: Request, table: FakeTable) -> Reply:
        """Time-based export: the page is widened to finish its last second, and `next_page`
        restarts at that second, so rows of the boundary second come again (Zendesk does this)."""
        per_page = self._export_page(req)
        index = self._indexes[table.name]
        serialize = table.serializer(req.query, self.account)
        start = self._start_time(req)
        first = index.first_from(start)
        visible = index.visible_end(self._cutoff())
        end = min(first + per_page, visible)
        end_time = start
        if end > first:
            end_time = index.keys[end - 1][0]
            end = min(visible, index.first_from(end_time + 1))
        rows = [serialize(row) for row in index.rows[first:end]] if end > first else []
        payload: Dict[str, Any] = {table.data_key: rows,
                                   "next_page": self._link(req, ("start_time",), start_time=end_time),
                                   "count": len(rows)}
        if table.end_of_stream:
            payload["end_of_stream"] = len(rows) < per_page
        payload["end_time"] = end_time
        return json_reply(200, payload)

    # -- lists

    def _view(self, table: FakeTable) -> ListView:
        """A list in its endpoint's order, cached until the account changes."""
        cached = self._list_cache.get(table.name)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        ordered = sorted(table.rows(self.account), key=table.sort_key)
        served = ordered
        if table.parent is None:  # a table listed per parent row is served by `_children`
            serialize = table.serializer({}, self.account)
            served = [serialize(row) for row in ordered]
        view = ListView(",".join(table.order), [table.sort_key(row) for row in ordered], served)
        self._list_cache[table.name] = (self._version, view)
        return view

    def _children(self, req: Request, table: FakeTable, view: ListView) -> ListView:
        """The rows of the parent row the path names (`/schedules/{id}/holidays`), as
        served; 404 for a parent that does not exist (any more)."""
        assert table.parent is not None
        parent, key = table.parent
        match = _ID_SEGMENT.search(req.route)
        parent_id = match.group(0)[1:] if match else ""
        if parent_id not in {str(row["id"]) for row in TABLES_BY_NAME[parent].rows(self.account) if live(row)}:
            raise Refusal(json_reply(404, RECORD_NOT_FOUND))
        serialize = table.serializer(req.query, self.account)
        kept = [(k, serialize(row)) for k, row in zip(view.keys, view.rows) if str(row[key]) == parent_id]
        return ListView(view.order, [k for k, _ in kept], [row for _, row in kept])

    def _time_filtered(self, req: Request, view: ListView) -> ListView:
        """`start_time` / `end_time` (epoch) filter on updated_at (or on created_at, with
        `satisfaction_time_field`): start <= time < end."""
        start, end = _epoch_param(req, "start_time"), _epoch_param(req, "end_time")
        if start is None and end is None:
            return view
        low = iso(start) if start is not None else ""
        high = iso(end) if end is not None else "9999"
        field = self.satisfaction_time_field
        # ISO strings of one format order like the instants they name.
        return _filtered(view, lambda r: low <= r[field] < high)

    def _list(self, req: Request, data_key: str, view: ListView) -> Reply:
        """Cursor pagination with page[size], offset pagination without (Zendesk's fallback)."""
        if "page[before]" in req.query:
            # Zendesk pages backwards too; no client of this fake does, so it is not served.
            raise bad_request("InvalidPaginationParameter", "page[before] is not served by the fake Zendesk")
        if any(k in req.query for k in ("page[size]", "page[after]")):
            return self._cursor_list(req, data_key, view)
        return self._offset_list(req, data_key, view.rows)

    def _cursor_list(self, req: Request, data_key: str, view: ListView) -> Reply:
        size = _int_param(req, "page[size]", LIST_MAX_PAGE, LIST_MAX_PAGE, "InvalidPaginationParameter")
        total = len(view.rows)
        first = 0
        if req.query.get("page[after]"):
            first = bisect.bisect_right(view.keys, decode_list_cursor(view.order, req.query["page[after]"]))
        stop = min(total, first + size)
        rows = view.rows[first:stop]
        after = encode_list_cursor(view.order, view.keys[stop - 1]) if rows else None
        before = encode_list_cursor(view.order, view.keys[first]) if rows else None
        drop = ("page[after]", "page[before]")
        return json_reply(200, {
            data_key: rows,
            "meta": {"has_more": stop < total, "after_cursor": after, "before_cursor": before},
            "links": {
                "prev": self._link(req, drop, **{"page[before]": before}) if rows and first > 0 else None,
                "next": self._link(req, drop, **{"page[after]": after}) if rows and stop < total else None,
            },
        })

    def _offset_list(self, req: Request, data_key: str, rows: Sequence[Row]) -> Reply:
        per_page = min(_int_param(req, "per_page", LIST_MAX_PAGE, 10**9, "InvalidValue"), LIST_MAX_PAGE)
        page = _int_param(req, "page", 1, 10**9, "InvalidValue")
        if page > OFFSET_MAX_PAGE_NUMBER:
            raise Refusal(json_reply(400, {"errors": [{
                "code": "InvalidPaginationDepth",
                "title": "Offset pagination is limited to page 100 (10,000 records: page * per_page)",
                "detail": "Use cursor pagination (page[size] and page[after]) to read further.",
            }]}))
        first = (page - 1) * per_page
        more = first + per_page < len(rows)
        return json_reply(200, {
            data_key: list(rows[first:first + per_page]),
            "next_page": self._link(req, (), page=page + 1) if more else None,
            "previous_page": self._link(req, (), page=page - 1) if page > 1 else None,
            "count": len(rows),
        })

    def _unpaginated(self, data_key: str, rows: List[Row]) -> Reply:
        return json_reply(200, {data_key: rows, "next_page": None, "previous_page": None, "count": len(rows)})

    # -- routes that are no table

    def _ticket_audits(self, req: Request, ids: Tuple[str, ...]) -> Reply:
        """A live ticket's audits (the source's `audits_mode="per_ticket"`); 404 for a
        deleted or unknown ticket."""
        tid = int(ids[0])
        tickets = self.account.tickets
        if not 1 <= tid <= len(tickets) or tickets[tid - 1]["status"] == "deleted":
            raise Refusal(json_reply(404, RECORD_NOT_FOUND))
        audits = self.account.audits_by_ticket.get(tid, [])
        return self._list(req, "audits", ListView("created_at,id", [(a["created_at"], a["id"]) for a in audits], audits))

    def _me(self, req: Request, ids: Tuple[str, ...]) -> Reply:
        return json_reply(200, {"user": self.account.users[0]})
