"""`python -m zendesk_fake` starts a server, prints where it is, and serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def test_cli_prints_base_url_and_credentials_then_serves() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "zendesk_fake", "--tickets", "30", "--seed", "4", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url), base_url
        credentials = {}
        for line in iter(process.stdout.readline, ""):
            if line.startswith("Serving"):
                break
            name, _, value = line.partition(":")
            credentials[name.strip()] = value.split()[0]
        response = requests.get(base_url + "/api/v2/users/me.json",
                                auth=(f"{credentials['email']}/token", credentials["api_token"]), timeout=10)
        assert response.status_code == 200 and response.json()["user"]["role"] == "admin"
        bearer = requests.get(base_url + "/api/v2/groups", timeout=10,
                              headers={"Authorization": f"Bearer {credentials['oauth_token']}"})
        assert bearer.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
