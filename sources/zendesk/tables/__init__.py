"""The tables: what this source loads and how each table's rows are shaped.

- `registry`: every table declared once (`TABLES`: endpoint, pagination, key, cursor,
  change detection, group), the single source of truth resources, docs, the fake Zendesk
  and the tests derive from;
- `rows`: how a table's rows are made from the records an endpoint returns;
- `custom_fields`: custom ticket, user and organization fields as typed columns;
- `column_controls`: personal-data columns dropped or hashed before dlt sees a row.

The lowest layer above `errors` and `config`: it imports nothing else of the package.
"""
