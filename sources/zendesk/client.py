"""The one HTTP client: auth, headers, pacing, retries, status policy and pagination.

Built on dlt's `RESTClient` and its retrying requests session (429 and 5xx are retried
with `Retry-After` honoured, dropped connections are retried). What Zendesk needs on
top lives here:

- a transport adapter that paces every attempt through the run's `RateBudget`, turns
  Zendesk's multi-valued `Retry-After` into one number, counts requests per endpoint,
  and refuses to send a request to any host but the configured one;
- a status policy: 401 stops the run (and the adapter sends nothing more once one
  came back, so parallel resources do not keep knocking with rejected credentials),
  403/404 on plan-gated tables skip the table,
  other errors raise with Zendesk's own explanation, bodies that are not JSON raise
  instead of being half-read.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import requests
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from . import progress
from .errors import TableUnavailable, ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .rate_limit import RateBudget, normalize_retry_after
from .settings import API_PREFIX, Endpoint

logger = logging.getLogger(__name__)

USER_AGENT = "zendesk-dlt-source/1.0"
RETRYABLE_STATUS = frozenset({429, *range(500, 600)})
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")

Page = Tuple[List[Dict[str, Any]], Dict[str, Any]]


def endpoint_template(path: str) -> str:
    """`/api/v2/tickets/42/audits.json` -> `/api/v2/tickets/{id}/audits` (for counting)."""
    path = path.split("?", 1)[0].removesuffix(".json")
    return _ID_SEGMENT.sub("/{id}", path)


class RunHalt:
    """The error that stopped the run, shared by every thread sending requests.

    A 401 means the credentials are wrong for every endpoint: once one answer says so,
    requests that other resources are about to send would only add rejected attempts
    to the account's security log.
    """

    def __init__(self) -> None:
        self.error: Optional[ZendeskAuthError] = None

    def stop(self, error: ZendeskAuthError) -> None:
        if self.error is None:
            self.error = error

    def raise_if_stopped(self) -> None:
        if self.error is not None:
            raise ZendeskAuthError(*self.error.args)


class PacedAdapter(HTTPAdapter):
    """Transport adapter that every request attempt, retries included, goes through."""

    def __init__(
        self,
        base_url: str,
        budget: RateBudget,
        counter: "RequestCounter",
        halt: RunHalt,
        auth: Optional[AuthBase] = None,
    ) -> None:
        super().__init__(pool_maxsize=16)
        root = urlsplit(base_url)
        self._origin = (root.scheme, root.netloc)
        self._budget = budget
        self._counter = counter
        self._halt = halt
        self._auth = auth

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        if (parts.scheme, parts.netloc) != self._origin:
            # Pagination links come from the server; never follow one off the account's
            # host, nor downgraded to plain HTTP.
            raise ZendeskConfigError(
                f"Refusing to send a request to '{parts.scheme}://{parts.netloc}': only"
                f" '{self._origin[0]}://{self._origin[1]}' receives this account's credentials."
            )
        self._halt.raise_if_stopped()
        progress.raise_if_stopped()
        release = self._budget.acquire(parts.path)
        try:
            # Pacing may have waited: another thread's 401 may have come back meanwhile, and
            # the token attached before the wait may have expired during it.
            self._halt.raise_if_stopped()
            progress.raise_if_stopped()
            if self._auth is not None:
                request = self._auth(request)
            response = super().send(request, *args, **kwargs)
        finally:
            release()
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            response.headers["Retry-After"] = normalize_retry_after(retry_after) or retry_after
        self._budget.observe(response.headers)
        self._counter.add(parts.path, response.status_code)
        return response


class RequestCounter:
    """Requests sent per endpoint template, and answers by status, for progress and reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def add(self, path: str, status: int) -> None:
        with self._lock:
            self.by_endpoint[endpoint_template(path)] += 1
            self.by_status[status] += 1

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())


