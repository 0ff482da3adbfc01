"""column_controls.py: the settings' validation (one-line errors at source build), the keyed
hash, and that controlling a table's rows never changes the page its siblings share."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any, Dict, Optional

import pytest

from zendesk import TABLE_NAMES, zendesk_support
from zendesk.tables.column_controls import ColumnControls, configured_hash_key
from zendesk.errors import ZendeskConfigError

KEY = "unit-test-key"


@pytest.mark.parametrize(
    "settings, message",
    [
        pytest.param({"drop_columns": {"tikets": ["description"]}}, "drop_columns names unknown table(s): tikets.",
                     id="unknown-table-drop"),
        pytest.param({"hash_columns": {"agents": ["email"]}, "hash_key": KEY},
                     "hash_columns names unknown table(s): agents.", id="unknown-table-hash"),
        pytest.param({"hash_columns": {"users": ["email"]}}, "hash_columns is set but hash_key is not", id="no-key"),
        pytest.param({"hash_columns": {"users": ["email"]}, "hash_key": ""}, "hash_key is not", id="empty-key"),
        pytest.param({"drop_columns": {"users": ["email"]}, "hash_columns": {"users": ["email"]}, "hash_key": KEY},
                     "users: column(s) email are both dropped and hashed", id="both"),
        pytest.param({"drop_columns": ["tickets.description"]}, "drop_columns must map tables to column lists",
                     id="not-a-mapping"),
        pytest.param({"drop_columns": {"users": [1]}}, "drop_columns.users must be a list of column names",
                     id="not-names"),
        pytest.param({"drop_columns": {"tickets": ["via..address"]}}, "empty column name or path step",
                     id="empty-step"),
    ],
)
def test_bad_settings_fail_with_one_line(settings: Dict[str, Any], message: str) -> None:
    with pytest.raises(ZendeskConfigError) as caught:
        ColumnControls.from_settings(
            settings.get("drop_columns"), settings.get("hash_columns"), settings.get("hash_key"), TABLE_NAMES
        )
    text = str(caught.value)
    assert message in text and "\n" not in text
    if "unknown table" in message:
        assert "Choose from: tickets," in text
    assert KEY not in text


@pytest.mark.parametrize("key", [pytest.param(None, id="unset"), pytest.param("<configure me>", id="placeholder")])
def test_zendesk_support_refuses_hashing_without_a_key_at_build(
    key: Optional[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if key is not None:
        monkeypatch.setenv("SOURCES__ZENDESK__HASH_KEY", key)
    with pytest.raises(ZendeskConfigError, match="hash_key is not"):
        zendesk_support(subdomain="acme", credentials={"oauth_token": "x"}, hash_columns={"users": ["email"]})


def test_the_key_is_read_from_dlt_secrets_only_when_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__ZENDESK__HASH_KEY", KEY)
    assert configured_hash_key() == KEY
    zendesk_support(subdomain="acme", credentials={"oauth_token": "x"}, hash_columns={"users": ["email"]})


def digest(text: str) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_hash_is_hmac_sha256_of_the_text_and_keeps_null() -> None:
    controls = ColumnControls.from_settings(None, {"users": ["email", "phone", "id"]}, KEY, TABLE_NAMES)
    [row] = controls.rows("users", [{"id": 42, "email": "a@b.c", "phone": None, "name": "A"}])
    assert row == {"id": digest("42"), "email": digest("a@b.c"), "phone": None, "name": "A"}
    assert controls.hash_value("42") == controls.hash_value(42), "a join on an id held as text still matches"
    assert KEY not in repr(controls)


def test_rows_are_copied_along_the_path_never_changed() -> None:
    page = [{"id": 1, "body": "secret", "via": {"source": {"from": {"address": "x@y.z"}}},
             "events": [{"body": "secret", "type": "Comment"}, {"type": "Change"}]}]
    before = copy.deepcopy(page)
    controls = ColumnControls.from_settings(
        {"ticket_audits": ["body", "events.body"]}, {"ticket_audits": ["via.source.from.address"]}, KEY, TABLE_NAMES
    )
    [row] = controls.rows("ticket_audits", page)
    assert page == before
    assert "body" not in row and row["events"] == [{"type": "Comment"}, {"type": "Change"}]
    assert row["via"]["source"]["from"]["address"] == controls.hash_value("x@y.z")
    assert controls.rows("tickets", page) is page, "a table without controls is untouched"


def test_hints_drop_dropped_columns_and_type_hashed_ones_text() -> None:
    controls = ColumnControls.from_settings({"tickets": ["custom_notes"]}, {"tickets": ["custom_amount"]}, KEY,
                                            TABLE_NAMES)
    hints = {"custom_notes": {"name": "custom_notes", "data_type": "text"},
             "custom_amount": {"name": "custom_amount", "data_type": "bigint"}}
    assert controls.column_hints("tickets", hints) == {
        "custom_amount": {"name": "custom_amount", "data_type": "text", "nullable": True}
    }
    # a table with no declared hints keeps none: its pages stay plain lists
    assert controls.column_hints("tickets", {}) == {}
    assert controls.column_hints("tickets", {"id": {"name": "id", "data_type": "bigint"}}) == {
        "id": {"name": "id", "data_type": "bigint"}
    }
