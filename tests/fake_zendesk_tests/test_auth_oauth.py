"""Authentication on every API request, and the OAuth server's grants, rotation and expiry."""

from __future__ import annotations

import re
import time
from typing import Any, Dict

import requests

from zendesk_fake import FakeZendesk

BEARER_401 = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}


def bearer_status(fake: FakeZendesk, token: str, path: str = "/api/v2/groups") -> int:
    return requests.get(fake.base_url + path, headers={"Authorization": f"Bearer {token}"}).status_code


def token_request(fake: FakeZendesk, as_json: bool = True, **params: Any) -> requests.Response:
    body: Dict[str, Any] = {"client_id": fake.oauth_client_id, "client_secret": fake.oauth_client_secret, **params}
    body = {k: v for k, v in body.items() if v is not None}
    if as_json:
        return requests.post(fake.base_url + "/oauth/tokens", json=body)
    return requests.post(fake.base_url + "/oauth/tokens", data=body)


def test_api_token_and_bearer_are_accepted(fake: FakeZendesk) -> None:
    basic = requests.get(fake.base_url + "/api/v2/groups", auth=(f"{fake.email}/token", fake.api_token))
    assert basic.status_code == 200
    assert bearer_status(fake, fake.oauth_token) == 200


def test_bad_credentials_get_zendesk_401_bodies(fake: FakeZendesk) -> None:
    url = fake.base_url + "/api/v2/incremental/tickets/cursor"
    for auth in ((f"{fake.email}/token", "wrong"), (fake.email, fake.api_token), ("someone@else/token", fake.api_token)):
        response = requests.get(url, params={"start_time": 0}, auth=auth)
        assert response.status_code == 401 and response.json() == {"error": "Couldn't authenticate you"}
    missing = requests.get(url, params={"start_time": 0})
    assert missing.status_code == 401 and missing.json() == {"error": "Couldn't authenticate you"}
    bearer = requests.get(url, params={"start_time": 0}, headers={"Authorization": "Bearer nope"})
    assert bearer.status_code == 401 and bearer.json() == BEARER_401


def test_authorization_code_grant_via_helper_and_via_consent_page(fake: FakeZendesk) -> None:
    code = fake.issue_authorization_code()
    granted = token_request(fake, grant_type="authorization_code", code=code)
    assert granted.status_code == 200
    body = granted.json()
    assert body["token_type"] == "bearer" and body["scope"] == "read" and body["refresh_token"]
    assert bearer_status(fake, body["access_token"]) == 200
    reused = token_request(fake, grant_type="authorization_code", code=code)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    fake.configure(oauth_redirect_urls=["https://app.example/cb"])
    consent = {"response_type": "code", "client_id": fake.oauth_client_id, "redirect_uri": "https://app.example/cb",
               "scope": "read", "state": "xyz"}
    page = requests.get(fake.base_url + "/oauth/authorizations/new", params=consent, allow_redirects=False)
    assert page.status_code == 302
    match = re.fullmatch(r"https://app\.example/cb\?code=([^&]+)&state=xyz", page.headers["Location"])
    assert match, page.headers["Location"]
    wrong_redirect = token_request(fake, grant_type="authorization_code", code=match.group(1), redirect_uri="https://evil.example/")
    assert wrong_redirect.status_code == 400
    refused = requests.get(fake.base_url + "/oauth/authorizations/new",
                           params={**consent, "client_id": "someone-else"}, allow_redirects=False)
    assert refused.status_code == 400
    missing = requests.get(fake.base_url + "/oauth/authorizations/new",
                           params={k: v for k, v in consent.items() if k != "redirect_uri"}, allow_redirects=False)
    assert missing.status_code == 400 and "Missing required parameter: redirect_uri" in missing.text
    unregistered = requests.get(fake.base_url + "/oauth/authorizations/new",
                                params={**consent, "redirect_uri": "https://evil.example/"}, allow_redirects=False)
    assert unregistered.status_code == 400 and "Location" not in unregistered.headers


def test_refresh_rotates_both_tokens_and_remembers_reuse(own_fake: FakeZendesk) -> None:
    fake = own_fake
    first = token_request(fake, grant_type="authorization_code", code=fake.issue_authorization_code()).json()
    assert fake.oauth_refresh_count() == 0
    second_response = token_request(fake, as_json=False, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second_response.status_code == 200
    second = second_response.json()
    assert second["access_token"] != first["access_token"] and second["refresh_token"] != first["refresh_token"]
    assert fake.oauth_refresh_count() == 1
    assert bearer_status(fake, first["access_token"]) == 401, "the old access token is revoked at once"
    assert bearer_status(fake, second["access_token"]) == 200
    assert fake.used_refresh_tokens == set()
    reuse = token_request(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert fake.used_refresh_tokens == {first["refresh_token"]}
    unknown = token_request(fake, grant_type="refresh_token", refresh_token="never-issued")
    assert unknown.status_code == 400 and fake.used_refresh_tokens == {first["refresh_token"]}
    third = token_request(fake, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert third.status_code == 200 and fake.oauth_refresh_count() == 2


def test_client_credentials_and_client_authentication(fake: FakeZendesk) -> None:
    granted = token_request(fake, grant_type="client_credentials", scope="read")
    assert granted.status_code == 200 and "refresh_token" not in granted.json()
    assert bearer_status(fake, granted.json()["access_token"]) == 200
    wrong = token_request(fake, grant_type="client_credentials", client_secret="wrong")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    basic = requests.post(fake.base_url + "/oauth/tokens", data={"grant_type": "client_credentials"},
                          auth=(fake.oauth_client_id, fake.oauth_client_secret))
    assert basic.status_code == 200
    unsupported = token_request(fake, grant_type="password")
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


def test_scope_without_read_is_forbidden(fake: FakeZendesk) -> None:
    token = token_request(fake, grant_type="client_credentials", scope="tickets:write").json()["access_token"]
    response = requests.get(fake.base_url + "/api/v2/groups", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "description": "Missing the following required scopes: read"}


def test_tokens_expire_after_the_configured_ttl(own_fake: FakeZendesk) -> None:
    fake = own_fake
    fake.configure(oauth_access_token_ttl=0.6)
    body = token_request(fake, grant_type="authorization_code", code=fake.issue_authorization_code()).json()
    assert body["expires_in"] == 0 and bearer_status(fake, body["access_token"]) == 200
    time.sleep(0.8)
    expired = requests.get(fake.base_url + "/api/v2/groups", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert expired.status_code == 401 and expired.json() == BEARER_401
    assert bearer_status(fake, fake.oauth_token) == 200, "the fixture token never expires"
    refreshed = token_request(fake, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert bearer_status(fake, refreshed["access_token"]) == 200
    fake.configure(oauth_access_token_ttl=None)
    asked = token_request(fake, grant_type="client_credentials", expires_in=7200).json()
    assert asked["expires_in"] == 7200
