"""A new user's first hour, each step run the way the README tells it: the script in a
subprocess, from a fresh folder, against the fake Zendesk over HTTP.

Sign-in (`authorize`), copying `.dlt/secrets.toml.example`, the demo, Ctrl-C, errors on
the command line, progress, several pipelines on one machine and the stated versions.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from typing import IO, Any, Dict, List, Optional

import dlt
import duckdb
import pytest
import requests

from tests.helpers.truth import assert_matches_truth
from zendesk_fake import FakeZendesk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "zendesk_pipeline.py")
FAST = {"SOURCES__ZENDESK__EXPORT_REQUESTS_PER_MINUTE": "100000", "SOURCES__ZENDESK__MAX_REQUESTS_PER_MINUTE": "100000"}


def clean_env(tmp_path: Any, **extra: str) -> Dict[str, str]:
    """The user's environment: no settings from the test process, dlt's home in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__", "DESTINATION__"))}
    env.update(RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(tmp_path / "dlt_home"), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def account_env(fake: FakeZendesk, tmp_path: Any, **extra: str) -> Dict[str, str]:
    return clean_env(
        tmp_path,
        SOURCES__ZENDESK__SUBDOMAIN=fake.subdomain,
        SOURCES__ZENDESK__BASE_URL=fake.base_url,
        SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=fake.oauth_token,
        **{**FAST, **extra},
    )


def run_script(args: List[str], cwd: Any, env: Dict[str, str], stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def duckdb_counts(path: Any, dataset: str = "zendesk_data") -> Dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as db:
        tables = [row[0] for row in db.sql(
            f"select table_name from information_schema.tables where table_schema = '{dataset}'"
            " and table_name not like '_dlt%' and table_name not like '%\\_\\_%' escape '\\'"
        ).fetchall()]
        return {t: db.sql(f'select count(*) from {dataset}."{t}"').fetchall()[0][0] for t in tables}


def pipeline_on(path: Any, name: str, pipelines_dir: Any, dataset: str = "zendesk_data") -> dlt.Pipeline:
    """A pipeline object over a DuckDB file a subprocess wrote, for `assert_matches_truth`."""
    return dlt.pipeline(
        pipeline_name=name, pipelines_dir=str(pipelines_dir),
        destination=dlt.destinations.duckdb(str(path)), dataset_name=dataset,
    )


# --- 1. authorize as documented ---------------------------------------------------------


def read_until(stream: IO[str], pattern: str, seen: List[str]) -> str:
    """Lines of a subprocess's output until one matches (all kept in `seen`)."""
    for line in iter(stream.readline, ""):
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def sign_in(fake: FakeZendesk, url: str) -> str:
    """What the admin's browser does: open the URL, click Allow, land on the redirect."""
    consent = requests.get(url, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    return consent.headers["Location"]


@pytest.mark.parametrize("redirect_setting, paste", [(None, "address"), ("http://localhost:8976/zendesk", "code")])
def test_authorize_as_documented_then_runs_use_the_stored_tokens(
    fake: FakeZendesk, tmp_path: Any, redirect_setting: Optional[str], paste: str
) -> None:
    """README: register the Redirect URL, fill client_id and client_secret, run authorize,
    open the printed URL, paste the address the browser lands on (or just its code)."""
    fake.configure(oauth_access_token_ttl=1800, oauth_redirect_urls=[redirect_setting or "http://localhost"])
    store = tmp_path / "tokens.json"
    settings = {
        "SOURCES__ZENDESK__CREDENTIALS__CLIENT_ID": fake.oauth_client_id,
        "SOURCES__ZENDESK__CREDENTIALS__CLIENT_SECRET": fake.oauth_client_secret,
        "SOURCES__ZENDESK__CREDENTIALS__TOKEN_STORE_PATH": str(store),
    }
    if redirect_setting:
        settings["SOURCES__ZENDESK__CREDENTIALS__REDIRECT_URI"] = redirect_setting
    env = account_env(fake, tmp_path, **settings)
    del env["SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN"]
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "authorize"], cwd=tmp_path, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: List[str] = []
    assert process.stdout is not None and process.stdin is not None
    url = read_until(process.stdout, r"/oauth/authorizations/new\?", seen).strip()
    landed = sign_in(fake, url)
    assert landed.startswith((redirect_setting or "http://localhost") + "?code=")
    answer = landed if paste == "address" else re.search(r"code=([^&]+)", landed).group(1)  # type: ignore[union-attr]
    out, err = process.communicate(answer + "\n", timeout=60)
    out = "".join(seen) + out
    assert process.returncode == 0, out + err
    assert "Authorized as" in out
    assert "The access token expires in 30 minutes" in out
    assert "never" not in out
    assert store.is_file()

    check = run_script(["check"], tmp_path, env)
    assert check.returncode == 0, check.stderr
    assert "Connected as" in check.stdout


# --- 2. copying .dlt/secrets.toml.example -------------------------------------------------


def fill(text: str, key: str, value: str) -> str:
    """Set `key` in the copied example: uncomment its line if needed and fill it in, the
    way a user edits the file; every other line stays as it was."""
    pattern = re.compile(rf'^#?\s*{key} = "[^"]*"', re.MULTILINE)
    assert pattern.search(text), f"the example has no line for {key}"
    return pattern.sub(f'{key} = "{value}"', text, count=1)


def credential_values(fake: FakeZendesk, kind: str) -> Dict[str, str]:
    return {
        "oauth_client": {"client_id": fake.oauth_client_id, "client_secret": fake.oauth_client_secret},
        "oauth_token": {"oauth_token": fake.oauth_token},
        "api_token": {"email": fake.email, "api_token": fake.api_token},
    }[kind]


def test_the_secrets_example_has_one_active_credential_kind() -> None:
    import tomllib

    with open(os.path.join(REPO_ROOT, ".dlt", "secrets.toml.example"), "rb") as example:
        parsed = tomllib.load(example)
    credentials = parsed["sources"]["zendesk"]["credentials"]
    assert set(credentials) == {"client_id", "client_secret"}
    assert parsed["sources"]["zendesk"]["subdomain"] == "<configure me>"


@pytest.mark.parametrize("kind", ["oauth_client", "oauth_token", "api_token"])
def test_copying_the_secrets_example_and_filling_in_one_kind_works(fake: FakeZendesk, tmp_path: Any, kind: str) -> None:
    """cp .dlt/secrets.toml.example .dlt/secrets.toml, fill in one kind, run: it connects
    with that kind, and no placeholder of the other kinds is ever sent."""
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    with open(os.path.join(REPO_ROOT, ".dlt", "secrets.toml.example")) as example:
        text = example.read()
    text = fill(text, "subdomain", fake.subdomain)
    text = text.replace("[sources.zendesk]\n", f'[sources.zendesk]\nbase_url = "{fake.base_url}"\n', 1)
    for key, value in credential_values(fake, kind).items():
        text = fill(text, key, value)
    (project / ".dlt" / "secrets.toml").write_text(text)
    env = clean_env(tmp_path, **FAST)

    done = run_script(["--tables", "groups"], project, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"groups\s+\d+ rows", done.stdout)
    assert "rejected" not in done.stderr and "invalid_grant" not in done.stderr
    assert fake.status_counts().get("401", 0) == 0
    if kind == "oauth_client":  # no stored refresh token: the client credentials grant
        assert fake.oauth_refresh_count() == 0


# --- 3. a project made with dlt init -------------------------------------------------------


PLAIN_SCRIPT = """import dlt
from zendesk import zendesk_support

pipeline = dlt.pipeline(pipeline_name="zendesk_plain", destination="duckdb", dataset_name="zendesk_data")
pipeline.run(zendesk_support())
"""

#: What a run must not print in a `dlt init` project (whose config sets dlt's log level to
#: WARNING): a dlt log record at WARNING or above, or a Python warning.
LOUD = re.compile(r"\|\[(WARNING|ERROR|CRITICAL)\]\||\b(WARNING|ERROR|CRITICAL)\b|Warning:")


@pytest.mark.skipif(shutil.which("git") is None, reason="dlt init reads the repository with git")
def test_dlt_init_project_with_filled_in_secrets_loads_the_truth(fake: FakeZendesk, tmp_path: Any) -> None:
    """`dlt init zendesk duckdb --location <repo>` into an empty folder (it copies what is
    committed there). dlt init writes a placeholder for the subdomain only: none for
    credentials, whose kind it cannot know, so no kind left unfilled makes dlt warn. Fill
    in the subdomain and an OAuth client; run the generated script, then a plain 6-line
    script: each prints nothing at WARNING or above, at the log level dlt init wrote, and
    every table equals the fake's truth."""
    project = tmp_path / "project"
    project.mkdir()
    env = clean_env(tmp_path)
    dlt_cli = os.path.join(os.path.dirname(sys.executable), "dlt")
    init = subprocess.run(
        [dlt_cli, "init", "zendesk", "duckdb", "--location", REPO_ROOT, "--non-interactive"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    requirements = (project / "requirements.txt").read_text()
    assert "sqlglot" in requirements and "<30" in requirements

    config, secrets = (project / ".dlt" / name for name in ("config.toml", "secrets.toml"))
    generated = config.read_text() + secrets.read_text()
    assert 'log_level="WARNING"' in generated.replace(" ", "")  # the level the runs below are quiet at
    assert re.findall(r"^(\w+) = \"<configure me>\"", generated, re.M) == ["subdomain"], generated
    for path in (config, secrets):
        path.write_text(path.read_text().replace(
            'subdomain = "<configure me>"', f'subdomain = "{fake.subdomain}"\nbase_url = "{fake.base_url}"'
        ))
    with secrets.open("a") as toml:
        toml.write(
            f'\n[sources.zendesk.credentials]\nclient_id = "{fake.oauth_client_id}"\n'
            f'client_secret = "{fake.oauth_client_secret}"\n'
        )
    env.update(FAST)

    run = subprocess.run([sys.executable, "zendesk_pipeline.py"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert fake.oauth_refresh_count() == 0 and "invalid_grant" not in run.stderr
    assert not LOUD.search(run.stderr), run.stderr[-3000:]
    held = {m.group(1): int(m.group(2).replace(",", "")) for m in re.finditer(r"^  (\w+)\s+([\d,]+) rows", run.stdout, re.M)}
    truth = fake.ground_truth()
    assert held["tickets"] == len(truth["tickets"]), run.stdout  # the summary counts via pipeline.dataset()
    pipeline = pipeline_on(project / "zendesk.duckdb", "zendesk", tmp_path / "dlt_home" / "pipelines")
    assert_matches_truth(pipeline, truth)

    (project / "plain.py").write_text(PLAIN_SCRIPT)
    plain = subprocess.run([sys.executable, "plain.py"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    output = plain.stdout + plain.stderr
    assert not LOUD.search(output), output[-3000:]
    plain_pipeline = pipeline_on(project / "zendesk_plain.duckdb", "zendesk_plain", tmp_path / "dlt_home" / "pipelines")
    assert_matches_truth(plain_pipeline, truth)


def test_a_placeholder_subdomain_is_reported_as_unset(tmp_path: Any) -> None:
    env = clean_env(tmp_path, SOURCES__ZENDESK__SUBDOMAIN="<configure me>",
                    SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN="t0k")
    done = run_script(["check"], tmp_path, env)
    assert done.returncode == 2  # a missing setting, as when it is absent
    assert "subdomain is not set" in done.stderr and "Traceback" not in done.stderr


# --- 4. the demo ---------------------------------------------------------------------------


def test_the_demo_is_independent_of_earlier_runs_and_other_clones(tmp_path: Any) -> None:
    """Two folders (two clones), one dlt home: each demo has its own state and DuckDB file
    in its folder and the full demo data, also when run a second time."""
    from zendesk_fake import FakeZendesk as Demo

    env = clean_env(tmp_path)
    expected = {table: len(rows) for table, rows in Demo(seed=7, tickets=300).ground_truth().items()}
    first, second = tmp_path / "clone_a", tmp_path / "clone_b"
    for folder in (first, second, first):
        folder.mkdir(exist_ok=True)
        done = run_script(["--demo"], folder, env)
        assert done.returncode == 0, done.stderr[-3000:]
        counts = duckdb_counts(folder / "zendesk_demo.duckdb")
        assert counts["tickets"] == expected["tickets"] and counts["users"] == expected["users"]
        assert counts["ticket_metric_events"] == expected["ticket_metric_events"]
        # The summary says what each table holds, not only what was processed: the deleted
        # tickets' metrics are loaded as deletions and are not in the table.
        line = re.search(r"^  ticket_metrics\s+([\d,]+) rows\s+\(([\d,]+) loaded", done.stdout, re.M)
        assert line, done.stdout
        assert int(line.group(1).replace(",", "")) == counts["ticket_metrics"] == expected["ticket_metrics"]
        assert int(line.group(2).replace(",", "")) == expected["tickets"]
    assert not (tmp_path / "dlt_home" / "pipelines" / "zendesk_demo").exists()


# --- 5. Ctrl-C -----------------------------------------------------------------------------


def test_ctrl_c_stops_at_once_commits_what_was_loaded_and_the_next_run_resumes(tmp_path: Any) -> None:
    """SIGINT while the run waits for the export limit: no request after it, one line on
    what was committed, exit 130; the next run loads the rest and the table is complete."""
    with FakeZendesk(seed=4, tickets=500) as fake:
        truth = len(fake.ground_truth()["ticket_metric_events"])
        assert truth > 2000  # three export pages: one per batch below
        env = account_env(
            fake, tmp_path,
            SOURCES__ZENDESK__EXPORT_REQUESTS_PER_MINUTE="1",
            SOURCES__ZENDESK__RATE_LIMIT_WINDOW_SECONDS="60",
            SOURCES__ZENDESK__BATCH_PAGES="1",
        )
        process = subprocess.Popen(
            [sys.executable, SCRIPT, "--tables", "ticket_metric_events"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert process.stderr is not None
        seen: List[str] = []
        read_until(process.stderr, r"ticket_metric_events: [\d,]+ rows so far \(1 page\).*estimate: about \d+ pages? left", seen)
        read_until(process.stderr, r"Waiting \d+ s for Zendesk's rate limit \(1 request per 60 s\)", seen)
        process.send_signal(signal.SIGINT)
        sent_before = fake.total_requests()
        try:
            # The wait had most of a minute to go: ending well within it shows it was cut short.
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, "".join(seen) + err
        assert fake.total_requests() == sent_before, "a request was sent after Ctrl-C"
        final = err.strip().splitlines()[-1]
        assert final.startswith("Stopped (Ctrl-C): 1 batch(es)") and "next run resumes" in final, err
        assert "Traceback" not in err and "step failed" not in err
        committed = duckdb_counts(tmp_path / "zendesk.duckdb")["ticket_metric_events"]
        assert 0 < committed < truth

        resumed = run_script(["--tables", "ticket_metric_events"], tmp_path, account_env(fake, tmp_path))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert duckdb_counts(tmp_path / "zendesk.duckdb")["ticket_metric_events"] == truth


# --- 6. command-line errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, names",
    [
        (["--destination", "postgress"], ["Unknown destination 'postgress'", "postgres", "bigquery", "snowflake"]),
        (["--tables", ","], ["--tables names no table", "tickets", "talk_phone_numbers"]),
        (["--tables", ""], ["--tables names no table", "tickets"]),
        (["--progress", "alive_progress"], ["needs the alive-progress package", "--progress log"]),
    ],
)
def test_a_bad_command_line_value_is_one_line_naming_the_choices(
    fake: FakeZendesk, tmp_path: Any, args: List[str], names: List[str]
) -> None:
    if args[0] == "--progress" and importlib.util.find_spec(args[1]) is not None:
        pytest.skip(f"{args[1]} is installed here")
    fake.reset_counts()
    done = run_script(args, tmp_path, account_env(fake, tmp_path))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for name in names:
        assert name in done.stderr
    assert fake.total_requests() == 0


def test_a_start_date_that_cannot_apply_says_so_and_names_full_refresh(fake: FakeZendesk, tmp_path: Any) -> None:
    env = account_env(fake, tmp_path)
    first = run_script(["--tables", "users,groups"], tmp_path, env)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_script(["--tables", "users,groups", "--start-date", "01/31/2024"], tmp_path, env)
    assert again.returncode == 0, again.stderr[-3000:]
    note = [line for line in again.stderr.splitlines() if line.startswith("--start-date")]
    assert len(note) == 1 and "users" in note[0] and "groups" not in note[0] and "--full-refresh" in note[0]
    reload = run_script(["--tables", "users", "--start-date", "01/31/2024", "--full-refresh"], tmp_path, env)
    assert reload.returncode == 0 and "--start-date does not apply" not in reload.stderr


# --- 7. progress ---------------------------------------------------------------------------


def test_progress_names_tables_and_says_what_it_cannot_estimate(fake: FakeZendesk, tmp_path: Any) -> None:
    done = run_script(["--tables", "tickets,organizations", "--progress", "log"], tmp_path, account_env(
        fake, tmp_path, SOURCES__ZENDESK__BATCH_PAGES="100"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "psutil" not in done.stderr
    assert re.search(r"tickets \+ ticket_metrics: [\d,]+ rows \(1 page\), export complete", done.stderr)
    assert "ticket_export" not in done.stderr.replace("zendesk.resources", "")
    assert re.search(r"organizations: [\d,]+ rows \(1 page\), export complete", done.stderr)


def test_a_cursor_export_in_progress_says_zendesk_gives_no_count(tmp_path: Any) -> None:
    with FakeZendesk(seed=4, tickets=1500) as fake:
        done = run_script(["--tables", "tickets"], tmp_path, account_env(fake, tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    line = re.search(r"tickets \+ ticket_metrics: 1,000 rows so far \(1 page\), through \d{4}-\d\d-\d\d .*", done.stderr)
    assert line and "gives no count" in line.group(0), done.stderr[-3000:]


# --- 8. several accounts and environments ----------------------------------------------------


def test_pipeline_name_and_dataset_keep_accounts_apart(tmp_path: Any) -> None:
    with FakeZendesk(seed=3, tickets=40) as small, FakeZendesk(seed=5, tickets=90) as large:
        for fake, name in ((small, "acme_prod"), (large, "globex_prod")):
            done = run_script(["--pipeline-name", name, "--dataset", f"{name}_data", "--tables", "tickets"],
                              tmp_path, account_env(fake, tmp_path))
            assert done.returncode == 0, done.stderr[-3000:]
        for fake, name in ((small, "acme_prod"), (large, "globex_prod")):
            counts = duckdb_counts(tmp_path / f"{name}.duckdb", f"{name}_data")
            assert counts["tickets"] == len(fake.ground_truth()["tickets"])
            assert (tmp_path / "dlt_home" / "pipelines" / name).is_dir()


# --- 9. stated versions --------------------------------------------------------------------


def test_requirements_state_ranges_that_hold_what_the_suite_runs_with() -> None:
    from importlib.metadata import version

    from packaging.requirements import Requirement

    with open(os.path.join(REPO_ROOT, "requirements.txt")) as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    for line in lines:
        requirement = Requirement(line)
        assert any(spec.operator == "<" for spec in requirement.specifier), f"{line}: no upper bound"
        assert version(requirement.name) in requirement.specifier, f"{line}: the suite runs {version(requirement.name)}"
    with open(os.path.join(REPO_ROOT, "sources", "zendesk", "requirements.txt")) as handle:
        source_lines = handle.read().splitlines()
    assert all(line and not line.startswith("#") for line in source_lines)  # dlt init parses every line
    assert any(Requirement(line).name == "sqlglot" for line in source_lines)
