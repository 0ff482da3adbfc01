"""The transport end to end, against the fake Zendesk over real HTTP: 429 storms across
threads, one rate window shared by back-to-back processes, and short-lived OAuth tokens
outlived by pacing waits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.helpers import source_args, sync
from zendesk_fake import FakeZendesk
from tests.helpers.truth import assert_matches_truth
from zendesk import zendesk_support
from zendesk.run import progress
from zendesk.tables.registry import state_holder
from zendesk.auth.authorize import exchange_code
from zendesk.api.rate_limit import EXPORTS_SHARED_FLAG
from zendesk.auth.token_store import TokenStore

ROOT = Path(__file__).resolve().parents[1]

#: Runs in a fresh interpreter: a `check`, or the plain `pipeline.run(zendesk_support(...))`.
_RUN = """
import json, sys
import dlt
from zendesk import zendesk_support
from zendesk.check import check_connection

job = json.loads(sys.argv[1])
if job["mode"] == "check":
    check_connection(**job["source"])
else:
    pipeline = dlt.pipeline(
        pipeline_name="zd",
        pipelines_dir=job["pipelines_dir"],
        destination=dlt.destinations.duckdb(job["duckdb"]),
        dataset_name="zendesk_data",
    )
    pipeline.run(zendesk_support(**job["source"])).raise_on_failed_jobs()
"""


def throttled(fake: FakeZendesk) -> Dict[str, int]:
    return {key: n for key, n in fake.status_counts().items() if key.startswith("429")}


def exports_sent(fake: FakeZendesk) -> int:
    return sum(n for path, n in fake.request_counts().items() if "/incremental/" in path)


class Processes:
    """Runs checks and syncs of one pipeline, each in its own process, as a scheduler would."""

    def __init__(self, fake: FakeZendesk, tmp_path: Path, **settings: Any) -> None:
        self.fake = fake
        self.tmp_path = tmp_path
        self.source = {**source_args(fake), **settings}

    def run(self, mode: str) -> None:
        job = {
            "mode": mode,
            "source": self.source,
            "pipelines_dir": str(self.tmp_path / "pipelines"),
            "duckdb": str(self.tmp_path / "zd.duckdb"),
        }
        done = subprocess.run(
            [sys.executable, "-c", _RUN, json.dumps(job)], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]


# --- 429 storms across threads ------------------------------------------------------------------


def test_429_storm_across_parallel_exports_always_completes(
    fake: FakeZendesk, make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The source does not pace the exports; the fake lets two through per half second and
    # answers the others 429 with Retry-After, so the five exports' threads retry at once.
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "12")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "5")  # honour the fake's Retry-After
    fake.configure(export_rate_limit_per_minute=2, rate_window_seconds=0.5, export_rate_scope="shared")
    truth = fake.ground_truth()
    for round_ in range(3):
        fake.reset_counts()
        pipeline = make_pipeline(name=f"storm{round_}")
        sync(pipeline, fake)
        assert sum(throttled(fake).values()) >= 3
        assert_matches_truth(pipeline, truth)


# --- one rate window across processes -----------------------------------------------------------


def test_check_then_back_to_back_syncs_in_new_processes_draw_no_429(fake: FakeZendesk, tmp_path: Path) -> None:
    # The fake enforces five export requests per six seconds for all exports together (a
    # "minute" longer than a process takes to start); every process paces the same way. A
    # check probes the five exports, the syncs start right after it and after each other:
    # only a window shared between the processes keeps them all within the limit.
    fake.configure(export_rate_limit_per_minute=5, rate_window_seconds=6.0, export_rate_scope="shared")
    runs = Processes(fake, tmp_path, export_requests_per_minute=5, rate_limit_window_seconds=6.0)
    runs.run("check")
    runs.run("sync")
    fake.mutate(seed=5, fraction=0.05)
    runs.run("sync")
    assert exports_sent(fake) >= 3 * 5
    assert throttled(fake) == {}
    ledger = tmp_path / "dlt_data" / "zendesk" / "rate" / f"{fake.base_url.split('://')[1].replace(':', '_')}.json"
    assert set(json.loads(ledger.read_text())["buckets"]) >= {"account", "/api/v2/incremental/*"}
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name="zd",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "zd.duckdb")),
        dataset_name="zendesk_data",
    )
    assert_matches_truth(pipeline, fake.ground_truth())


def test_auto_scope_learns_once_that_exports_are_counted_together(fake: FakeZendesk, tmp_path: Path) -> None:
    # The account counts exports together; "auto" starts per endpoint, draws 429s once and
    # remembers: the next process paces the exports as one from its first request.
    fake.configure(export_rate_limit_per_minute=2, rate_window_seconds=1.0, export_rate_scope="shared")
    runs = Processes(
        fake, tmp_path, export_requests_per_minute=2, rate_limit_window_seconds=1.0, export_rate_scope="auto"
    )
    runs.run("sync")
    assert throttled(fake)
    ledger_dir = tmp_path / "dlt_data" / "zendesk" / "rate"
    (ledger,) = ledger_dir.glob("*.json")
    assert json.loads(ledger.read_text())[EXPORTS_SHARED_FLAG] is True
    fake.reset_counts()
    fake.mutate(seed=6, fraction=0.05)
    runs.run("sync")
    assert exports_sent(fake) >= 5
    assert throttled(fake) == {}


# --- short-lived OAuth tokens -------------------------------------------------------------------


@pytest.fixture
def oauth_account(fake: FakeZendesk, tmp_path: Path) -> Iterator[Dict[str, str]]:
    """Tokens live five seconds; the store holds a pair from a code exchange."""
    fake.configure(oauth_access_token_ttl=5)
    store = TokenStore(tmp_path / "tokens.json")
    code = fake.issue_authorization_code()
    store.save(exchange_code(fake.base_url, fake.oauth_client_id, fake.oauth_client_secret, code))
    yield {
        "client_id": fake.oauth_client_id,
        "client_secret": fake.oauth_client_secret,
        "token_store_path": str(store.path),
    }


def test_back_to_back_oauth_runs_with_tokens_shorter_than_a_pacing_wait(
    fake: FakeZendesk, oauth_account: Dict[str, str], make_pipeline: Any, caplog: Any
) -> None:
    # One export request per six seconds: every page after the first, and the first page of
    # every run after the first, waits longer than an access token lives.
    pipeline = make_pipeline()
    tables: List[str] = ["ticket_metric_events", "groups"]
    settings: Dict[str, Any] = {
        "credentials": oauth_account,
        "tables": tables,
        "export_requests_per_minute": 1,
        "rate_limit_window_seconds": 6.0,
    }
    for seed in (None, 7, 8):
        if seed is not None:
            fake.mutate(seed=seed, fraction=0.05)
        sync(pipeline, fake, **settings)
        assert_matches_truth(pipeline, fake.ground_truth(), tables)
    assert fake.oauth_refresh_count() >= 3
    assert fake.used_refresh_tokens == set()
    rejected = {key: n for key, n in fake.status_counts().items() if key.startswith("401")}
    assert rejected == {}, "a request left with an expired token"
    assert "ZendeskAuthError" not in caplog.text



# --- bounded waits: a long Retry-After, and Ctrl-C during it ------------------------------

_PLAIN_CALL = """
import json, sys
import dlt
from zendesk import zendesk_support

