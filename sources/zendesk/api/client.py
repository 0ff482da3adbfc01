"""The one HTTP client: auth, headers, pacing, retries, status policy and pagination.

Built on dlt's `RESTClient` and its retrying requests `Client` (429 and 5xx are retried
with `Retry-After` honoured; connections dropped mid-answer and read timeouts are
retried). What Zendesk needs on top lives here:

- one requests session per thread: dlt's `Client` makes each thread its own session with
  its own retry state (tenacity shares a wrapped function's statistics between threads,
  and a 429 retried in two threads at once could end a run with `KeyError: 'idle_for'`),
  while the pacing, the request counter and the halt stay shared by the whole run;
- a connection that cannot be opened at all (unknown host, connection refused) fails at
  once with a one-line error instead of being retried like a 5xx;
- a transport adapter that paces every attempt through the run's `RateBudget`, then
  attaches the credentials (the only place they are attached: a token renewed during the
  wait is the one sent), turns Zendesk's multi-valued `Retry-After` into one number,
  counts requests per endpoint, hands back a response that decodes its JSON body once,
  and refuses to send a request to any host but the configured one;
- every wait in one place (`progress.wait`): dlt's retry sleeps with `time.sleep`,
  which neither Ctrl-C nor a stop request can cut short (a `Retry-After: 3600` was slept
  in silence, and the process could not exit until it ended); each thread's retry gets
  our sleep instead, announced with its cause, in short slices; a `Retry-After` longer
  than `max_retry_after_seconds` ends the run at once with a one-line error;
- a status policy: 401 stops the run (and the adapter sends nothing more once one
  came back, so parallel resources do not keep knocking with rejected credentials),
  403/404 on plan-gated tables skip the table,
  other errors raise with Zendesk's own explanation, bodies that are not JSON raise
  instead of being half-read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

import requests
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.exceptions import ChunkedEncodingError
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ..run import progress
from ..errors import TableUnavailable, ZendeskApiError, ZendeskAuthError, ZendeskConfigError
from .paginators import PaginationStalled
from .rate_limit import RateBudget, normalize_retry_after, retry_after_seconds
from ..tables.registry import API_PREFIX, Endpoint

logger = logging.getLogger(__name__)

USER_AGENT = "zendesk-dlt-source/1.0"
#: The credentials check sent before a run's first long pacing wait gives up after this.
PROBE_TIMEOUT_SECONDS = 30.0
#: A `Retry-After` longer than this ends the run (the source's `max_retry_after_seconds`).
DEFAULT_MAX_RETRY_AFTER_SECONDS = 900.0
RETRYABLE_STATUS = frozenset({429, *range(500, 600)})
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")

Rows = List[Dict[str, Any]]


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
        self._stopped = threading.Event()

    def stop(self, error: ZendeskAuthError) -> None:
        if self.error is None:
            self.error = error
        self._stopped.set()

    def raise_if_stopped(self) -> None:
        if self.error is not None:
            raise ZendeskAuthError(*self.error.args)

    def sleep(self, seconds: float) -> None:
        """A pacing wait (announced by the budget) that ends early, raising, when the run
        is stopped meanwhile; so a 401 ends the run in seconds, not after the longest
        export wait."""
        progress.wait(seconds, "", check=self.raise_if_stopped, level=logging.NOTSET)


class PacedAdapter(HTTPAdapter):
    """Transport adapter that every request attempt, retries included, goes through."""

    def __init__(
        self,
        base_url: str,
        budget: RateBudget,
        counter: "RequestCounter",
        halt: RunHalt,
        auth: Optional[AuthBase] = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(pool_maxsize=16)
        root = urlsplit(base_url)
        self._origin = (root.scheme, root.netloc)
        self._budget = budget
        self._counter = counter
        self._halt = halt
        self._auth = auth
        self._max_retry_after = max_retry_after
        self._probe_lock = threading.Lock()
        self._credentials_known = False
        self._settings_hint: Optional[str] = getattr(auth, "settings_hint", None)

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
        release = self._budget.acquire(
            parts.path,
            sleep=self._halt.sleep,
            before_wait=lambda wait: self._check_credentials_first(request, wait, kwargs),
        )
        try:
            # Pacing may have waited: another thread's 401 may have come back meanwhile, and
            # the token attached before the wait may have expired during it.
            self._halt.raise_if_stopped()
            progress.raise_if_stopped()
            if self._auth is not None:
                request = self._authorized(request)
            response = ParsedOnceResponse.of(super().send(request, *args, **kwargs))
        finally:
            release()
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            response.headers["Retry-After"] = normalize_retry_after(retry_after) or retry_after
        self._budget.observe(response.headers)
        if response.status_code == 429:
            self._budget.throttled(parts.path)
        self._counter.add(parts.path)
        if 200 <= response.status_code < 300:
            self._credentials_known = True
        if retry_after and response.status_code in RETRYABLE_STATUS:
            self._refuse_long_retry_after(response, parts.path)
        return response

    def _check_credentials_first(
        self, request: requests.PreparedRequest, wait: float, send_kwargs: Mapping[str, Any]
    ) -> None:
        """Before the run's first long pacing wait, learn whether the credentials work.

        Right after another run the export limit is spent, so a run's first export request
        can wait most of a minute; with a wrong token the user waited that long for a 401.
        While no answer has shown the credentials to work, a wait of `WAIT_NOTE_SECONDS`
        or more first sends one `GET /users/me` (account limit only, at most once a run):
        a 401 ends the run at once; any other answer lets the wait go on. Only for fixed
        credentials (an OAuth or API token): renewing OAuth kinds prove theirs at the token
        endpoint, which is not paced."""
        if wait < progress.WAIT_NOTE_SECONDS or self._credentials_known or self._settings_hint is None:
            return
        with self._probe_lock:
            if self._credentials_known:
                return
            self._credentials_known = True  # one probe per run, whatever it answers
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        probe = requests.Request("GET", f"{self._origin[0]}://{self._origin[1]}{API_PREFIX}/users/me", headers=headers)
        try:  # the request's own proxies, TLS settings and so on
            response = self.send(probe.prepare(), **{**send_kwargs, "timeout": PROBE_TIMEOUT_SECONDS})
        except requests.RequestException:
            return  # the check could not be made: the wait goes on as before
        if response.status_code == 401:
            rejected = credentials_rejected(response, f"{self._origin[0]}://{self._origin[1]}", self._settings_hint)
            self._halt.stop(rejected)
            raise rejected

    def _refuse_long_retry_after(self, response: requests.Response, path: str) -> None:
        """A `Retry-After` over the cap ends the run now rather than sleeping through it."""
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        if seconds is None or seconds <= self._max_retry_after:
            return
        raise ZendeskApiError(
            f"Zendesk answered {response.status_code} for {endpoint_template(path)} and asked to"
            f" wait {math.ceil(seconds)} s (Retry-After), more than max_retry_after_seconds"
            f" ({self._max_retry_after:g} s): the run stopped instead of waiting. Rerun later (the"
            " run resumes where it stopped), or raise max_retry_after_seconds to wait it out.",
            response.status_code,
        )

    def _authorized(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach the credentials: the only place they are attached, after pacing.

        A response hook the auth registers (an OAuth token renewed on a 401, and the
        request sent again) runs before the caller's hooks, so our status policy judges
        the answer to the renewed request, not the 401 the renewal already handled."""
        before = list(request.hooks.get("response", []))
        request = self._auth(request)
        added = [hook for hook in request.hooks.get("response", []) if hook not in before]
        request.hooks["response"] = added + before
        return request


