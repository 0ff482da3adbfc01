"""A fixture server over the recorded payloads."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.contract.fixture_server import FixtureZendesk


@pytest.fixture
def recorded() -> Iterator[FixtureZendesk]:
    server = FixtureZendesk().start()
    try:
        yield server
    finally:
        server.stop()
