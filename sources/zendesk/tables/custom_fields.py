"""Custom ticket, user and organization fields as real, typed columns.

Zendesk returns ticket custom fields as `custom_fields: [{id, value}]` and user and
organization fields as `user_fields` / `organization_fields: {key: value}`. Each is
pivoted into one top-level column per field, typed from the field definitions
(`/ticket_fields`, `/user_fields`, `/organization_fields`).

Column names are readable (`custom_` + the field's title or key) and are assigned once,
the first time a field is seen, then kept in the source state: renaming a field in
Zendesk does not fork its column, and two fields with the same title never share one
(the second gets its id appended). A field created between two runs becomes a new
column on the next run, with no reset.

Zendesk's own records carry fields that start with `custom_` too (`custom_status_id` on
tickets, `custom_role_id` on users), so the prefix alone cannot keep the two apart: every
native column name of the table is reserved (the documented ones and every top-level key
the API has returned), and a custom field whose name would take one gets its id
appended instead. Native columns always win: a field that took a name before Zendesk
started sending a native field of that name is moved to a new column, with a warning.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import AbstractSet, Any, Dict, Iterable, Mapping, MutableMapping, Optional, Set, Tuple

from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.typing import TColumnSchema

_naming = NamingConvention()

logger = logging.getLogger(__name__)

COLUMN_PREFIX = "custom_"

#: Zendesk field type -> dlt data type. Types not listed are loaded as dlt infers them.
FIELD_TYPES: Dict[str, str] = {
    "text": "text",
    "textarea": "text",
    "regexp": "text",
    "partialcreditcard": "text",
    "tagger": "text",
    "dropdown": "text",
    "checkbox": "bool",
    "integer": "bigint",
    "lookup": "bigint",
    "decimal": "double",
    "date": "date",
    "multiselect": "json",
}

#: Where each kind keeps its values on a record, and what names a field.
SOURCE_ATTRIBUTE = {"ticket": "custom_fields", "user": "user_fields", "organization": "organization_fields"}


def _coerce(value: Any, data_type: str) -> Any:
    """Cast Zendesk's loosely typed values ("745", "12.50", "true") to the column type.

    A value that does not fit is kept as sent, so dlt stores it in a variant column
    instead of the run failing (this happens when a field's type is changed).
    """
    if value is None or value == "":
        return None
    try:
        if data_type == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                return value
            return bool(value)
        if data_type == "bigint":
            if isinstance(value, bool):
                return value
            return int(value) if not isinstance(value, float) or value.is_integer() else value
        if data_type == "double":
            return float(value)
        if data_type == "date":
            day = str(value)[:10]
            date.fromisoformat(day)
            return day
        if data_type == "json":
            return value if isinstance(value, (list, dict)) else [value]
        if data_type == "text" and not isinstance(value, str):
            return str(value)
    except (TypeError, ValueError):
        return value
    return value


class FieldCatalog:
    """The custom fields of one kind: their columns, types and how to pivot a record."""

    def __init__(
        self,
        kind: str,
        definitions: Iterable[Mapping[str, Any]],
        columns_state: MutableMapping[str, str],
        column_types: Optional[Mapping[str, str]] = None,
        native_columns: Iterable[str] = (),
    ) -> None:
        """`column_types`: types the columns already have in the destination; they win
        over the field's current type, so a type change never re-declares a column.
        `native_columns`: the table's own column names (any spelling; normalized here),
        which no custom field may take."""
        self.kind = kind
        self.attribute = SOURCE_ATTRIBUTE[kind]
        self.native: AbstractSet[str] = {_naming.normalize_identifier(name) for name in native_columns}
        # field identity (ticket: id; user/organization: key) -> (column, dlt type)
        self._fields: Dict[str, Tuple[str, Optional[str]]] = {}
        self._release_native_names(columns_state)
        taken = set(columns_state.values()) | set(self.native)
        for definition in definitions:
            zendesk_type = str(definition.get("type") or "")
            if kind == "ticket" and zendesk_type not in FIELD_TYPES:
                continue  # system fields (subject, status, ...) are ordinary ticket columns
            identity = self._identity(definition)
            if identity is None:
                continue
            column = columns_state.get(identity)
            if column is None:
                column = self._new_column(definition, identity, taken)
                columns_state[identity] = column
                taken.add(column)
            declared = (column_types or {}).get(column) or FIELD_TYPES.get(zendesk_type)
            self._fields[identity] = (column, declared)

    def _release_native_names(self, columns_state: MutableMapping[str, str]) -> None:
        """Forget stored names that are native columns (Zendesk added the field after we
        named a custom column so, or an older version named it): the field gets a new
        name, the native column keeps its values."""
        for identity, column in list(columns_state.items()):
            if column in self.native:
                logger.warning(
                    "%s custom field %s was loaded as column %s, which is a native %s column;"
                    " it moves to a new column",
                    self.kind,
                    identity,
                    column,
                    self.kind,
                )
                del columns_state[identity]

    def _identity(self, definition: Mapping[str, Any]) -> Optional[str]:
        value = definition.get("id") if self.kind == "ticket" else definition.get("key")
        return None if value is None else str(value)

    def _new_column(self, definition: Mapping[str, Any], identity: str, taken: Set[str]) -> str:
        label = definition.get("title") if self.kind == "ticket" else definition.get("key")
        base = _naming.normalize_identifier(f"{COLUMN_PREFIX}{label or identity}")
        column, attempt = base, 1
        while column in taken:
            suffix = identity if attempt == 1 else f"{identity}_{attempt}"
            column = _naming.normalize_identifier(f"{base}_{suffix}")
            attempt += 1
        return column

    def column_hints(self) -> Dict[str, TColumnSchema]:
        """dlt column hints for every typed custom field known this run."""
        return {
            column: {"name": column, "data_type": data_type, "nullable": True}  # type: ignore[typeddict-item]
            for column, data_type in self._fields.values()
            if data_type is not None
        }

    def column_for(self, identity: Any) -> Tuple[str, Optional[str]]:
        found = self._fields.get(str(identity))
        if found is not None:
            return found
        # A field created after the definitions were read: still its own column, untyped.
        column = _naming.normalize_identifier(f"{COLUMN_PREFIX}{identity}")
        if column in self.native:
            column = _naming.normalize_identifier(f"{column}_{identity}")
        return column, None

    def pivot(self, record: Dict[str, Any]) -> Dict[str, Any]:
        """Move the record's custom values into typed top-level columns (in place)."""
        values = record.pop(self.attribute, None)
        if self.kind == "ticket":
            record.pop("fields", None)  # Zendesk's duplicate of custom_fields
            pairs: Iterable[Tuple[Any, Any]] = (
                (item.get("id"), item.get("value")) for item in values or () if isinstance(item, dict)
            )
        else:
            pairs = (values or {}).items() if isinstance(values, dict) else ()
        for identity, value in pairs:
            column, data_type = self.column_for(identity)
            record[column] = _coerce(value, data_type) if data_type else value
        return record
