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