class ParsedOnceResponse(requests.Response):
    """A response whose JSON body is decoded once, however many readers ask.

    The status policy checks that a body is JSON, dlt's data selector takes the rows and
    the paginator its cursor: three reads of one export page of 1000 records."""

    _payload: Any = None
    _parsed = False

    @classmethod
    def of(cls, response: requests.Response) -> "ParsedOnceResponse":
        parsed = cls()
        parsed.__dict__.update(response.__dict__)
        return parsed

    def json(self, **kwargs: Any) -> Any:
        if kwargs:
            return super().json(**kwargs)
        if not self._parsed:
            self._payload = super().json()
            self._parsed = True
        return self._payload


class RequestCounter:
    """Requests sent per endpoint template, for progress and reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()

    def add(self, path: str) -> None:
        with self._lock:
            self.by_endpoint[endpoint_template(path)] += 1

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())


def never_connected(exc: BaseException) -> bool:
    """True when no connection could be opened: the host does not resolve or refuses.

    Retries are for a server that answered badly or a connection that dropped; a host
    that does not resolve or a port that refuses means a wrong subdomain or base_url, so
    it fails at once. A connect *timeout* is still retried: a congested network passes."""
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.Timeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def retry_transport_error(response: Optional[requests.Response], exception: Optional[BaseException]) -> bool:
    """dlt's retry condition for exceptions (the client passes `exceptions=()` to dlt):
    dropped connections, cut-off bodies and timeouts, but not a connection never opened."""
    if exception is None or never_connected(exception):
        return False
    return isinstance(exception, (requests.ConnectionError, requests.Timeout, ChunkedEncodingError))


def _retry_cause(state: Any) -> str:
    """Why dlt's retry is about to sleep, in words: the answer or the error it retries."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    response = getattr(error, "response", None) if error is not None else None
    if response is None and outcome is not None and not outcome.failed:
        response = outcome.result()
    if isinstance(response, requests.Response):
        where = endpoint_template(urlsplit(response.url or "").path)
        after = response.headers.get("Retry-After")
        asked = f" with Retry-After: {after}" if after else ""
        return f"because Zendesk answered {response.status_code} for {where}{asked} (attempt {state.attempt_number})"
    return f"before retrying after {type(error).__name__} (attempt {state.attempt_number})"


