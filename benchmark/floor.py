"""The benchmark's request floor: the fewest requests a full sync of the tables a run
selects can make, from the fake's table map, for the endpoints that run calls.

Which endpoints a run calls comes from the source's registry: the tables selected (the
defaults when none are named, with the siblings they share an export with), the tables
whose field definitions type their custom columns (one request serves both), and the
parent lists of tables read per parent row. An add-on table a run does not select adds
nothing to its floor."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from zendesk import select_tables
from zendesk.tables.registry import TABLES, TABLES_BY_NAME
from zendesk_fake import FakeZendesk


def tables_read(tables: Optional[Sequence[str]] = None) -> List[str]:
    """The tables whose endpoints a run of `tables` (None: the defaults) calls."""
    selected = select_tables(tables)
    read = list(selected)
    for name in selected:
        spec = TABLES_BY_NAME[name]
        needed = [s.name for s in TABLES if spec.custom_fields and s.defines_custom_fields == spec.custom_fields]
        if spec.per_parent is not None:
            needed.append(spec.per_parent.table)
        read.extend(table for table in needed if table not in read)
    return read


def request_floor(fake: FakeZendesk, tables: Optional[Sequence[str]] = None) -> Dict[str, int]:
    """Per endpoint template, the fewest requests a full sync of `tables` (None: the
    defaults) needs on `fake`'s account now."""
    return fake.minimum_requests(tables_read(tables))
