"""No secret is ever written anywhere a user or an attacker could read it later.

Real CLI runs at DEBUG log level (successful and failing, OAuth token and API token): their
whole output, every file of the run (pipeline state, trace, schemas, load packages, the
DuckDB file) and every text value loaded into DuckDB are searched for the OAuth token, the
API token and the HTTP basic-auth string built from it. Errors raised in-process and the
credentials objects are checked the same way."""

from __future__ import annotations

import base64
import gzip
import json
import traceback
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

import duckdb
import pytest
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from tests.helpers import query, sync
from tests.helpers.cli import cli_env, run_cli
from zendesk.auth.credentials import (
    ZendeskApiTokenCredentials,
    ZendeskCredentials,
    ZendeskOAuthClientCredentials,
    ZendeskOAuthRefreshCredentials,
    ZendeskOAuthTokenCredentials,
)

WRONG_OAUTH_TOKEN = "wrong-oauth-secret-5be1c0d9a7f24e63"
WRONG_API_TOKEN = "wrong-api-secret-0e8d7c6b5a493821"


def basic_auth(email: str, api_token: str) -> str:
    return base64.b64encode(f"{email}/token:{api_token}".encode()).decode()


def secrets_of(fake: Any) -> Dict[str, str]:
    """Every secret a run could leak, with telling names; fragments catch truncated leaks."""
    values = {
        "oauth token": fake.oauth_token,
        "api token": fake.api_token,
        "basic auth": basic_auth(fake.email, fake.api_token),
        "wrong oauth token": WRONG_OAUTH_TOKEN,
        "wrong api token": WRONG_API_TOKEN,
        "wrong basic auth": basic_auth(fake.email, WRONG_API_TOKEN),
        "oauth client secret": fake.oauth_client_secret,
    }
    for name in ("oauth token", "api token", "wrong oauth token", "wrong api token"):
        secret = values[name]
        values[f"{name} (tail)"] = secret[-16:]
    values["basic auth (no padding)"] = values["basic auth"].rstrip("=")[:40]
    values["basic auth (urlsafe)"] = base64.urlsafe_b64encode(f"{fake.email}/token:{fake.api_token}".encode()).decode()
    return values


def leaks(text: bytes, secrets: Dict[str, str]) -> List[str]:
    return [name for name, value in secrets.items() if value.encode() in text]


def file_texts(root: Path) -> Iterable[Tuple[Path, bytes]]:
    """Every file under root, gzip members decompressed (dlt compresses load files unless told
    not to), zlib-compressed state blobs expanded."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = data + gzip.decompress(data)
        yield path, data


def decoded_state_blobs(db: duckdb.DuckDBPyConnection, schema: str) -> bytes:
    """dlt stores the pipeline state in `_dlt_pipeline_state.state` as base64 of zlib'd JSON."""
    out = b""
    for (blob,) in db.sql(f'select state from "{schema}"."_dlt_pipeline_state"').fetchall():
        try:
            out += zlib.decompress(base64.b64decode(blob))
        except (ValueError, zlib.error):
            out += str(blob).encode()
    return out


def loaded_text(db_path: Path) -> Tuple[bytes, int]:
    """Every text/JSON value of every table, and how many tables were read."""
    chunks: List[bytes] = []
    with duckdb.connect(str(db_path), read_only=True) as db:
        columns: Dict[Tuple[str, str], List[str]] = {}
        for schema, table, column, data_type in db.sql(
            "select table_schema, table_name, column_name, data_type from information_schema.columns"
        ).fetchall():
            if data_type in ("VARCHAR", "JSON") or data_type.endswith("[]") or data_type.startswith(("STRUCT", "MAP")):
                columns.setdefault((schema, table), []).append(column)
        for (schema, table), names in columns.items():
            selected = ", ".join(f'cast("{c}" as varchar)' for c in names)
            for row in db.sql(f'select {selected} from "{schema}"."{table}"').fetchall():
                chunks.append("\x00".join(v for v in row if v is not None).encode())
            if table == "_dlt_pipeline_state":
                chunks.append(decoded_state_blobs(db, schema))
    return b"\n".join(chunks), len(columns)


def assert_run_leaks_nothing(fake: Any, cwd: Path, output: bytes, loaded: bool) -> None:
    secrets = secrets_of(fake)
    assert b"[DEBUG]" in output, "the run did not log at DEBUG level: the test would miss debug logs"
    assert leaks(output, secrets) == [], "a secret is in the run's output"
    files = list(file_texts(cwd))
    assert any(p.name == "state.json" for p, _ in files), "the pipeline's working dir was not found"
    for path, data in files:
        assert leaks(data, secrets) == [], f"a secret is in {path.relative_to(cwd)}"
    if not loaded:
        return
    # The scan of decompressed files must be able to see row data at all.
    subject = fake.ground_truth()["tickets"][0]["subject"]
    assert any(json.dumps(subject)[1:-1].encode() in data or subject.encode() in data for _, data in files)
    text, tables = loaded_text(cwd / "zendesk.duckdb")
    assert tables >= 16 and fake.email.encode() in text, "the loaded-text scan read nothing useful"
    assert leaks(text, secrets) == [], "a secret was loaded into a table"