class _RetryWaits:
    """dlt's retry, made to wait through `progress.wait`.

    dlt's `Client` builds a tenacity `Retrying` per thread and exposes no sleep setting;
    tenacity keeps the one it was built with on the wrapped function (`send.retry`, its
    documented handle) and copies it for every call, so setting `sleep` and
    `before_sleep` there changes every later retry of that session."""

    def __init__(self, halt: "RunHalt") -> None:
        self._halt = halt
        self._cause = threading.local()

    def install(self, session: requests.Session) -> None:
        retrying = getattr(session.send, "retry", None)
        if retrying is not None:
            retrying.sleep = self.sleep
            retrying.before_sleep = self.before_sleep

    def before_sleep(self, state: Any) -> None:
        self._cause.text = _retry_cause(state)

    def sleep(self, seconds: float) -> None:
        cause = getattr(self._cause, "text", "before retrying")
        progress.wait(seconds, cause, check=self._halt.raise_if_stopped, level=logging.WARNING)


class _ThreadSessions:
    """The calling thread's dlt session, with the paced adapter and our headers mounted."""

    def __init__(
        self, client: Client, adapter: HTTPAdapter, headers: Mapping[str, str], waits: _RetryWaits
    ) -> None:
        self._client = client
        self._adapter = adapter
        self._headers = dict(headers)
        self._waits = waits

    def current(self) -> requests.Session:
        session = self._client.session  # dlt keeps one per thread, each with its own retry state
        if session.get_adapter("https://") is not self._adapter:
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
            session.headers.update(self._headers)
            self._waits.install(session)
        return session


class _CurrentThreadSession:
    """What `RESTClient` holds as its session: every use goes to the calling thread's own.

    dlt resumes a parallelized resource's generator on whichever worker thread is free,
    so a paginator started on one thread may send its next page's request from another:
    the session has to be picked per request, not per client or per generator."""

    def __init__(self, sessions: _ThreadSessions) -> None:
        self._sessions = sessions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sessions.current(), name)


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


def credentials_rejected(response: requests.Response, base_url: str, hint: Optional[str]) -> ZendeskAuthError:
    """The one-line error of a 401: what Zendesk said and which settings to fix (`hint`,
    from the credentials kind; the account's own section when several are configured)."""
    where = endpoint_template(urlsplit(response.url or "").path)
    fix = hint or "an OAuth token that is valid and not expired, or the email and API token of an admin"
    return ZendeskAuthError(
        f"Zendesk rejected the credentials (401 on {where} at {base_url}): {_error_detail(response)}."
        f" Check the credentials in .dlt/secrets.toml or the SOURCES__ZENDESK__CREDENTIALS__* env vars:"
        f" {fix}. The run stopped before loading anything from this step."
    )


