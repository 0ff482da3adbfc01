"""The source's paginators, fed Zendesk's recorded pages, ask for exactly the next page
Zendesk itself pointed to (tests/fixtures/real/pagination_sequences.json: consecutive
pages recorded with tiny page sizes; records reduced to their keys and timestamps)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Tuple

import pytest
import requests
from dlt.sources.helpers.rest_client.paginators import BasePaginator

from tests.contract.fixture_server import FIXTURES
from zendesk.api.paginators import CursorExportPaginator, TimeExportPaginator, list_paginator
from zendesk.tables.registry import TABLES_BY_NAME

SEQUENCES: Dict[str, List[Dict[str, Any]]] = json.loads(
    (FIXTURES / "pagination_sequences.json").read_text(encoding="utf-8")
)

#: Sequence -> (its data key, a paginator as the source builds it, the paging parameter).
PAGINATORS: Dict[str, Tuple[str, Callable[[], BasePaginator], str]] = {
    "incremental_tickets_time_per_page_1": ("tickets", lambda: TimeExportPaginator(0), "start_time"),
    "incremental_users_time_per_page_1": ("users", lambda: TimeExportPaginator(0), "start_time"),
    "incremental_tickets_cursor_per_page_1": ("tickets", lambda: CursorExportPaginator(0, None), "cursor"),
    "incremental_users_cursor_per_page_1": ("users", lambda: CursorExportPaginator(0, None), "cursor"),
    "tags_page_size_1": ("tags", lambda: list_paginator(TABLES_BY_NAME["tags"].endpoint), "page[after]"),
    "group_memberships_page_size_1": (
        "group_memberships",
        lambda: list_paginator(TABLES_BY_NAME["group_memberships"].endpoint),
        "page[after]",
    ),
}


def _response(body: Dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


def test_every_sequence_is_checked() -> None:
    assert set(SEQUENCES) == set(PAGINATORS)


@pytest.mark.parametrize("name", sorted(PAGINATORS))
def test_paginator_follows_zendesks_recorded_pages(name: str) -> None:
    key, make, param = PAGINATORS[name]
    pages = SEQUENCES[name]
    assert len(pages) >= 3
    paginator = make()
    url = "https://z3n-example.zendesk.com" + pages[0]["path"]
    request = requests.Request("GET", url, params=dict(pages[0]["query"]))
    paginator.init_request(request)
    for page, following in zip(pages, pages[1:]):
        paginator.update_state(_response(page["response"]), page["response"][key])
        assert paginator.has_next_page, (name, page["query"])
        paginator.update_request(request)
        assert str(request.params[param]) == following["query"][param], (name, page["query"])