def cli_run(fake: Any, cwd: Path, **settings: Any) -> Tuple[int, bytes]:
    env = cli_env(cwd, fake, RUNTIME__LOG_LEVEL="DEBUG", **settings)
    done = run_cli(cwd, env)
    return done.returncode, (done.stdout + "\n" + done.stderr).encode()


@pytest.mark.parametrize("kind", ["oauth_token", "api_token"])
def test_successful_run_at_debug_level_leaks_no_secret(fake: Any, tmp_path: Path, kind: str) -> None:
    cwd = tmp_path / "run"
    if kind == "oauth_token":
        code, output = cli_run(fake, cwd)
    else:
        code, output = cli_run(
            fake, cwd, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=None,
            SOURCES__ZENDESK__CREDENTIALS__EMAIL=fake.email, SOURCES__ZENDESK__CREDENTIALS__API_TOKEN=fake.api_token,
        )
        assert b"stops accepting API tokens" in output  # the run did use the API token
    assert code == 0, output[-3000:].decode(errors="replace")
    assert b"rows loaded" in output
    assert_run_leaks_nothing(fake, cwd, output, loaded=True)


@pytest.mark.parametrize("failure", ["wrong_oauth_token", "wrong_api_token", "malformed_json"])
def test_failed_run_at_debug_level_leaks_no_secret(fake: Any, tmp_path: Path, failure: str) -> None:
    cwd = tmp_path / "run"
    if failure == "wrong_oauth_token":
        code, output = cli_run(fake, cwd, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=WRONG_OAUTH_TOKEN)
        assert b"rejected the credentials (401" in output
    elif failure == "wrong_api_token":
        code, output = cli_run(
            fake, cwd, SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=None,
            SOURCES__ZENDESK__CREDENTIALS__EMAIL=fake.email, SOURCES__ZENDESK__CREDENTIALS__API_TOKEN=WRONG_API_TOKEN,
        )
        assert b"rejected the credentials (401" in output
    else:
        fake.configure(malformed_json_paths=["/api/v2/incremental/users/cursor"])
        code, output = cli_run(fake, cwd)
        assert b"not valid JSON" in output
    assert code == 1, output[-3000:].decode(errors="replace")
    assert_run_leaks_nothing(fake, cwd, output, loaded=False)


@configspec
class _CredentialsHolder(BaseConfiguration):
    credentials: ZendeskCredentials = None


def _everything_about(exc: BaseException, pipeline: Any) -> bytes:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    chained = exc
    while chained is not None:
        text += repr(chained) + str(chained) + repr(getattr(chained, "args", ""))
        chained = chained.__cause__ or chained.__context__
    if pipeline.last_trace is not None:
        text += str(pipeline.last_trace) + repr(pipeline.last_trace.asdict())
    return text.encode()


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"oauth_token": WRONG_OAUTH_TOKEN}, id="oauth-token"),
        pytest.param({"email": "admin@fakeacme.com", "api_token": WRONG_API_TOKEN}, id="api-token"),
    ],
)
def test_errors_and_traces_of_a_rejected_run_hide_the_secret(
    fake: Any, make_pipeline: Any, credentials: Dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = make_pipeline()
    caplog.set_level("DEBUG")
    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, credentials=credentials)
    text = _everything_about(caught.value, pipeline) + caplog.text.encode()
    assert b"rejected the credentials" in text
    assert leaks(text, secrets_of(fake)) == []


def test_errors_and_trace_of_a_malformed_answer_hide_the_secret(fake: Any, make_pipeline: Any, caplog: pytest.LogCaptureFixture) -> None:
    fake.configure(malformed_json_paths=["/api/v2/incremental/organizations"])
    pipeline = make_pipeline()
    caplog.set_level("DEBUG")
    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, credentials={"email": fake.email, "api_token": fake.api_token})
    text = _everything_about(caught.value, pipeline) + caplog.text.encode()
    assert b"not valid JSON" in text
    assert leaks(text, secrets_of(fake)) == []