class ZendeskClient:
    """Talks to one Zendesk account; shared by every resource of a run."""

    def __init__(
        self,
        base_url: str,
        auth: AuthBase,
        budget: RateBudget,
        headers: Optional[Mapping[str, str]] = None,
        request_max_attempts: Optional[int] = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.counter = RequestCounter()
        self.halt = RunHalt()
        self.settings_hint: Optional[str] = getattr(auth, "settings_hint", None)
        client_kwargs: Dict[str, Any] = {
            "raise_for_status": False,
            "exceptions": (),
            "retry_condition": retry_transport_error,
        }
        if request_max_attempts is not None:
            client_kwargs["request_max_attempts"] = request_max_attempts
        adapter = PacedAdapter(self.base_url, budget, self.counter, self.halt, auth, max_retry_after)
        self.sessions = _ThreadSessions(
            Client(**client_kwargs),
            adapter,
            {"User-Agent": USER_AGENT, "Accept": "application/json", **dict(headers or {})},
            _RetryWaits(self.halt),
        )
        session: Any = _CurrentThreadSession(self.sessions)
        # No auth here: the adapter attaches it to every attempt, after pacing.
        self.rest = RESTClient(base_url=self.base_url + API_PREFIX, session=session)

    def pages(
        self,
        endpoint: Endpoint,
        paginator: BasePaginator,
        params: Optional[Mapping[str, Any]] = None,
        table: Optional[str] = None,
        plan_gated: bool = False,
        path: Optional[str] = None,
    ) -> Iterator[Rows]:
        """Yield each page's rows until the paginator says stop.

        Raises `TableUnavailable` for a plan-gated table answering 403/404, and
        `ZendeskAuthError` / `ZendeskApiError` with an actionable message otherwise.
        """
        hook = self._status_policy(table or endpoint.data_key, plan_gated)
        with self._transport_errors():
            try:
                for page in self.rest.paginate(
                    path or endpoint.path,
                    params=dict(params or {}),
                    paginator=paginator,
                    data_selector=endpoint.data_key,
                    hooks={"response": [hook]},
                ):
                    yield list(page)
            except PaginationStalled as exc:
                where = endpoint_template(API_PREFIX + (path or endpoint.path))
                raise PaginationStalled(f"{table or endpoint.data_key} ({where}): {exc}") from None

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
        except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
            if never_connected(exc):
                raise ZendeskApiError(self._unreachable(exc)) from None
            raise ZendeskApiError(
                f"Could not reach {self.base_url} ({type(exc).__name__}) after retrying. Check the"
                " subdomain and the network, then rerun: the run resumes where it stopped."
            ) from None

    def _unreachable(self, exc: BaseException) -> str:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NameResolutionError):
            return (
                f"Could not reach {self.base_url}: its host name does not resolve. Check the"
                " subdomain (the account prefix of your Zendesk address) and the network."
            )
        return (
            f"Could not connect to {self.base_url}: the connection was refused. Check the"
            " subdomain or base_url and the network (a proxy or firewall)."
        )

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
        hint = self.settings_hint

        def check(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            status = response.status_code
            where = endpoint_template(urlsplit(response.url).path)
            if 200 <= status < 300:
                try:
                    response.json()  # decoded once (ParsedOnceResponse): the readers reuse it
                except ValueError:
                    raise ZendeskApiError(
                        f"{where} answered {status} with a body that is not valid JSON"
                        f" ({len(response.content)} bytes, starting {response.text[:60]!r})."
                        " The answer was probably cut off or replaced by a proxy page; nothing"
                        " from this run was written. Rerun; if it persists, check proxies"
                        " between this machine and Zendesk.",
                        status,
                    ) from None
                return
            if status in RETRYABLE_STATUS:
                # dlt's retry policy sees HTTPError with a retryable status and tries again.
                raise requests.HTTPError(f"{status} for {where}", response=response)
            if status == 401:
                rejected = credentials_rejected(response, base_url, hint)
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
