"""Settings resolved when a run starts: an orchestrator builds the source while loading its
definitions, often where no secret is set (Dagster's `@dlt_assets`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List

import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from tests.helpers import FAST_LIMITS
from tests.helpers.truth import assert_matches_truth
from zendesk import zendesk_support


def files_under(path: Path) -> List[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_the_source_builds_without_settings_and_writes_nothing(tmp_path: Path) -> None:
    source = zendesk_support()
    assert source.selected_resources
    assert files_under(Path(os.environ["DLT_DATA_DIR"])) == []


def test_missing_settings_fail_the_run_at_its_start_with_dlts_error(fake: Any, make_pipeline: Any) -> None:
    source = zendesk_support(base_url=fake.base_url, **FAST_LIMITS)
    pipeline = make_pipeline(name="zd_missing")
    with pytest.raises(PipelineStepFailed) as caught:
        pipeline.run(source)
    chain: List[BaseException] = [caught.value]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    missing = [e for e in chain if isinstance(e, ConfigFieldMissingException)]
    assert missing and set(missing[0].fields) == {"subdomain", "credentials"}
    message = str(missing[0])
    assert "\n" not in message and "subdomain, credentials" in message and "oauth_token" in message
    assert fake.total_requests() == 0
    assert pipeline.list_completed_load_packages() == []


def test_settings_set_after_the_build_are_read_when_the_run_starts(
    fake: Any, make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = zendesk_support(base_url=fake.base_url, **FAST_LIMITS)  # as a code location loads it
    monkeypatch.setenv("SOURCES__ZENDESK__SUBDOMAIN", fake.subdomain)
    monkeypatch.setenv("SOURCES__ZENDESK__CREDENTIALS__OAUTH_TOKEN", fake.oauth_token)
    pipeline = make_pipeline(name="zd_late")
    pipeline.run(source)
    assert_matches_truth(pipeline, fake.ground_truth())
