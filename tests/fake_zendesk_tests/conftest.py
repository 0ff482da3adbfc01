"""Shared fakes: one read-only fake per module; tests that change data or switches make their own."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests

from zendesk_fake import FakeZendesk

from .helpers import api_session

SMALL = 120


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeZendesk]:
    """A running fake nobody mutates or reconfigures (module-scoped for speed)."""
    with FakeZendesk(seed=1, tickets=SMALL) as running:
        yield running


@pytest.fixture(scope="module")
def session(fake: FakeZendesk) -> requests.Session:
    return api_session(fake)


@pytest.fixture
def own_fake() -> Iterator[FakeZendesk]:
    """A fresh running fake a test may mutate and reconfigure."""
    with FakeZendesk(seed=3, tickets=SMALL) as running:
        yield running