job = json.loads(sys.argv[1])
pipeline = dlt.pipeline(
    pipeline_name="zd_wait",
    pipelines_dir=job["pipelines_dir"],
    destination=dlt.destinations.duckdb(job["duckdb"]),
    dataset_name="zendesk_data",
)
print("started", flush=True)
pipeline.run(zendesk_support(**job["source"]))
"""


def _child_env(tmp_path: Path) -> Dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__"))}
    # dlt's own retry waits honour Retry-After up to 300 s: the wait is the one under test.
    env.update(PYTHONPATH=str(ROOT), RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(tmp_path / "dlt_data"))
    return env


def _interrupt_during_the_wait(fake: FakeZendesk, child: "subprocess.Popen[str]", signals: int) -> int:
    """Send SIGINT `signals` times once the child waits on its first 429; its exit code."""
    import signal
    import time

    deadline = time.monotonic() + 60
    while fake.total_requests() == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the child is now in the Retry-After wait
    sent_before = fake.total_requests()
    for _ in range(signals):
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)
    try:
        code = child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail("the process was still alive 20 s after Ctrl-C (it slept through the wait)")
    assert fake.total_requests() == sent_before, "a request was sent after Ctrl-C"
    return code


@pytest.mark.parametrize("signals", [1, 2], ids=["one-ctrl-c", "two-ctrl-c"])
def test_ctrl_c_ends_a_retry_after_wait_of_a_plain_pipeline_run(
    fake: FakeZendesk, tmp_path: Path, signals: int
) -> None:
    fake.configure(retry_after_always=600)
    job = {
        "pipelines_dir": str(tmp_path / "pipelines"),
        "duckdb": str(tmp_path / "zd.duckdb"),
        "source": source_args(fake, tables=["groups"]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _PLAIN_CALL, json.dumps(job)],
        cwd=tmp_path, env=_child_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    code = _interrupt_during_the_wait(fake, child, signals)
    stderr = child.stderr.read() if child.stderr else ""
    assert code != 0
    assert "Waiting 300 s because Zendesk answered 429 for /api/v2/groups with Retry-After: 600" in stderr


@pytest.mark.parametrize("signals", [1, 2], ids=["one-ctrl-c", "two-ctrl-c"])
def test_ctrl_c_ends_a_retry_after_wait_of_the_script_with_exit_130(
    fake: FakeZendesk, tmp_path: Path, signals: int
) -> None:
    from tests.helpers.cli import SCRIPT, cli_env

    fake.configure(retry_after_always=600)
    env = cli_env(tmp_path, fake)
    env.pop("RUNTIME__REQUEST_MAX_RETRY_DELAY", None)
    child = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--tables", "groups"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    code = _interrupt_during_the_wait(fake, child, signals)
    stderr = child.stderr.read() if child.stderr else ""
    # 130, or killed by the second SIGINT itself, which a shell reports as 130 too.
    assert code in (130, -2), stderr
    assert "Stopped (Ctrl-C)" in stderr


def test_a_retry_after_over_the_cap_ends_the_run_with_one_line(fake: FakeZendesk, make_pipeline: Any) -> None:
    fake.configure(retry_after_always=3600)
    pipeline = make_pipeline("zd_cap")
    with pytest.raises(Exception) as raised:
        pipeline.run(zendesk_support(**source_args(fake, tables=["groups"])))
    assert fake.total_requests() == 1
    assert "asked to wait 3600 s (Retry-After), more than max_retry_after_seconds (900 s)" in str(raised.value)


# --- exports and lists that do not advance ------------------------------------------------


@pytest.mark.parametrize(
    "table, fault, said",
    [
        pytest.param("users", "same_cursor", "repeated, end_of_stream false", id="cursor-repeats"),
        pytest.param("users", "no_end_of_stream", "no end_of_stream", id="no-end-of-stream"),
        pytest.param("organizations", "stuck_time", "did not move past start_time", id="end-time-stuck"),
        pytest.param("groups", "same_page", "has_more true with the same after_cursor", id="cursor-list-repeats"),
        pytest.param("talk_phone_numbers", "same_page", "next_page is the page just read", id="offset-list-repeats"),
    ],
)
def test_pages_that_do_not_advance_stop_the_run_and_the_next_run_resumes(
    fake: FakeZendesk, make_pipeline: Any, table: str, fault: str, said: str
) -> None:
    pipeline = make_pipeline("zd_stall")
    pipeline.run(zendesk_support(**source_args(fake, tables=[table])))
    saved = json.dumps(pipeline.state["sources"], sort_keys=True, default=str)
    fake.mutate(seed=5, fraction=0.2)
    fake.configure(pagination_faults={table: fault})
    fake.reset_counts()
    with pytest.raises(Exception) as raised:
        pipeline.run(zendesk_support(**source_args(fake, tables=[table])))
    message = str(raised.value)
    assert f"{progress.tables_of(state_holder(table) or table)} (/api/v2/" in message and said in message
    assert fake.total_requests() < 20, "the export kept paging"
    assert json.dumps(pipeline.state["sources"], sort_keys=True, default=str) == saved, "state moved on"

    fake.configure(pagination_faults={})
    pipeline.run(zendesk_support(**source_args(fake, tables=[table])))
    assert_matches_truth(pipeline, fake.ground_truth(), tables=[table])


def test_a_rejected_token_fails_at_once_even_when_the_export_limit_is_spent(
    fake: FakeZendesk, make_pipeline: Any, caplog: Any
) -> None:
    """Right after another run the export limit is spent: the first export request would
    wait most of a minute. A wrong token must not wait it out before its 401."""
    make_pipeline("zd_first").run(zendesk_support(**source_args(fake, tables=["ticket_metric_events"])))
    # The next run paces at one export request a minute: its first one would wait ~60 s.
    paced = {"tables": ["ticket_metric_events"], "export_requests_per_minute": 1}
    fake.reset_counts()
    caplog.set_level("INFO")
    with pytest.raises(Exception) as raised:
        make_pipeline("zd_second").run(
            zendesk_support(**source_args(fake, credentials={"oauth_token": "wrong-token-5d1f"}, **paced))
        )
    assert "Zendesk rejected the credentials (401" in str(raised.value)
    assert "oauth_token (__OAUTH_TOKEN)" in str(raised.value)
    assert fake.request_counts() == {"/api/v2/users/me": 1}
    assert "Waiting" not in caplog.text
