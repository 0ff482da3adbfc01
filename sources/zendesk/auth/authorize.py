"""The `authorize` command: sign in once in a browser and store the first token pair.

`authorize_interactive` is `python zendesk_pipeline.py authorize`: it prints the
authorization URL, reads back the code (or the whole redirect address) the user pastes,
trades it for a token pair at `/oauth/tokens`, writes the pair to the token store and
checks it with `GET /api/v2/users/me`. Runs then keep the pair fresh with
`tokens.RefreshingOAuth`. Nothing secret is printed or logged.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Dict, Optional
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests

from ..api.client import USER_AGENT
from ..config import is_placeholder, normalize_subdomain, resolve_base_url
from ..errors import ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .stores import open_token_store
from .token_store import DEFAULT_TOKEN_STORE_PATH, TokenSet
from .tokens import (
    AUTHORIZE_COMMAND,
    DEFAULT_SCOPE,
    TOKEN_REQUEST_TIMEOUT,
    format_epoch,
    parse_grant,
    post_token_request,
    token_lifetime,
    token_session,
    token_url,
)

AUTHORIZE_PATH = "/oauth/authorizations/new"
#: Where Zendesk sends the browser after sign-in, unless `redirect_uri` is set. Zendesk
#: requires a redirect URI and accepts plain http only for localhost: nothing needs to
#: listen there, the user copies the address (which carries the code) from the browser.
DEFAULT_REDIRECT_URI = "http://localhost"


def build_authorization_url(
    base_url: str,
    client_id: str,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    state: Optional[str] = None,
) -> str:
    """`{base_url}/oauth/authorizations/new?response_type=code&client_id=...&redirect_uri=...&scope=read&state=...`

    `redirect_uri` and `state` are left out when None. The redirect URI must be one of
    those registered on the OAuth client.
    """
    params = [("response_type", "code"), ("client_id", client_id)]
    if redirect_uri:
        params.append(("redirect_uri", redirect_uri))
    params.append(("scope", scope))
    if state:
        params.append(("state", state))
    return f"{base_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(params, quote_via=quote)}"


def exchange_code(
    base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    expires_in: Optional[int] = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT,
    clock: Callable[[], float] = time.time,
) -> TokenSet:
    """Trade an authorization code for a token pair at `{base_url}/oauth/tokens`.

    Returns the pair bound to this token endpoint and client (not yet stored).
    """
    url = token_url(base_url)
    body: Dict[str, Any] = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope,
    }
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    body["expires_in"] = token_lifetime(expires_in)
    with token_session(url) as http:
        response = post_token_request(http, url, body, timeout)
    tokens = parse_grant(response, "authorization_code", url, clock, requested_expires_in=body["expires_in"])
    return tokens.bound_to(url, client_id)


def parse_code_answer(answer: str, expected_state: Optional[str]) -> str:
    """The code from what the user pasted: the code itself, or the address redirected to.

    Raises `ZendeskAuthError` when the answer is empty, carries an OAuth error, or its
    `state` does not match the one sent (a mixed-up or forged redirect).
    """
    text = (answer or "").strip()
    if "code=" in text or "error=" in text or "?" in text:
        query = parse_qs(urlsplit(text).query if "?" in text else text)
        if "error" in query:
            raise ZendeskAuthError(
                f"Zendesk did not authorize the connector ({query['error'][0]}). Run"
                f" `{AUTHORIZE_COMMAND}` again and approve the access request."
            )
        state = query.get("state", [None])[0]
        if expected_state and state is not None and state != expected_state:
            raise ZendeskAuthError(
                "The pasted address belongs to another sign-in (its state does not match). Run"
                f" `{AUTHORIZE_COMMAND}` again and paste the address of this sign-in."
            )
        text = (query.get("code") or [""])[0].strip()
    if not text:
        raise ZendeskAuthError(f"No authorization code was entered. Run `{AUTHORIZE_COMMAND}` again.")
    return text


def authorize_interactive(
    subdomain: str,
    client_id: str,
    client_secret: str,
    token_store_path: str = DEFAULT_TOKEN_STORE_PATH,
    base_url: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., Any] = print,
    *,
    redirect_uri: Optional[str] = None,
    scope: str = DEFAULT_SCOPE,
    expires_in: Optional[int] = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT,
) -> Dict[str, Any]:
    """`python zendesk_pipeline.py authorize`: sign in, store the tokens, check them.

    Prints the authorization URL for the account and client with `redirect_uri` (one of
    the OAuth client's Redirect URLs; default `DEFAULT_REDIRECT_URI`), asks for the
    address Zendesk redirected the browser to (or just its code), exchanges it at
    `/oauth/tokens` with the same redirect URI, writes the pair to the token store, and
    confirms with `GET /api/v2/users/me`. Nothing secret is printed. Raises
    `ZendeskConfigError` / `ZendeskAuthError` / `ZendeskApiError` with what to fix.

    Returns:
        The signed-in user (`/users/me`'s `user` object).
    """
    account = normalize_subdomain(subdomain)
    root = resolve_base_url(account, base_url)
    redirect_uri = redirect_uri or DEFAULT_REDIRECT_URI
    if not client_id or not client_secret or is_placeholder(client_id) or is_placeholder(client_secret):
        raise ZendeskConfigError(
            "authorize needs the OAuth client: set client_id and client_secret under"
            " [sources.zendesk.credentials] in .dlt/secrets.toml (or the env vars"
            " SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID and __CLIENT_SECRET)."
        )
    endpoint = token_url(root)
    store = open_token_store(token_store_path)
    stored = store.load()
    if stored is not None and (
        (stored.token_url and stored.token_url != endpoint) or (stored.client_id and stored.client_id != client_id)
    ):
        raise ZendeskConfigError(
            f"The token store at {store.path} holds tokens of another account or OAuth client"
            f" ({stored.token_url}, client {stored.client_id}); overwriting it would lock that one"
            " out. Set token_store_path to a separate file for this account."
        )
    store.check_writable()  # before a single-use code is spent

    state = secrets.token_urlsafe(16)
    url = build_authorization_url(root, client_id, redirect_uri, scope, state)
    print_fn(f"Authorize this connector to read {root}:")
    print_fn("  1. Open this address in a browser and sign in as a Zendesk admin:")
    print_fn(f"     {url}")
    print_fn(f"  2. Click Allow. Zendesk then sends the browser to {redirect_uri}?code=...")
    print_fn("     (that page may fail to load; only its address matters). The code is valid for 2 minutes.")
    try:
        answer = input_fn("  3. Paste that whole address from the address bar (or just the code) here: ")
    except EOFError:  # stdin closed: nothing was entered
        answer = ""
    code = parse_code_answer(answer, state)

    tokens = exchange_code(root, client_id, client_secret, code, redirect_uri, scope, expires_in, timeout)
    with store.locked():
        store.save(tokens)

    try:
        me = requests.get(
            f"{root}/api/v2/users/me.json",
            headers={"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json",
                     "User-Agent": USER_AGENT},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ZendeskApiError(
            f"The tokens are stored in {store.path}, but {root} could not be reached to check them"
            f" ({type(exc).__name__}). Run `python zendesk_pipeline.py check` when the network is back."
        ) from None
    if me.status_code != 200:
        raise ZendeskAuthError(
            f"Zendesk issued tokens (stored in {store.path}) but answered {me.status_code} to"
            " GET /api/v2/users/me with them. Check that the OAuth client's scope includes 'read'"
            f" and run `{AUTHORIZE_COMMAND}` again."
        )
    try:
        user = me.json().get("user") or {}
    except (ValueError, AttributeError):
        user = {}
    print_fn(
        f"Authorized as {user.get('name')} <{user.get('email')}>, role {user.get('role')}, on {root}."
    )
    if user.get("role") != "admin":
        print_fn("  Warning: the incremental exports need an admin; sign in as an admin for a full sync.")
    print_fn(f"Tokens stored in {store.path} (mode 0600); keep this file out of the destination and of version control.")
    print_fn(_expiry_note(tokens))
    print_fn(
        "Runs use it with client_id and client_secret under [sources.zendesk.credentials]"
        + ("" if str(token_store_path) == DEFAULT_TOKEN_STORE_PATH else f' and token_store_path = "{token_store_path}"')
        + "; no refresh_token setting is needed."
    )
    return dict(user)


def _expiry_note(tokens: TokenSet) -> str:
    """When the new access token expires, as Zendesk's answer said (it may not say)."""
    if tokens.expires_at is None:
        return (
            "Zendesk's answer did not say when the access token expires; runs refresh it"
            " when Zendesk rejects it."
        )
    minutes = max(1, round((tokens.expires_at - (tokens.issued_at or time.time())) / 60))
    return (
        f"The access token expires in {minutes} minutes ({format_epoch(tokens.expires_at)});"
        " runs refresh it before then, by themselves."
    )


def authorize_from_config(
    base_url: Optional[str] = None,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., Any] = print,
    redirect_uri: Optional[str] = None,
) -> Dict[str, Any]:
    """`authorize` with the settings the source reads (`sources.zendesk...`, secrets or env).

    Reads `subdomain`, `base_url` and, under `credentials`, `client_id`, `client_secret`,
    `token_store_path`, `redirect_uri` and `access_token_expires_in`. Placeholders
    (`<configure me>`, `...`) count as unset.
    """
    import dlt

    def setting(key: str) -> Any:
        for lookup in (dlt.secrets.get, dlt.config.get):
            try:
                value = lookup(key)
            except Exception:  # a provider that cannot answer is the same as unset
                value = None
            if value is not None and not is_placeholder(value):
                return value
        return None

    subdomain = setting("sources.zendesk.subdomain")
    if not subdomain:
        normalize_subdomain(None)  # raises the "subdomain is not set" message
    expires_in = setting("sources.zendesk.credentials.access_token_expires_in")
    return authorize_interactive(
        str(subdomain),
        setting("sources.zendesk.credentials.client_id"),
        setting("sources.zendesk.credentials.client_secret"),
        setting("sources.zendesk.credentials.token_store_path") or DEFAULT_TOKEN_STORE_PATH,
        base_url=base_url or setting("sources.zendesk.base_url"),
        input_fn=input_fn,
        print_fn=print_fn,
        redirect_uri=redirect_uri or setting("sources.zendesk.credentials.redirect_uri"),
        expires_in=int(expires_in) if expires_in else None,
    )
