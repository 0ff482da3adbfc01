"""Zendesk's pagination styles as dlt paginators, one class per style.

The exports' `after_url` / `next_page` links are not followed blindly: the next request
is rebuilt from the cursor or end_time, so our parameters (page size, side-loads) are
kept and the request never leaves the configured host.

No paginator trusts the server to end: an export whose cursor (or `end_time`) does not
move, a cursor export that keeps answering empty pages without `end_of_stream`, a list
that hands back the page it was asked for as the next one, each would loop for ever
(connectors have shipped each of these against the real API). After `STALL_PAGES`
such pages in a row the paginator raises `PaginationStalled`, which names what Zendesk
returned; the client adds the table. Raised inside the extract, it makes dlt roll the
run's state back, so nothing past the last good page is committed and the next run
starts from the cursor the last completed run saved.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    SinglePagePaginator,
)
from requests import Request, Response

from ..errors import ZendeskApiError
from ..tables.registry import Endpoint, Pagination

#: Pages in a row that do not advance before an export or list is given up.
STALL_PAGES = 3


class PaginationStalled(ZendeskApiError):
    """Zendesk's answers stopped moving forward: the same cursor or page again and again."""


class _StallGuard:
    """Counts pages in a row that did not advance; raises at `STALL_PAGES`."""

    def __init__(self) -> None:
        self.in_a_row = 0

    def advanced(self, moved: bool, what: str) -> None:
        self.in_a_row = 0 if moved else self.in_a_row + 1
        if self.in_a_row >= STALL_PAGES:
            raise PaginationStalled(
                f"Zendesk answered {self.in_a_row} pages in a row that did not advance ({what});"
                " reading stopped, nothing past the last committed page is kept, and the next run"
                " resumes there. Rerun later; if it persists, report this message to Zendesk support."
            )


class CursorExportPaginator(BasePaginator):
    """Cursor-based incremental exports (tickets, users).

    The first request sends `start_time`; every later one only `cursor`. The cursor of
    the last page (`end_of_stream: true`) is kept in `after_cursor`: it resumes the next
    run exactly where this one stopped, with no duplicates and no gap.
    """

    def __init__(self, start_time: Optional[int], cursor: Optional[str]) -> None:
        super().__init__()
        self.start_time = start_time
        self.after_cursor = cursor
        self.end_of_stream = False
        self._guard = _StallGuard()
        self._empty = _StallGuard()

    def init_request(self, request: Request) -> None:
        if self.after_cursor:
            request.params["cursor"] = self.after_cursor
            request.params.pop("start_time", None)
        else:
            request.params["start_time"] = self.start_time or 0

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        payload = response.json()
        cursor = payload.get("after_cursor")
        sent = self.after_cursor
        if cursor:
            self.after_cursor = cursor
        self.end_of_stream = bool(payload.get("end_of_stream")) or not cursor
        self._has_next_page = not self.end_of_stream
        if self._has_next_page:
            marker = "end_of_stream false" if "end_of_stream" in payload else "no end_of_stream"
            self._guard.advanced(cursor != sent, f"after_cursor {str(cursor)[:40]!r} repeated, {marker}")
            self._empty.advanced(bool(data), f"empty pages with {marker}")

    def update_request(self, request: Request) -> None:
        request.params.pop("start_time", None)
        request.params["cursor"] = self.after_cursor


class SideloadingCursorExportPaginator(CursorExportPaginator):
    """The cursor export of an endpoint that side-loads records (`include=identities`):
    pages the same, and keeps each page's side-loaded records (`sideloaded`), which the
    client's pages (the records under the endpoint's data key) do not carry."""

    def __init__(self, start_time: Optional[int], cursor: Optional[str], keys: List[str]) -> None:
        super().__init__(start_time, cursor)
        self.keys = keys
        self.sideloaded: Dict[str, List[Any]] = {}

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        super().update_state(response, data)
        payload = response.json()
        self.sideloaded = {key: payload.get(key) or [] for key in self.keys}


