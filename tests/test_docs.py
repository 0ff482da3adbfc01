"""The documentation's table lists are the registry's: docs/tables.md is exactly what
`tools/tables_doc.py` makes of it, and the README's marked list names every table once."""

from __future__ import annotations

import re
from pathlib import Path

from tools.tables_doc import DOC, render
from zendesk import TABLE_NAMES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_tables_doc_is_generated_from_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "docs/tables.md is stale: run `python -m tools.tables_doc`"


def test_tables_doc_has_a_section_per_table() -> None:
    assert re.findall(r"^## (\w+)$", render(), re.MULTILINE) == TABLE_NAMES


def test_readme_lists_exactly_the_registrys_tables() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- tables -->", 1)[1].split("<!-- /tables -->", 1)[0]
    names = re.findall(r"^- `(\w+)`", block, re.MULTILINE)
    assert names == TABLE_NAMES, "README.md's <!-- tables --> list differs from the registry"


CONFIGURATION = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SCRIPT = Path(__file__).resolve().parent.parent / "sources" / "zendesk_pipeline.py"


def test_configuration_page_lists_every_setting_of_the_source_and_the_script() -> None:
    """A setting added to `zendesk_support`, to a credentials kind or to the script must be
    documented in docs/configuration.md."""
    import inspect

    from zendesk import zendesk_support
    from zendesk.auth import credentials

    text = CONFIGURATION.read_text(encoding="utf-8")
    settings = list(inspect.signature(zendesk_support).parameters)
    kinds = [
        credentials.ZendeskOAuthRefreshCredentials,
        credentials.ZendeskOAuthClientCredentials,
        credentials.ZendeskOAuthTokenCredentials,
        credentials.ZendeskApiTokenCredentials,
    ]
    fields = [name for kind in kinds for name in kind.__dataclass_fields__ if not name.startswith("_")]
    flags = re.findall(r'add_argument\(\s*"(--[a-z-]+)"', SCRIPT.read_text(encoding="utf-8"))
    assert len(settings) > 10 and fields and len(flags) > 5, "nothing to check: the test would prove nothing"
    missing = [name for name in settings + fields + flags if f"`{name}`" not in text]
    assert missing == [], f"docs/configuration.md does not list: {missing}"
