"""Column controls for personal data: drop named columns of a table, or replace their values
with a keyed hash, before a row is handed to dlt (so before anything is written: extract
files, load packages, the destination, state).

Both settings map a table to the columns it controls, as they read in `.dlt/config.toml`:

    drop_columns = {tickets = ["description"], ticket_comments = ["body", "html_body", "plain_body"]}
    hash_columns = {users = ["email"]}

A mapping rather than `"table.column"` strings because the table is the unit a reader
thinks in (one line per table), because a column may itself be a dotted path
(`via.source.from.address`, `events.body`: dots step into objects, and into every item of a
list), which a `table.column` string would make ambiguous, and because the table names are
the mapping's keys: unknown ones are refused at source build with one line naming the
tables that exist. A column is named as the row holds it once shaped for its table: the
Zendesk field name, or the `custom_<name>` column a custom field becomes.

The hash is HMAC-SHA256 under the secret `sources.zendesk.hash_key` (resolved by dlt's
secrets providers like the credentials, never logged or kept in state), hex text: the same value under the same key always gives the
same hash, so joins on a hashed column still work (`users.email` with an email held
elsewhere, hashed under the same key), while nobody without the key can test a guess. A
string is hashed as it is, any other value as its JSON text (`42` and `"42"` hash alike);
NULL stays NULL. A hashed column is text whatever its type was.

Why here and not with dlt's own tools: dlt 1.31 has no column-dropping or hashing hint, and
`add_map` on a resource runs once per resource, where the source's shared readers hand one
page to several tables; shaping a table's rows (`resources.table_rows`) is the one place
every table, every run path (plain call, script, batches, per-ticket audits) goes through.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

import dlt

from ..config import is_placeholder
from ..errors import ZendeskConfigError

logger = logging.getLogger(__name__)

#: Where the hash key is read from: any of dlt's secrets providers (secrets.toml, the env
#: var SOURCES__ZENDESK__HASH_KEY, a vault). One key for every account of a deployment, so
#: hashes join across accounts too.
HASH_KEY = "sources.zendesk.hash_key"

Path = Tuple[str, ...]
ColumnSetting = Optional[Mapping[str, Union[str, Sequence[str]]]]

DROP = "drop"
HASH = "hash"


def configured_hash_key() -> Optional[str]:
    """The hash key from dlt's secrets, or None when unset or still a placeholder.

    Read on demand and not a source argument: dlt init writes every secret argument of a
    source into each new project's secrets.toml as `<configure me>`, and dlt warns about
    that placeholder on every run, also in the many projects that hash nothing."""
    value = dlt.secrets.get(HASH_KEY)
    if value is None or is_placeholder(str(value)):
        return None
    return str(value)


def _paths(setting_name: str, setting: ColumnSetting, tables: Sequence[str]) -> Dict[str, List[Path]]:
    """The setting as table -> column paths; ZendeskConfigError (one line) when malformed."""
    if not setting:
        return {}
    if not isinstance(setting, Mapping):
        raise ZendeskConfigError(
            f'{setting_name} must map tables to column lists, as in {setting_name} = {{tickets = ["description"]}}.'
        )
    unknown = [str(table) for table in setting if table not in tables]
    if unknown:
        raise ZendeskConfigError(
            f"{setting_name} names unknown table(s): {', '.join(unknown)}. Choose from: {', '.join(tables)}."
        )
    paths: Dict[str, List[Path]] = {}
    for table, columns in setting.items():
        names = [columns] if isinstance(columns, str) else columns
        if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
            raise ZendeskConfigError(f"{setting_name}.{table} must be a list of column names.")
        for name in names:
            path = tuple(name.split("."))
            if not all(part.strip() for part in path):
                raise ZendeskConfigError(f"{setting_name}.{table} has an empty column name or path step: '{name}'.")
            paths.setdefault(table, []).append(path)
    return paths


class ColumnControls:
    """The drop and hash controls of one source: applied to each table's rows and column
    hints. Built once per source (`from_settings` validates); safe across reader threads."""

    def __init__(self, controls: Optional[Dict[str, List[Tuple[Path, str]]]] = None, key: Optional[bytes] = None) -> None:
        self._controls = controls or {}
        self._key = key
        self._checked: Set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"ColumnControls(tables={sorted(self._controls)})"

    @classmethod
    def from_settings(
        cls,
        drop_columns: ColumnSetting,
        hash_columns: ColumnSetting,
        hash_key: Optional[str],
        tables: Sequence[str],
    ) -> "ColumnControls":
        """Validate the settings against the registry's tables; ZendeskConfigError names
        what to fix (an unknown table, a hash setting without its key, a column both
        dropped and hashed)."""
        dropped = _paths("drop_columns", drop_columns, tables)
        hashed = _paths("hash_columns", hash_columns, tables)
        if hashed and not hash_key:
            raise ZendeskConfigError(
                "hash_columns is set but hash_key is not: put hash_key under [sources.zendesk] in"
                " .dlt/secrets.toml (or SOURCES__ZENDESK__HASH_KEY)."
            )
        controls: Dict[str, List[Tuple[Path, str]]] = {}
        for table in dict.fromkeys([*dropped, *hashed]):
            both = set(dropped.get(table, ())) & set(hashed.get(table, ()))
            if both:
                names = ", ".join(sorted(".".join(path) for path in both))
                raise ZendeskConfigError(f"{table}: column(s) {names} are both dropped and hashed; choose one.")
            controls[table] = [(p, DROP) for p in dropped.get(table, ())] + [(p, HASH) for p in hashed.get(table, ())]
        return cls(controls, str(hash_key).encode() if hashed else None)

    def hash_value(self, value: Any) -> Optional[str]:
        """The keyed hash of a value as hex text; NULL stays NULL."""
        if value is None:
            return None
        assert self._key is not None, "hashing without a key"
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def rows(self, table: str, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """`rows` with the table's controlled columns dropped or hashed. Rows and the objects
        on a controlled path are copied, never changed: a shared reader hands the same
        page to several tables."""
        controls = self._controls.get(table)
        if not controls or not rows:
            return rows
        self._warn_absent(table, rows, controls)
        for path, action in controls:
            rows = self._apply(rows, path, action)
        return rows

    def column_hints(self, table: str, hints: Dict[str, Any]) -> Dict[str, Any]:
        """The table's declared column hints without the dropped columns (a declared column
        would be created empty) and with the hashed ones typed text (a custom field's
        declared `bigint` would not hold a hash). Columns without a hint get none: a hash
        is inferred as text, and a table whose rows need no hints keeps yielding plain
        lists."""
        controls = self._controls.get(table)
        if not controls or not hints:
            return hints
        hints = dict(hints)
        for path, action in controls:
            name = path[0]
            if len(path) != 1 or name not in hints:
                continue
            if action == DROP:
                del hints[name]
            else:
                hints[name] = {"name": name, "data_type": "text", "nullable": True}
        return hints

    def _apply(self, node: Any, path: Path, action: str) -> Any:
        if isinstance(node, list):
            return [self._apply(item, path, action) for item in node]
        if not isinstance(node, dict) or path[0] not in node:
            return node
        copied = dict(node)
        if len(path) > 1:
            copied[path[0]] = self._apply(node[path[0]], path[1:], action)
        elif action == DROP:
            del copied[path[0]]
        else:
            copied[path[0]] = self.hash_value(node[path[0]])
        return copied

    def _warn_absent(self, table: str, rows: List[Dict[str, Any]], controls: List[Tuple[Path, str]]) -> None:
        """Once per table and source: name the controlled columns the first rows lack
        (a misspelling, or a field Zendesk has not sent yet, so a warning, not an error)."""
        with self._lock:
            if table in self._checked:
                return
            self._checked.add(table)
        for path, action in controls:
            if not _present(rows, path):
                logger.warning(
                    "%s_columns: table %s has no column '%s' in the rows Zendesk sent; check the name"
                    " (a field Zendesk has not sent yet is controlled once it comes)",
                    action,
                    table,
                    ".".join(path),
                )


def _present(node: Any, path: Path) -> bool:
    if isinstance(node, list):
        return any(_present(item, path) for item in node)
    if not isinstance(node, dict) or path[0] not in node:
        return False
    return len(path) == 1 or _present(node[path[0]], path[1:])