class TimeExportPaginator(BasePaginator):
    """Time-based incremental exports (organizations, ticket events, metric events).

    Each page ends at `end_time`; the next starts there, so rows of that second come
    twice (callers drop them by id). Zendesk widens a page to finish its last second; when
    a whole page shares one second, `end_time` equals the request's `start_time` and
    following `next_page` would loop forever, so the next request starts one second later.

    The export ends only when Zendesk says so. Organizations and ticket events send
    `end_of_stream`. `/incremental/ticket_metric_events` documents only `count`,
    `end_time` and `next_page`, and nothing promises full pages, so a short page is no
    end: that export ends on a page with no rows. The other documented options cost more:
    its cursor mode (`page[size]`, `meta.has_more`) gives at most 100 rows a page, ten
    times the requests of 1000-row pages against the 10-a-minute export limit, and
    `end_time` says nothing about the end (it is the last row's time, however old). The
    empty page costs one request at the end of each run, plus one when the last page
    ends on a second that the next request must finish.
    """

    def __init__(self, start_time: int) -> None:
        super().__init__()
        self.start_time = start_time
        self.end_of_stream = False
        self._guard = _StallGuard()

    def init_request(self, request: Request) -> None:
        request.params["start_time"] = self.start_time

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        payload = response.json()
        if "end_of_stream" in payload:
            self.end_of_stream = bool(payload["end_of_stream"])
        else:
            self.end_of_stream = not payload.get("count", len(data or ()))
        end_time = payload.get("end_time")
        if end_time is None:
            self.end_of_stream = True
        elif int(end_time) <= self.start_time:
            # One page of a single second is expected now and then; several in a row
            # mean end_time is not moving.
            if not self.end_of_stream:
                self._guard.advanced(False, f"end_time {end_time} did not move past start_time {self.start_time}")
            self.start_time += 1
        else:
            self._guard.advanced(True, "")
            self.start_time = int(end_time)
        self._has_next_page = not self.end_of_stream

    def update_request(self, request: Request) -> None:
        request.params["start_time"] = self.start_time


class CursorListPaginator(JSONResponseCursorPaginator):
    """Cursor lists (`meta.has_more`, `meta.after_cursor`), refusing a cursor that repeats."""

    def __init__(self) -> None:
        super().__init__(cursor_path="meta.after_cursor", cursor_param="page[after]", has_more_path="meta.has_more")
        self._guard = _StallGuard()

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        sent = self._next_reference
        super().update_state(response, data)
        if self._has_next_page:
            self._guard.advanced(
                self._next_reference != sent,
                f"has_more true with the same after_cursor {str(self._next_reference)[:40]!r}",
            )


class NextPageLinkPaginator(JSONLinkPaginator):
    """Offset lists (`next_page`), refusing a `next_page` that is the page just read."""

    def __init__(self) -> None:
        super().__init__(next_url_path="next_page")
        self._guard = _StallGuard()

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        super().update_state(response, data)
        if self._has_next_page:
            current = response.request.url if response.request is not None else response.url
            self._guard.advanced(self._next_reference != current, "next_page is the page just read")


def list_paginator(endpoint: Endpoint) -> BasePaginator:
    """The paginator for a (non-export) list endpoint."""
    if endpoint.pagination is Pagination.CURSOR_LIST:
        return CursorListPaginator()
    if endpoint.pagination is Pagination.OFFSET_LIST:
        return NextPageLinkPaginator()
    if endpoint.pagination is Pagination.SINGLE_PAGE:
        return SinglePagePaginator()
    raise ValueError(f"{endpoint.path} is an export; use an export paginator")


def list_params(endpoint: Endpoint) -> Dict[str, Any]:
    """First-page parameters: always the largest page the endpoint allows."""
    if endpoint.pagination is Pagination.CURSOR_LIST:
        return {"page[size]": endpoint.page_size, **endpoint.params}
    if endpoint.pagination is Pagination.OFFSET_LIST:
        return {"per_page": endpoint.page_size, **endpoint.params}
    return dict(endpoint.params)