def _error_detail(response: requests.Response) -> str:
    """Zendesk's own explanation from an error body, short and without echoing secrets."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("title") or error)[:300]
        description = body.get("description") or body.get("error_description")
        return " - ".join(str(part) for part in (error, description) if part)[:300]
    return str(body)[:200]


class ZendeskClient:
    """Talks to one Zendesk account; shared by every resource of a run."""

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        budget: RateBudget,
        headers: Optional[Mapping[str, str]] = None,
        request_max_attempts: Optional[int] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.counter = RequestCounter()
        self.halt = RunHalt()
        client_kwargs: Dict[str, Any] = {"raise_for_status": False}
        if request_max_attempts is not None:
            client_kwargs["request_max_attempts"] = request_max_attempts
        session = Client(**client_kwargs).session
        adapter = PacedAdapter(self.base_url, budget, self.counter, self.halt, auth)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {"User-Agent": USER_AGENT, "Accept": "application/json", **dict(headers or {})}
        )
        self.rest = RESTClient(base_url=self.base_url + API_PREFIX, auth=auth, session=session)

    def pages(
        self,
        endpoint: Endpoint,
        paginator: BasePaginator,
        params: Optional[Mapping[str, Any]] = None,
        table: Optional[str] = None,
        plan_gated: bool = False,
        path: Optional[str] = None,
    ) -> Iterator[Page]:
        """Yield `(rows, whole_payload)` per page until the paginator says stop.

        Raises `TableUnavailable` for a plan-gated table answering 403/404, and
        `ZendeskAuthError` / `ZendeskApiError` with an actionable message otherwise.
        """
        hook = self._status_policy(table or endpoint.data_key, plan_gated)
        with self._transport_errors():
            for page in self.rest.paginate(
                path or endpoint.path,
                params=dict(params or {}),
                paginator=paginator,
                data_selector=endpoint.data_key,
                hooks={"response": [hook]},
            ):
                yield list(page), page.response.json()

    def get(
        self,
        path: str,
        params: Optional[Mapping[str, Any]] = None,
        table: Optional[str] = None,
        plan_gated: bool = False,
    ) -> Dict[str, Any]:
        """One GET returning the decoded JSON body, under the same policy as `pages`."""
        hook = self._status_policy(table or path, plan_gated)
        with self._transport_errors():
            response = self.rest.get(path, params=dict(params or {}), hooks={"response": [hook]})
        payload: Dict[str, Any] = response.json()
        return payload

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """Turn what is left after dlt's retries into errors that say what to do."""
        try:
            yield
        except requests.HTTPError as exc:
            raise self._exhausted(exc.response) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ZendeskApiError(
                f"Could not reach {self.base_url} ({type(exc).__name__}) after retrying. Check the"
                " subdomain and the network, then rerun: the run resumes where it stopped."
            ) from None

    def _exhausted(self, response: Optional[requests.Response]) -> ZendeskApiError:
        status = response.status_code if response is not None else None
        where = endpoint_template(urlsplit(response.url).path) if response is not None else "?"
        detail = _error_detail(response) if response is not None else ""
        return ZendeskApiError(
            f"Zendesk kept answering {status} for {where} after every retry ({detail})."
            " This is on Zendesk's side or the account's rate limit; rerun later: the run"
            " resumes where it stopped and nothing loaded is lost.",
            status,
        )

    def _status_policy(
        self, table: str, plan_gated: bool
    ) -> Callable[..., None]:
        base_url = self.base_url
        halt = self.halt

        def check(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            status = response.status_code
            where = endpoint_template(urlsplit(response.url).path)
            if 200 <= status < 300:
                try:
                    payload = response.json()
                except ValueError:
                    raise ZendeskApiError(
                        f"{where} answered {status} with a body that is not valid JSON"
                        f" ({len(response.content)} bytes, starting {response.text[:60]!r})."
                        " The answer was probably cut off or replaced by a proxy page; nothing"
                        " from this run was written. Rerun; if it persists, check proxies"
                        " between this machine and Zendesk.",
                        status,
                    ) from None
                # Parse once: dlt's data selector and our paginators both read the body.
                response.json = lambda **_: payload  # type: ignore[method-assign]
                return
            if status in RETRYABLE_STATUS:
                # dlt's retry policy sees HTTPError with a retryable status and tries again.
                raise requests.HTTPError(f"{status} for {where}", response=response)
            if status == 401:
                rejected = ZendeskAuthError(
                    f"Zendesk rejected the credentials (401 on {where} at {base_url}):"
                    f" {_error_detail(response)}. Check the credentials in"
                    " .dlt/secrets.toml or the SOURCES__ZENDESK__CREDENTIALS__* env vars: an"
                    " OAuth token that is valid and not expired, or the email and API token of"
                    " an admin. The run stopped before loading anything from this step."
                )
                halt.stop(rejected)
                raise rejected
            if status in (403, 404) and plan_gated:
                raise TableUnavailable(table, status)
            if status == 403:
                raise ZendeskApiError(
                    f"Zendesk refused {where} (403): {_error_detail(response)}. The"
                    " authenticated user must be an admin and an OAuth token needs the 'read'"
                    " scope.",
                    status,
                )
            if status == 404:
                raise ZendeskApiError(
                    f"Zendesk answered 404 for {where} at {base_url}: {_error_detail(response)}."
                    " Check the subdomain: it must be the account prefix of your Zendesk"
                    " address.",
                    status,
                )
            raise ZendeskApiError(
                f"Zendesk answered {status} for {where}: {_error_detail(response)}.", status
            )

        return check
