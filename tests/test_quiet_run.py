"""A run logs no warning about columns that never received data: Zendesk fields an account
never fills (null in every row) are left out of the rows instead of reaching dlt as nulls
that it cannot type, and warns about on every run."""

from __future__ import annotations

import logging
from typing import Any, List

from tests.helpers import source_args
from tests.helpers.truth import assert_matches_truth
from zendesk import zendesk_support


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_no_column_without_data_is_warned_about_and_the_tables_stay_exact(fake: Any, make_pipeline: Any) -> None:
    collect = Collect()
    pipeline = make_pipeline(name="zd_quiet")  # sets up dlt's logger (at ERROR in the tests)
    logger = logging.getLogger("dlt")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(collect)
    try:
        pipeline.run(zendesk_support(**source_args(fake)))
        fake.mutate(seed=93, fraction=0.05)
        pipeline.run(zendesk_support(**source_args(fake)))
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    unbound = [message.splitlines()[0] for message in collect.messages if "did not receive any data" in message]
    assert unbound == []
    assert_matches_truth(pipeline, fake.ground_truth())
