"""A satisfaction rating offered before the cursor and answered after it is picked up,
whether Zendesk's `start_time` filters on the rating's update or on its creation."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from tests.helpers import query, source_args
from zendesk_fake import FakeZendesk
from zendesk_fake.generator import iso, iso_to_epoch
from zendesk import zendesk_support

HOUR = 3600


@pytest.mark.parametrize("time_field", ["updated_at", "created_at"])
def test_a_rating_answered_after_the_cursor_is_loaded(
    time_field: str, fake: FakeZendesk, make_pipeline: Callable[..., Any]
) -> None:
    fake.configure(satisfaction_time_field=time_field)
    ratings = fake.account.satisfaction_ratings
    newest = max(iso_to_epoch(r["updated_at"]) for r in ratings)
    offered = ratings[0]
    offered.update({"score": "offered", "comment": None, "created_at": iso(newest - HOUR), "updated_at": iso(newest - HOUR)})
    fake.refresh()
    pipeline = make_pipeline("ratings")
    args = source_args(fake)
    pipeline.run(zendesk_support(**args).with_resources("satisfaction_ratings")).raise_on_failed_jobs()
    assert query(pipeline, f"select score from {{t:satisfaction_ratings}} where id = {offered['id']}") == [("offered",)]

    # The customer answers: the rating changes after the cursor, its creation stays before it.
    offered.update({"score": "good", "comment": "Thanks!", "updated_at": iso(int(time.time()) - 2 * 60)})
    fake.refresh()
    pipeline.run(zendesk_support(**args).with_resources("satisfaction_ratings")).raise_on_failed_jobs()

    assert query(pipeline, f"select score, comment from {{t:satisfaction_ratings}} where id = {offered['id']}") == [
        ("good", "Thanks!")
    ]
    assert query(pipeline, "select count(*) from {t:satisfaction_ratings}") == [(len(ratings),)]
