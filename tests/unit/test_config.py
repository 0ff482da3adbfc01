"""config.py: subdomain, base_url and start_date validation."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from zendesk.config import normalize_subdomain, parse_start_date, resolve_base_url
from zendesk.errors import ZendeskConfigError

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("acme", id="bare"),
        pytest.param("ACME", id="upper-case"),
        pytest.param("  acme  ", id="surrounding-spaces"),
        pytest.param("acme.zendesk.com", id="host"),
        pytest.param("https://acme.zendesk.com/agent", id="url-with-path"),
        pytest.param("https://ACME.zendesk.com", id="url-upper-case"),
        pytest.param("acme.zendesk.com/agent/tickets", id="host-with-path"),
    ],
)
def test_subdomain_forms_normalize_to_prefix(value: str) -> None:
    assert normalize_subdomain(value) == "acme"


def test_subdomain_with_hyphen_and_digits_is_kept() -> None:
    assert normalize_subdomain("acme-2") == "acme-2"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("acme corp", id="space"),
        pytest.param("acme.example.com", id="foreign-host"),
        pytest.param("https://acme.example.com", id="foreign-url"),
        pytest.param("-acme", id="leading-hyphen"),
        pytest.param("acme_corp", id="underscore"),
    ],
)
def test_bad_subdomain_is_refused_with_guidance(value: str) -> None:
    with pytest.raises(ZendeskConfigError) as info:
        normalize_subdomain(value)
    message = str(info.value)
    assert value in message
    assert "'acme' for https://acme.zendesk.com" in message


@pytest.mark.parametrize(
    "value",
    [pytest.param(None, id="none"), pytest.param("", id="empty"), pytest.param("   ", id="blank")],
)
def test_missing_subdomain_names_the_setting(value: object) -> None:
    with pytest.raises(ZendeskConfigError) as info:
        normalize_subdomain(value)  # type: ignore[arg-type]
    message = str(info.value)
    assert "not set" in message
    assert "sources.zendesk.subdomain" in message
    assert "SOURCES__ZENDESK__SUBDOMAIN" in message


# --- base_url -------------------------------------------------------------------------


def test_no_base_url_means_the_official_host() -> None:
    assert resolve_base_url("acme") == "https://acme.zendesk.com"
    assert resolve_base_url("acme", "") == "https://acme.zendesk.com"


@pytest.mark.parametrize(
    "base_url, expected",
    [
        pytest.param("http://127.0.0.1:8123", "http://127.0.0.1:8123", id="ipv4-loopback"),
        pytest.param("http://127.0.0.1:8123/", "http://127.0.0.1:8123", id="ipv4-trailing-slash"),
        pytest.param("http://localhost:9000/api", "http://localhost:9000", id="localhost-path-dropped"),
        pytest.param("http://[::1]:8080", "http://[::1]:8080", id="ipv6-loopback"),
        pytest.param("https://127.0.0.1:8443", "https://127.0.0.1:8443", id="https-loopback"),
        pytest.param("https://acme.zendesk.com", "https://acme.zendesk.com", id="official-https"),
        pytest.param("https://acme.zendesk.com/", "https://acme.zendesk.com", id="official-slash"),
    ],
)
def test_allowed_base_urls(base_url: str, expected: str) -> None:
    assert resolve_base_url("acme", base_url) == expected


@pytest.mark.parametrize(
    "base_url, expected_words",
    [
        pytest.param("http://acme.zendesk.com", ["not HTTPS"], id="plain-http-official"),
        pytest.param("https://evil.example.com", ["evil.example.com", "acme.zendesk.com"], id="foreign-host"),
        pytest.param("https://other.zendesk.com", ["other.zendesk.com", "acme.zendesk.com"], id="other-account"),
        pytest.param(
            "https://acme.zendesk.com.evil.example.com",
            ["acme.zendesk.com.evil.example.com"],
            id="suffix-trick",
        ),
        pytest.param("http://127.0.0.1.evil.example.com", ["not HTTPS"], id="loopback-lookalike"),
        pytest.param("ftp://127.0.0.1", ["http://"], id="loopback-bad-scheme"),
    ],
)
def test_refused_base_urls(base_url: str, expected_words: list) -> None:
    with pytest.raises(ZendeskConfigError) as info:
        resolve_base_url("acme", base_url)
    for word in expected_words:
        assert word in str(info.value)


# --- start_date -----------------------------------------------------------------------

JAN_31_2024 = 1706659200  # 2024-01-31T00:00:00Z


@pytest.mark.parametrize(
    "value, expected",
    [
        pytest.param("01/31/2024", JAN_31_2024, id="mm-dd-yyyy"),
        pytest.param("2024-01-31", JAN_31_2024, id="iso-date"),
        pytest.param("2024-01-31T00:00:00Z", JAN_31_2024, id="iso-datetime-z"),
        pytest.param("2024-01-31T02:00:00+02:00", JAN_31_2024, id="iso-datetime-offset"),
        pytest.param("2024-01-31T00:00:30.5Z", JAN_31_2024 + 30, id="iso-fractional"),
        pytest.param(" 2024-01-31 ", JAN_31_2024, id="surrounding-spaces"),
        pytest.param(date(2024, 1, 31), JAN_31_2024, id="date-object"),
        pytest.param(datetime(2024, 1, 31), JAN_31_2024, id="naive-datetime-is-utc"),
        pytest.param(datetime(2024, 1, 31, 1, tzinfo=timezone.utc), JAN_31_2024 + 3600, id="aware-datetime"),
        pytest.param(JAN_31_2024, JAN_31_2024, id="epoch-int"),
        pytest.param(None, 0, id="none-all-history"),
        pytest.param("", 0, id="empty-all-history"),
    ],
)
def test_start_date_forms(value: object, expected: int) -> None:
    assert parse_start_date(value, now=NOW) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("07/01/2025", id="text"),
        pytest.param(date(2025, 6, 16), id="date-object"),
        pytest.param(datetime(2025, 6, 15, 12, 1, tzinfo=timezone.utc), id="one-minute-ahead"),
    ],
)
def test_future_start_date_is_refused(value: object) -> None:
    with pytest.raises(ZendeskConfigError, match="future"):
        parse_start_date(value, now=NOW)  # type: ignore[arg-type]


def test_start_date_today_is_accepted() -> None:
    assert parse_start_date(date(2025, 6, 15), now=NOW) == int(
        datetime(2025, 6, 15, tzinfo=timezone.utc).timestamp()
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("yesterday", id="word"),
        pytest.param("31/01/2024", id="dd-mm-yyyy"),
        pytest.param("2024-13-01", id="month-13"),
    ],
)
def test_garbage_start_date_names_the_formats(value: str) -> None:
    with pytest.raises(ZendeskConfigError) as info:
        parse_start_date(value, now=NOW)
    message = str(info.value)
    assert value in message
    assert "MM/DD/YYYY" in message
    assert "ISO 8601" in message


def test_bool_start_date_is_refused() -> None:
    with pytest.raises(ZendeskConfigError, match="MM/DD/YYYY"):
        parse_start_date(True, now=NOW)  # type: ignore[arg-type]


def test_a_placeholder_subdomain_is_a_missing_setting() -> None:
    from zendesk.errors import ZendeskSettingMissing

    with pytest.raises(ZendeskSettingMissing, match="subdomain is not set"):
        normalize_subdomain("<configure me>")


def test_duckdb_file_and_dataset_of_one_name_clash() -> None:
    from zendesk.config import duckdb_name_clash

    assert duckdb_name_clash("/data/acme.duckdb", "acme")
    assert duckdb_name_clash("zendesk.duckdb", "zendesk")
    assert not duckdb_name_clash("zendesk.duckdb", "zendesk_data")