def test_successful_in_process_run_keeps_secrets_out_of_trace_and_state(fake: Any, make_pipeline: Any, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = make_pipeline()
    caplog.set_level("DEBUG")
    sync(pipeline, fake, tables=["groups", "users"], credentials={"email": fake.email, "api_token": fake.api_token})
    assert query(pipeline, "select count(*) from {t:users}")[0][0] > 0
    text = (
        str(pipeline.last_trace) + repr(pipeline.last_trace.asdict()) + json.dumps(pipeline.state, default=str)
        + json.dumps(pipeline.default_schema.to_dict(), default=str) + caplog.text
    ).encode()
    assert leaks(text, secrets_of(fake)) == []


def test_credentials_objects_never_show_a_secret(fake: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    secrets = secrets_of(fake)
    built = [
        ZendeskOAuthTokenCredentials(oauth_token=fake.oauth_token),
        ZendeskApiTokenCredentials(email=fake.email, api_token=fake.api_token),
        ZendeskOAuthClientCredentials(client_id=fake.oauth_client_id, client_secret=fake.oauth_client_secret),
        ZendeskOAuthRefreshCredentials(
            client_id=fake.oauth_client_id, client_secret=fake.oauth_client_secret, refresh_token=fake.api_token,
            token_store_path=str(tmp_path / "tokens.json"),
        ),
    ]
    # As dlt resolves them from env vars in a real run.
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN", fake.oauth_token)
    built.append(resolve_configuration(_CredentialsHolder(), sections=("sources", "zendesk")).credentials)
    monkeypatch.delenv("SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN")
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__EMAIL", fake.email)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__API_TOKEN", fake.api_token)
    holder = resolve_configuration(_CredentialsHolder(), sections=("sources", "zendesk"))
    built.append(holder.credentials)
    assert isinstance(built[-2], ZendeskOAuthTokenCredentials) and isinstance(built[-1], ZendeskApiTokenCredentials)
    for creds in built:
        text = (repr(creds) + str(creds) + f"{creds!s}{creds!r}" + repr([creds]) + repr({"c": creds})).encode()
        assert leaks(text, secrets) == [], type(creds).__name__
        assert b"***" in text, f"{type(creds).__name__} shows no masked secret: the check would prove nothing"
    assert leaks((repr(holder) + str(holder)).encode(), secrets) == []


# --- the token store location and the token endpoint's own words ----------------------------


def _trace_cli(pipeline: Any) -> bytes:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "dlt", "pipeline", "--pipelines-dir", pipeline.pipelines_dir, pipeline.pipeline_name,
         "trace", "-v"],
        capture_output=True, timeout=120,
    )
    assert b"Following config and secret values were resolved" in done.stdout + done.stderr, done.stderr[-2000:]
    return done.stdout + done.stderr


def _saved_trace(pipeline: Any) -> bytes:
    from dlt.pipeline.trace import load_trace

    trace = load_trace(pipeline.working_dir)
    assert trace is not None
    return (str(trace) + repr(trace.asdict())).encode()


@pytest.mark.postgres
def test_a_postgres_token_store_password_stays_out_of_trace_logs_and_errors(
    fake: Any, make_pipeline: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zendesk.auth.authorize import exchange_code

    password = "store-pass-8c1e5f0a2b"  # trust auth ignores it; it must still never show
    location = (
        f"postgresql://postgres:{password}@127.0.0.1:5432/test?password={password}"
        f"&table=zd_tokens_{tmp_path.name[-12:].lower().replace('-', '_')}"
    )
    from zendesk.auth.stores import open_token_store

    fake.configure(oauth_access_token_ttl=1)
    open_token_store(location).save(
        exchange_code(fake.base_url, fake.oauth_client_id, fake.oauth_client_secret, fake.issue_authorization_code())
    )
    # As a user sets them: resolved by dlt from the environment, so dlt's trace lists them.
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID", fake.oauth_client_id)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__CLIENT_SECRET", fake.oauth_client_secret)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__TOKEN_STORE_PATH", location)
    pipeline = make_pipeline("zd_pgstore")
    caplog.set_level("DEBUG")
    import time

    time.sleep(1.1)  # the access token has expired: the run refreshes through the store
    from tests.helpers import source_args
    from zendesk import zendesk_support

    args = source_args(fake, tables=["groups"])
    del args["credentials"]
    pipeline.run(zendesk_support(**args))
    assert fake.oauth_refresh_count() >= 1
    text = _saved_trace(pipeline) + _trace_cli(pipeline) + caplog.text.encode()
    assert b"token_store_path" in text, "the trace lists no token_store_path: the check would prove nothing"
    assert password.encode() not in text


def test_secrets_a_token_endpoint_echoes_are_masked(
    fake: Any, make_pipeline: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from zendesk.auth.token_store import TokenSet, TokenStore

    spent = "spent-refresh-token-4d2a9c81e7b3"
    store = tmp_path / "tokens.json"
    TokenStore(store).save(TokenSet(None, spent, None, None, None, fake.oauth_client_id))
    fake.configure(oauth_echo_secrets=True)
    pipeline = make_pipeline("zd_echo")
    caplog.set_level("DEBUG")
    with pytest.raises(Exception) as caught:
        sync(pipeline, fake, tables=["groups"], credentials={
            "client_id": fake.oauth_client_id, "client_secret": fake.oauth_client_secret, "token_store_path": str(store),
        })
    text = _everything_about(caught.value, pipeline) + caplog.text.encode() + _trace_cli(pipeline)
    assert b"rejected the OAuth refresh token" in text and b"received: ***" in text
    assert spent.encode() not in text
    assert fake.oauth_client_secret.encode() not in text
