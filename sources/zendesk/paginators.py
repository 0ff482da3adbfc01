"""Zendesk's pagination styles as dlt paginators, one class per style.

The exports' `after_url` / `next_page` links are not followed blindly: the next request
is rebuilt from the cursor or end_time, so our parameters (page size, side-loads) are
kept and the request never leaves the configured host.
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

from .settings import Endpoint, Pagination


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

    def init_request(self, request: Request) -> None:
        if self.after_cursor:
            request.params["cursor"] = self.after_cursor
            request.params.pop("start_time", None)
        else:
            request.params["start_time"] = self.start_time or 0

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        payload = response.json()
        cursor = payload.get("after_cursor")
        if cursor:
            self.after_cursor = cursor
        self.end_of_stream = bool(payload.get("end_of_stream")) or not cursor
        self._has_next_page = not self.end_of_stream

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
            self.start_time += 1
        else:
            self.start_time = int(end_time)
        self._has_next_page = not self.end_of_stream

    def update_request(self, request: Request) -> None:
        request.params["start_time"] = self.start_time


def list_paginator(endpoint: Endpoint) -> BasePaginator:
    """The paginator for a (non-export) list endpoint."""
    if endpoint.pagination is Pagination.CURSOR_LIST:
        return JSONResponseCursorPaginator(
            cursor_path="meta.after_cursor",
            cursor_param="page[after]",
            has_more_path="meta.has_more",
        )
    if endpoint.pagination is Pagination.OFFSET_LIST:
        return JSONLinkPaginator(next_url_path="next_page")
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
