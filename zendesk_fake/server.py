"""The fake Zendesk Support API: HTTP server, routing, pagination styles and fault switches.

`FakeZendesk` serves a generated account (see `generator.py`) on 127.0.0.1 with the
endpoints, pagination styles, error bodies and quirks a Zendesk replication connector
meets (see /work/shared/zendesk-api.md), and can be told to misbehave: plan-gated
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

from .generator import Account, Row, generate_account, iso, iso_to_epoch, paused_gc
from .ground_truth import build_ground_truth
from .oauth import AccessToken, OAuthServer

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
API = "/api/v2"
EXPORT_PREFIX = API + "/incremental/"
EXPORT_MAX_PAGE = 1000
LIST_MAX_PAGE = 100
#: Offset pagination stops at page 100 (10,000 records) since 2023.
OFFSET_MAX_PAGE_NUMBER = 100
#: Exports withhold rows changed in the last minute and refuse a start_time that recent.
EXPORT_WITHHOLD_SECONDS = 60
#: What `x-rate-limit` reports when no limit is configured (Enterprise plan).
DEFAULT_ACCOUNT_LIMIT = 700

#: Table name -> the endpoint templates that serve it, for `plan_gated`.
TABLE_ENDPOINTS: Dict[str, Tuple[str, ...]] = {
    "tickets": (API + "/incremental/tickets/cursor", API + "/incremental/tickets"),
    "ticket_metrics": (API + "/ticket_metrics", API + "/tickets/{id}/metrics"),
    "ticket_audits": (API + "/tickets/{id}/audits", API + "/incremental/ticket_events"),
    "ticket_comments": (API + "/tickets/{id}/comments", API + "/incremental/ticket_events"),
    "ticket_metric_events": (API + "/incremental/ticket_metric_events",),
    "users": (API + "/incremental/users/cursor", API + "/incremental/users"),
    "organizations": (API + "/incremental/organizations",),
    "groups": (API + "/groups",),
    "group_memberships": (API + "/group_memberships",),
    "macros": (API + "/macros",),
    "ticket_fields": (API + "/ticket_fields",),
    "ticket_forms": (API + "/ticket_forms",),
    "satisfaction_ratings": (API + "/satisfaction_ratings",),
    "sla_policies": (API + "/slas/policies",),
    "tags": (API + "/tags",),
    "talk_phone_numbers": (API + "/channels/voice/phone_numbers",),
}

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

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
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
        self._routes: List[Tuple["re.Pattern[str]", Callable[[Request, Optional[AccessToken], Tuple[str, ...]], Reply]]] = [
            (re.compile(f"^{API}{pattern}$"), handler) for pattern, handler in (
                (r"/incremental/tickets/cursor", self._tickets_cursor_export),
                (r"/incremental/users/cursor", self._users_cursor_export),
                (r"/incremental/tickets", self._tickets_time_export),
                (r"/incremental/users", self._users_time_export),
                (r"/incremental/organizations", self._organizations_export),
                (r"/incremental/ticket_events", self._ticket_events_export),
                (r"/incremental/ticket_metric_events", self._ticket_metric_events_export),
                (r"/groups", self._groups),
                (r"/group_memberships", self._group_memberships),
                (r"/macros", self._macros),
                (r"/ticket_fields", self._ticket_fields),
                (r"/user_fields", self._user_fields),
                (r"/organization_fields", self._organization_fields),
                (r"/satisfaction_ratings", self._satisfaction_ratings),
                (r"/tags", self._tags),
                (r"/deleted_users", self._deleted_users),
                (r"/ticket_metrics", self._ticket_metrics),
                (r"/tickets/(\d+)/audits", self._ticket_audits),
                (r"/tickets/(\d+)/comments", self._ticket_comments),
                (r"/tickets/(\d+)/metrics", self._ticket_metric),
                (r"/ticket_forms", self._ticket_forms),
                (r"/slas/policies", self._sla_policies),
                (r"/channels/voice/phone_numbers", self._phone_numbers),
                (r"/users/me", self._me),
                (r"/oauth/tokens/current", self._current_token),
            )
        ]

    def _build_indexes(self) -> None:
        account = self.account
        self._ticket_index = ExportIndex(account.tickets, lambda t: (t["generated_timestamp"], t["id"]))
        self._user_index = ExportIndex(account.users, lambda u: (iso_to_epoch(u["updated_at"]), u["id"]))
        self._org_index = ExportIndex(account.organizations, lambda o: (iso_to_epoch(o["updated_at"]), o["id"]))
        self._event_index = ExportIndex(account.audits, lambda a: (iso_to_epoch(a["created_at"]), a["id"]))
        self._metric_event_index = ExportIndex(account.ticket_metric_events, lambda e: (iso_to_epoch(e["time"]), e["id"]))

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
        for name, value in switches.items():
            if name == "plan_gated":
                gated = dict(value or {})
                for table, status in gated.items():
                    if table not in TABLE_ENDPOINTS and not str(table).startswith(API + "/"):
                        raise ValueError(f"unknown table {table!r}; use one of {sorted(TABLE_ENDPOINTS)} or an endpoint template")
                    if not isinstance(status, int) or not 400 <= status < 600:
                        raise ValueError(f"plan_gated status for {table!r} must be an HTTP error status")
                self.plan_gated = gated
            elif name in ("rate_limit_per_minute", "export_rate_limit_per_minute"):
                if value is not None and (not isinstance(value, int) or value < 1):
                    raise ValueError(f"{name} must be None or a positive int")
                setattr(self, name, value)
            elif name == "rate_window_seconds":
                if not value > 0:
                    raise ValueError("rate_window_seconds must be > 0")
                self.rate_window_seconds = float(value)
            elif name == "export_rate_scope":
                if value not in ("per_endpoint", "shared"):
                    raise ValueError("export_rate_scope must be 'per_endpoint' or 'shared'")
                self.export_rate_scope = value
            elif name == "retry_after_format":
                if value not in ("int", "multi"):
                    raise ValueError("retry_after_format must be 'int' or 'multi'")
                self.retry_after_format = value
            elif name in ("error_rate", "drop_rate"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{name} must be within [0, 1]")
                setattr(self, name, float(value))
            elif name == "malformed_json_paths":
                self.malformed_json_paths = tuple(endpoint_template(p) for p in value)
            elif name == "satisfaction_time_field":
                if value not in ("updated_at", "created_at"):
                    raise ValueError("satisfaction_time_field must be 'updated_at' or 'created_at'")
                self.satisfaction_time_field = value
            elif name == "export_page_rows":
                if value is not None and (not isinstance(value, int) or value < 1):
                    raise ValueError("export_page_rows must be None or a positive int")
                self.export_page_rows = value
            elif name == "oauth_access_token_ttl":
                if value is not None and not value > 0:
                    raise ValueError("oauth_access_token_ttl must be None or > 0")
                self.oauth_access_token_ttl = value
            elif name == "oauth_redirect_urls":
                if isinstance(value, str) or not all(isinstance(url, str) and "://" in url for url in value):
                    raise ValueError("oauth_redirect_urls must be a list of absolute URLs")
                self.oauth.redirect_urls = tuple(value)
            else:
                raise TypeError(f"unknown switch {name!r}")

    @property
    def oauth_access_token_ttl(self) -> Optional[float]:
        return self.oauth.access_token_ttl

    @oauth_access_token_ttl.setter
    def oauth_access_token_ttl(self, value: Optional[float]) -> None:
        self.oauth.access_token_ttl = value

    # ------------------------------------------------------------------ data changes

    def mutate(self, seed: int = 2, fraction: float = 0.01) -> Dict[str, Any]:
        """Everyday account activity stamped with one new second; returns the ids changed per kind."""
        with self._lock:
            summary = self.account.mutate(seed, fraction)
            tickets = self.account.tickets
            moved = summary["tickets_updated"] + summary["tickets_deleted"] + summary["tickets_created"]
            self._ticket_index.refile([tickets[tid - 1] for tid in moved])
            self._user_index.refile([self._users_by_id[uid] for uid in summary["users_updated"] + summary["users_deleted"]])
            self._org_index.refile([self._orgs_by_id[oid] for oid in summary["organizations_updated"]])
            self._event_index.append(self.account.audits[len(self.account.audits) - len(summary["audits_created"]):])
            new_events = len(summary["ticket_metric_events_created"])
            self._metric_event_index.append(self.account.ticket_metric_events[len(self.account.ticket_metric_events) - new_events:])
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
                self._ticket_index.refile([self.account.tickets[tid - 1] for tid in moved["tickets"]])
                self._event_index.append(self.account.audits[len(self.account.audits) - len(moved["audits"]):])
            if "users" in moved:
                self._user_index.refile([self._users_by_id[uid] for uid in moved["users"]])
            if "organizations" in moved:
                self._org_index.refile([self._orgs_by_id[oid] for oid in moved["organizations"]])
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
        refused, token = self._authenticate(req)
        if refused is not None:
            refused.headers.update(self._rate_headers(time.monotonic()))
            return refused, False
        throttled, rate_headers = self._throttle(req)
        if throttled is not None:
            throttled.headers.update(rate_headers)
            return throttled, False
        reply = self._gate(req) or self._injected_error() or self._route(req, token)
        reply.headers.update(rate_headers)
        if reply.status == 200 and req.template in self.malformed_json_paths:
            reply.body = reply.body[: len(reply.body) // 2]
            with self._stats_lock:
                self._statuses[f"malformed {req.template}"] += 1
        return reply, self._roll(self.drop_rate)

    def _authenticate(self, req: Request) -> Tuple[Optional[Reply], Optional[AccessToken]]:
        scheme, _, credentials = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            token = self.oauth.authenticate(credentials.strip())
            if token is None:
                return json_reply(401, BEARER_AUTH_FAILED), None
            if "read" not in token.scopes:
                return json_reply(403, MISSING_READ_SCOPE), None
            return None, token
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            if user == f"{self.email}/token" and secrets.compare_digest(password.encode(), self.api_token.encode()):
                return None, None
        return json_reply(401, BASIC_AUTH_FAILED, {"WWW-Authenticate": 'Basic realm="Web Password"'}), None

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
            if req.template in TABLE_ENDPOINTS.get(table, (table,)):
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

    def _route(self, req: Request, token: Optional[AccessToken]) -> Reply:
        if req.method != "GET":
            return json_reply(404, NOT_FOUND_ENDPOINT)
        for pattern, handler in self._routes:
            match = pattern.match(req.route)
            if match:
                try:
                    with self._lock:
                        return handler(req, token, match.groups())
                except Refusal as refusal:
                    return refusal.reply
        return json_reply(404, NOT_FOUND_ENDPOINT)

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

    # -- exports

    def _ticket_out(self, req: Request) -> Callable[[Row], Row]:
        with_metrics = "metric_sets" in req.query.get("include", "").split(",")
        metric_sets = self.account.metric_sets

        def serialize(ticket: Row) -> Row:
            row = dict(ticket)
            row["fields"] = ticket["custom_fields"]
            if with_metrics:
                metric_set = metric_sets.get(ticket["id"])
                if metric_set is not None:
                    row["metric_set"] = metric_set
            return row

        return serialize

    def _cursor_export(self, req: Request, key: str, index: ExportIndex, serialize: Callable[[Row], Row],
                       skip: Optional[Callable[[Row], bool]] = None) -> Reply:
        per_page = self._export_page(req)
        cursor = req.query.get("cursor")
        if cursor:
            position = decode_export_cursor(cursor)
        else:
            position = (self._start_time(req), 0)
            cursor = encode_export_cursor(position)
        i = index.first_after(position)
        end = index.visible_end(self._cutoff())
        rows: List[Row] = []
        last = position
        while i < end and len(rows) < per_page:
            row = index.rows[i]
            last = index.keys[i]
            i += 1
            if skip is None or not skip(row):
                rows.append(serialize(row))
        after = encode_export_cursor(last)
        return json_reply(200, {
            key: rows,
            "after_url": self._link(req, ("start_time", "cursor"), cursor=after),
            "before_url": self._link(req, ("start_time", "cursor"), cursor=cursor),
            "after_cursor": after,
            "before_cursor": cursor,
            "end_of_stream": i >= end,
        })

    def _export_page(self, req: Request) -> int:
        """Rows on this export page: `per_page`, or fewer with `export_page_rows`."""
        per_page = _int_param(req, "per_page", EXPORT_MAX_PAGE, EXPORT_MAX_PAGE, "InvalidValue")
        return min(per_page, self.export_page_rows or per_page)

    def _tickets_cursor_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        def deleted(ticket: Row) -> bool:
            return bool(ticket["status"] == "deleted")

        skip = deleted if req.query.get("exclude_deleted") == "true" else None
        return self._cursor_export(req, "tickets", self._ticket_index, self._ticket_out(req), skip)

    def _users_cursor_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._cursor_export(req, "users", self._user_index, lambda u: u)

    def _time_export(self, req: Request, key: str, index: ExportIndex, serialize: Callable[[Row], Row],
                     with_end_of_stream: bool = True) -> Reply:
        """Time-based export: the page is widened to finish its last second, and `next_page`
        restarts at that second, so rows of the boundary second come again (Zendesk does this)."""
        per_page = self._export_page(req)
        start = self._start_time(req)
        first = index.first_from(start)
        visible = index.visible_end(self._cutoff())
        end = min(first + per_page, visible)
        end_time = start
        if end > first:
            end_time = index.keys[end - 1][0]
            end = min(visible, index.first_from(end_time + 1))
        rows = [serialize(row) for row in index.rows[first:end]] if end > first else []
        payload: Dict[str, Any] = {key: rows, "next_page": self._link(req, ("start_time",), start_time=end_time),
                                   "count": len(rows)}
        if with_end_of_stream:
            payload["end_of_stream"] = len(rows) < per_page
        payload["end_time"] = end_time
        return json_reply(200, payload)

    def _tickets_time_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._time_export(req, "tickets", self._ticket_index, self._ticket_out(req))

    def _users_time_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._time_export(req, "users", self._user_index, lambda u: u)

    def _organizations_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._time_export(req, "organizations", self._org_index, lambda o: o)

    def _ticket_events_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        with_comments = "comment_events" in req.query.get("include", "").split(",")

        def serialize(audit: Row) -> Row:
            children: List[Row] = []
            comment: Optional[Row] = None
            for event in audit["events"]:
                if event["type"] == "Comment":
                    comment = event
                    if not with_comments:
                        continue
                children.append({**event, "event_type": event["type"]})
            return {
                "id": audit["id"],
                "ticket_id": audit["ticket_id"],
                "timestamp": iso_to_epoch(audit["created_at"]),
                "created_at": audit["created_at"],
                "updater_id": audit["author_id"],
                "via": audit["via"]["channel"],
                "via_reference_id": None,
                "system": audit["metadata"]["system"],
                "event_type": "Audit",
                "comment_present": comment is not None,
                "comment_public": bool(comment and comment["public"]),
                "child_events": children,
            }

        return self._time_export(req, "ticket_events", self._event_index, serialize)

    def _ticket_metric_events_export(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        if "page[size]" in req.query or "page[after]" in req.query:
            start = self._start_time(req)
            index = self._metric_event_index
            first = index.first_from(start)
            visible = index.visible_end(self._cutoff())
            view = ListView("time,id", index.keys[first:visible], index.rows[first:visible])
            return self._cursor_list(req, "ticket_metric_events", view)
        return self._time_export(req, "ticket_metric_events", self._metric_event_index, lambda e: e,
                                 with_end_of_stream=False)

    # -- lists

    def _view(self, name: str, order: str, rows: Callable[[], Iterable[Row]], key: Callable[[Row], Key]) -> ListView:
        """A list in its endpoint's order, cached until the account changes."""
        cached = self._list_cache.get(name)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        ordered = sorted(rows(), key=key)
        view = ListView(order, [key(row) for row in ordered], ordered)
        self._list_cache[name] = (self._version, view)
        return view

    def _list(self, req: Request, data_key: str, view: ListView) -> Reply:
        """Cursor pagination with page[size], offset pagination without (Zendesk's fallback)."""
        if any(k in req.query for k in ("page[size]", "page[after]", "page[before]")):
            return self._cursor_list(req, data_key, view)
        return self._offset_list(req, data_key, view.rows)

    def _cursor_list(self, req: Request, data_key: str, view: ListView) -> Reply:
        size = _int_param(req, "page[size]", LIST_MAX_PAGE, LIST_MAX_PAGE, "InvalidPaginationParameter")
        total = len(view.rows)
        if req.query.get("page[before]"):
            stop = bisect.bisect_left(view.keys, decode_list_cursor(view.order, req.query["page[before]"]))
            first = max(0, stop - size)
            has_more = first > 0
        else:
            first = 0
            if req.query.get("page[after]"):
                first = bisect.bisect_right(view.keys, decode_list_cursor(view.order, req.query["page[after]"]))
            stop = min(total, first + size)
            has_more = stop < total
        rows = view.rows[first:stop]
        after = encode_list_cursor(view.order, view.keys[stop - 1]) if rows else None
        before = encode_list_cursor(view.order, view.keys[first]) if rows else None
        drop = ("page[after]", "page[before]")
        return json_reply(200, {
            data_key: rows,
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
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

    def _groups(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        view = self._view("groups", "name,id", lambda: self.account.groups, lambda g: (g["name"], g["id"]))
        if req.query.get("exclude_deleted") == "true":
            view = _filtered(view, lambda g: not g["deleted"])
        return self._list(req, "groups", view)

    def _group_memberships(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "group_memberships", self._view("group_memberships", "id", lambda: self.account.group_memberships, lambda m: (m["id"],)))

    def _macros(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "macros", self._view("macros", "title,id", lambda: self.account.macros, lambda m: (m["title"], m["id"])))

    def _ticket_fields(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "ticket_fields", self._view("ticket_fields", "id", lambda: self.account.ticket_fields, lambda f: (f["id"],)))

    def _user_fields(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "user_fields", self._view("user_fields", "position,id", lambda: self.account.user_fields, lambda f: (f["position"], f["id"])))

    def _organization_fields(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "organization_fields", self._view("organization_fields", "position,id", lambda: self.account.organization_fields, lambda f: (f["position"], f["id"])))

    def _satisfaction_ratings(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        """`start_time` / `end_time` (epoch) filter on updated_at (or on created_at, with
        `satisfaction_time_field`): start <= time < end."""
        view = self._view("satisfaction_ratings", "id", lambda: self.account.satisfaction_ratings, lambda r: (r["id"],))
        start, end = _epoch_param(req, "start_time"), _epoch_param(req, "end_time")
        if start is not None or end is not None:
            low = iso(start) if start is not None else ""
            high = iso(end) if end is not None else "9999"
            field = self.satisfaction_time_field
            # ISO strings of one format order like the instants they name.
            view = _filtered(view, lambda r: low <= r[field] < high)
        return self._list(req, "satisfaction_ratings", view)

    def _tags(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "tags", self._view("tags", "-score,name", lambda: self.account.tags, lambda t: (-t["count"], t["name"])))

    def _deleted_users(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        def deleted() -> List[Row]:
            fields = ("id", "name", "email", "phone", "shared_phone_number", "photo", "locale", "locale_id",
                      "time_zone", "organization_id", "role", "active", "created_at", "updated_at")
            return [{**{f: u[f] for f in fields}, "url": f"{self.account.api}/deleted_users/{u['id']}.json"}
                    for u in self.account.users if not u["active"]]

        return self._list(req, "deleted_users", self._view("deleted_users", "id", deleted, lambda u: (u["id"],)))

    def _ticket_metrics(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._list(req, "ticket_metrics", self._view("ticket_metrics", "id", lambda: self.account.metric_sets.values(), lambda m: (m["id"],)))

    def _live_ticket(self, ticket_id: str) -> Row:
        tid = int(ticket_id)
        tickets = self.account.tickets
        if not 1 <= tid <= len(tickets) or tickets[tid - 1]["status"] == "deleted":
            raise Refusal(json_reply(404, RECORD_NOT_FOUND))
        return tickets[tid - 1]

    def _ticket_audits(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        ticket = self._live_ticket(ids[0])
        audits = self.account.audits_by_ticket.get(ticket["id"], [])
        return self._list(req, "audits", ListView("created_at,id", [(a["created_at"], a["id"]) for a in audits], audits))

    def _ticket_comments(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        ticket = self._live_ticket(ids[0])
        comments = [e for a in self.account.audits_by_ticket.get(ticket["id"], []) for e in a["events"] if e["type"] == "Comment"]
        return self._list(req, "comments", ListView("created_at,id", [(c["created_at"], c["id"]) for c in comments], comments))

    def _ticket_metric(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        ticket = self._live_ticket(ids[0])
        return json_reply(200, {"ticket_metric": self.account.metric_sets[ticket["id"]]})

    def _unpaginated(self, data_key: str, rows: List[Row]) -> Reply:
        return json_reply(200, {data_key: rows, "next_page": None, "previous_page": None, "count": len(rows)})

    def _ticket_forms(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._unpaginated("ticket_forms", sorted(self.account.ticket_forms, key=lambda f: (f["position"], f["id"])))

    def _sla_policies(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._unpaginated("sla_policies", sorted(self.account.sla_policies, key=lambda p: (p["position"], p["id"])))

    def _phone_numbers(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return self._offset_list(req, "phone_numbers", self.account.phone_numbers)

    def _me(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        return json_reply(200, {"user": self.account.users[0]})

    def _current_token(self, req: Request, token: Optional[AccessToken], ids: Tuple[str, ...]) -> Reply:
        if token is None:
            return json_reply(404, RECORD_NOT_FOUND)
        return json_reply(200, self.oauth.describe(token, self.account.api, self.account.users[0]["id"]))
