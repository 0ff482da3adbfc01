"""The fake Zendesk answers in Zendesk's shapes: the same envelope keys and pagination
fields as the recorded payloads, records with the same fields, each of the same JSON
type. A fake that drifts from the real API fails here, not in production."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import pytest
import requests

from tests.contract.fixture_server import ENDPOINT_FIXTURES, ENDPOINTS, load
from zendesk.api.paginators import list_params
from zendesk.tables.registry import TABLES, TABLES_BY_NAME, ChangeDetection, Endpoint, Pagination, per_ticket_only
from zendesk_fake import FakeZendesk

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

EXPORTS = (Pagination.CURSOR_EXPORT, Pagination.TIME_EXPORT)


def first_request(endpoint: Endpoint) -> Dict[str, Any]:
    """The query the source sends on an endpoint's first request (from the start of time)."""
    if endpoint.pagination in EXPORTS:
        return {"start_time": 0, "per_page": endpoint.page_size, **endpoint.params}
    if endpoint in FILTERED_BY_START_TIME:
        return {**list_params(endpoint), "start_time": 0}
    return list_params(endpoint)


FILTERED_BY_START_TIME = [s.endpoint for s in TABLES if s.change_detection is ChangeDetection.SERVER_START_TIME]

#: Endpoint -> (data key, the query the source sends on its first request), from the registry.
REQUESTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    path: (endpoint.data_key, first_request(endpoint)) for path, endpoint in ENDPOINTS.items()
}

#: Fields the fake sends that Zendesk's reference documents but none of the recorded or
#: documented example records carries (the examples are older or minimal), per endpoint.
DOCUMENTED_BEYOND_EXAMPLES: Dict[str, Set[str]] = {
    # The example is a reply without its ticket; "update" events carry `updates` (state,
    # subject) instead of a message; the JSON format lists all three.
    "/tickets/side_conversations/events": {"updates", "ticket_id", "url"},
    # Talk's phone number object today; the example predates brands, IVR and SMS settings.
    "/channels/voice/phone_numbers": {
        "brand_id", "call_recording_consent", "categorised_greetings", "categorised_greetings_with_sub_settings",
        "external", "failover_number", "ivr_id", "line_type", "outbound_enabled", "priority", "schedule_id",
        "sms_enabled", "token", "voice_enabled",
    },
    # Set when an organization is deleted; null (so absent from the example) otherwise.
    "/incremental/organizations": {"deleted_at"},
    # Options of dropdown fields and the system flag; the examples are text fields.
    "/organization_fields": {"custom_field_options", "system", "tag"},
    "/user_fields": {"custom_field_options", "system", "tag"},
    # Lookup-relationship and system-field properties; the examples are other field types.
    "/ticket_fields": {"relationship_filter", "relationship_target_type", "sub_type_id", "system_field_options"},
    # Conditional-field settings of a form; the example form has none.
    "/ticket_forms": {"agent_conditions", "end_user_conditions"},
}


def json_type(value: Any) -> Optional[str]:
    """The JSON type of a value (ISO times apart from other strings); None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "iso-time" if _ISO.match(value) else "string"
    if isinstance(value, list):
        return "array"
    return "object"


def field_types(records: Iterable[Dict[str, Any]]) -> Dict[str, Set[str]]:
    """Field -> the JSON types its non-null values take across `records`."""
    types: Dict[str, Set[str]] = {}
    for record in records:
        for key, value in record.items():
            kind = json_type(value)
            types.setdefault(key, set())
            if kind is not None:
                types[key].add(kind)
    return types


def compatible(fake: Set[str], real: Set[str]) -> bool:
    """Integers are numbers too; an ISO time is a string too (the field may hold either)."""
    widen = {"integer": {"integer", "number"}, "iso-time": {"iso-time", "string"}}
    return all(real & widen.get(kind, {kind}) or not real for kind in fake)


def with_parent_id(endpoint: str, answers: Dict[str, Dict[str, Any]], fake: FakeZendesk) -> str:
    """A per-parent endpoint's path with the first parent row's id (parents are asked
    first); a per-ticket one's with the first ticket that has rows there."""
    ticket = next((s for s in TABLES if s.endpoint.path == endpoint and per_ticket_only(s.name)), None)
    if ticket is not None:
        return endpoint.format(id=fake.ground_truth()[ticket.name][0]["ticket_id"])
    spec = next((s for s in TABLES if s.endpoint.path == endpoint and s.per_parent), None)
    if spec is None or spec.per_parent is None:
        return endpoint
    parent = TABLES_BY_NAME[spec.per_parent.table].endpoint
    return endpoint.format(id=answers[parent.path][parent.data_key][0]["id"])


@pytest.fixture(scope="module")
def fake_answers() -> Iterator[Dict[str, Dict[str, Any]]]:
    with FakeZendesk(seed=7, tickets=120) as fake:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {fake.oauth_token}"
        answers: Dict[str, Dict[str, Any]] = {}
        for endpoint, (_, params) in sorted(REQUESTS.items(), key=lambda item: "{id}" in item[0]):
            response = session.get(f"{fake.base_url}/api/v2{with_parent_id(endpoint, answers, fake)}", params=params)
            assert response.status_code == 200, (endpoint, response.text[:200])
            answers[endpoint] = response.json()
        yield answers


def test_every_endpoint_of_the_source_is_checked() -> None:
    assert set(REQUESTS) == set(ENDPOINT_FIXTURES)


@pytest.mark.parametrize("endpoint", sorted(REQUESTS))
def test_envelope_has_zendesks_pagination_fields(endpoint: str, fake_answers: Dict[str, Dict[str, Any]]) -> None:
    real, fake = load(ENDPOINT_FIXTURES[endpoint]), fake_answers[endpoint]
    assert set(fake) == set(real), (endpoint, sorted(set(fake) ^ set(real)))
    for key in set(real) - {REQUESTS[endpoint][0]}:
        assert compatible({json_type(fake[key])} - {None}, {json_type(real[key])} - {None}), (endpoint, key)
    for nested in ("meta", "links"):
        if nested in real:
            assert set(fake[nested]) == set(real[nested]), (endpoint, nested)


def _records(endpoint: str, payload: Dict[str, Any]) -> List[Dict[str, Any]]:
    records: List[Dict[str, Any]] = payload[REQUESTS[endpoint][0]]
    return records


@pytest.mark.parametrize("endpoint", sorted(REQUESTS))
def test_records_have_zendesks_fields_and_types(endpoint: str, fake_answers: Dict[str, Dict[str, Any]]) -> None:
    real = field_types(_records(endpoint, load(ENDPOINT_FIXTURES[endpoint])))
    fake = field_types(_records(endpoint, fake_answers[endpoint]))
    assert fake, f"the fake served no {endpoint} records"
    invented = set(fake) - set(real) - DOCUMENTED_BEYOND_EXAMPLES.get(endpoint, set())
    missing = set(real) - set(fake)
    assert not invented, f"{endpoint}: fields Zendesk does not send: {sorted(invented)}"
    assert not missing, f"{endpoint}: fields Zendesk sends that the fake lacks: {sorted(missing)}"
    wrong = {key: (fake[key], real[key]) for key in set(fake) & set(real) if not compatible(fake[key], real[key])}
    assert not wrong, f"{endpoint}: types differ (fake, real): {wrong}"
