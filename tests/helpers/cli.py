"""zendesk_pipeline.py run as a user runs it: in a subprocess, from a folder, with only the
settings given (the fake account's unless overridden)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "zendesk_pipeline.py"
FAST = {"SOURCES__ZENDESK__EXPORT_REQUESTS_PER_MINUTE": "100000", "SOURCES__ZENDESK__MAX_REQUESTS_PER_MINUTE": "100000"}


def cli_env(tmp_path: Path, fake: Any = None, **settings: Optional[str]) -> Dict[str, str]:
    """Environment of a CLI run: nothing inherited from SOURCES__/RUNTIME__, dlt's data dir
    under tmp_path, the fake's subdomain/base URL/token unless overridden (None removes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "RUNTIME__", "DESTINATION__"))}
    env.update(RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(tmp_path / "dlt_data"), **FAST)
    if fake is not None:
        env.update(
            SOURCES__ZENDESK__SUBDOMAIN=fake.subdomain,
            SOURCES__ZENDESK__BASE_URL=fake.base_url,
            SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN=fake.oauth_token,
        )
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_cli(cwd: Path, env: Dict[str, str], *args: str, timeout: int = 120) -> "subprocess.CompletedProcess[str]":
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
