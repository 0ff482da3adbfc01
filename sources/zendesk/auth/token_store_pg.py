"""An OAuth token store in a Postgres table, shared by workers on different machines.

Zendesk rotates the refresh token on every refresh and rejects the old one at once. When
one account's runs land on several machines, they must share one copy of the pair and take
turns refreshing it: a file cannot do that across hosts, a database row can.

Location: `postgresql://user@host:5432/db?table=zendesk_oauth_tokens&key=acme`

- `table` (default `zendesk_oauth_tokens`, optionally `schema.table`) is created on first
  save: `store_key text primary key, tokens text, saved_at timestamptz`;
- `key` (default `default`) names the entry: one per account and OAuth client (the
  multi-account settings add the account's name when no key is given);
- any other query parameter (`sslmode`, `connect_timeout`, ...) goes to libpq. Keep the
  password out of the location: libpq reads `PGPASSWORD` or `~/.pgpass`; a password in
  the location is accepted but never shown (`path` and messages hide it).

`locked()` holds a session advisory lock named after the table and key for the whole
load-refresh-save sequence, so two workers never spend the same refresh token; the lock
dies with its connection, so a crashed worker never leaves it held. Each save is one
committed upsert: a reader sees the complete old pair or the complete new one.

Keep the table out of the dataset the connector loads (a dataset may be dropped, replaced
or restored from a backup, and a restored refresh token is a dead one) and grant it only to
the loader's role: it holds live credentials.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import re
import threading
from typing import Any, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ZendeskConfigError
from .token_store import STORE_VERSION, TokenSet, TokenStore

DEFAULT_TABLE = "zendesk_oauth_tokens"
DEFAULT_KEY = "default"
CONNECT_TIMEOUT_SECONDS = 10
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")
STORE_PARAMS = ("table", "key")


def _split_location(location: str) -> Tuple[str, str, str]:
    """(libpq DSN, table, key) of a store location; the DSN keeps libpq's own parameters."""
    parts = urlsplit(location.strip())
    params = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in params if k in STORE_PARAMS}
    libpq = [(k, v) for k, v in params if k not in STORE_PARAMS]
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(libpq), ""))
    return dsn, ours.get("table") or DEFAULT_TABLE, ours.get("key") or DEFAULT_KEY


#: libpq parameters that hold a secret: never shown (libpq accepts `?password=` too).
SECRET_PARAMS = ("password", "sslpassword")


def _shown(location: str) -> str:
    """The location without its password (in the user part or as a parameter), for messages."""
    parts = urlsplit(location.strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SECRET_PARAMS]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(params), ""))


def with_default_key(location: str, key: str) -> str:
    """`location` with `key=<key>` added when it names no key."""
    parts = urlsplit(location.strip())
    params: List[Tuple[str, str]] = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "key" and v for k, v in params):
        return location
    params = [(k, v) for k, v in params if k != "key"] + [("key", key)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), parts.fragment))


class TokenStoreUnavailable(OSError):
    """The database refused a read or write; an OSError, so callers that keep a rotated
    pair in memory when a save fails do so here too."""

    def __init__(self, action: str, where: str, exc: BaseException) -> None:
        detail = str(getattr(exc, "pgerror", None) or exc).strip().splitlines()
        reason = detail[0] if detail else type(exc).__name__
        super().__init__(errno.EIO, f"cannot {action} the token store {where}: {reason}")


class PostgresTokenStore(TokenStore):
    """One `TokenSet` per key in a Postgres table, locked across hosts."""

    def __init__(self, path: str) -> None:
        try:
            import psycopg2  # noqa: F401  (installed with dlt[postgres])
        except ImportError:
            raise ZendeskConfigError(
                "token_store_path is a Postgres location, but psycopg2 is not installed:"
                ' pip install "dlt[postgres]".'
            ) from None
        self._dsn, self.table, self.key = _split_location(path)
        if not TABLE_NAME.match(self.table):
            raise ZendeskConfigError(
                f"The token store table {self.table!r} is not a plain table name (lowercase letters,"
                " digits, '_', optionally 'schema.table')."
            )
        self.path = _shown(path)
        digest = hashlib.blake2b(f"zendesk-token-store\0{self.table}\0{self.key}".encode(), digest_size=8)
        self._lock_id = int.from_bytes(digest.digest(), "big", signed=True)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._held: Optional[Any] = None
        self._owner: Optional[int] = None

    def __repr__(self) -> str:
        return f"PostgresTokenStore({self.path!r})"

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg2

        try:
            connection = psycopg2.connect(
                self._dsn,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="zendesk-token-store",
                keepalives=1,
                keepalives_idle=30,
            )
        except psycopg2.Error as exc:
            raise TokenStoreUnavailable("reach", self.path, exc) from None
        connection.autocommit = True
        return connection

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """The locked connection inside `locked()`, else a short-lived one."""
        if self._held is not None and self._owner == threading.get_ident():
            yield self._held
            return
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    def _table_sql(self) -> Any:
        from psycopg2 import sql

        return sql.SQL(".").join(sql.Identifier(part) for part in self.table.split("."))

    def _create_table(self, cursor: Any) -> None:
        from psycopg2 import sql

        cursor.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (store_key text PRIMARY KEY, tokens text NOT NULL,"
                " saved_at timestamptz NOT NULL DEFAULT now())"
            ).format(self._table_sql())
        )

    # --- reading and writing -------------------------------------------------------------

    def load(self) -> Optional[TokenSet]:
        """The tokens stored under this key, or None (also when the table does not exist yet).

        Raises `ZendeskConfigError` for an entry this connector did not write.
        """
        import psycopg2
        from psycopg2 import errors, sql

        try:
            with self._connection() as connection, connection.cursor() as cursor:
                try:
                    cursor.execute(
                        sql.SQL("SELECT tokens FROM {} WHERE store_key = %s").format(self._table_sql()),
                        (self.key,),
                    )
                except errors.UndefinedTable:
                    return None
                row = cursor.fetchone()
        except psycopg2.Error as exc:
            raise TokenStoreUnavailable("read", self.path, exc) from None
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
                raise ValueError("unexpected layout")
            return TokenSet.from_json(data)
        except (ValueError, TypeError):
            raise ZendeskConfigError(
                f"The OAuth token store entry '{self.key}' in {self.path} is not one this connector"
                " wrote (it cannot be parsed). Delete that row and run `python zendesk_pipeline.py"
                " authorize` to sign in again."
            ) from None

    def save(self, tokens: TokenSet) -> None:
        """Upsert the pair in one committed statement (under the lock).

        Raises `TokenStoreUnavailable` (an OSError) when the database refuses; the stored
        pair is then untouched.
        """
        import psycopg2
        from psycopg2 import sql

        document = json.dumps(tokens.to_json(), sort_keys=True)
        with self.locked():
            try:
                with self._connection() as connection, connection.cursor() as cursor:
                    self._create_table(cursor)
                    cursor.execute(
                        sql.SQL(
                            "INSERT INTO {} (store_key, tokens, saved_at) VALUES (%s, %s, now())"
                            " ON CONFLICT (store_key) DO UPDATE SET tokens = EXCLUDED.tokens,"
                            " saved_at = EXCLUDED.saved_at"
                        ).format(self._table_sql()),
                        (self.key, document),
                    )
            except psycopg2.Error as exc:
                raise TokenStoreUnavailable("write", self.path, exc) from None

    def check_writable(self) -> None:
        """Fail before a refresh token is spent if the new pair could not be saved."""
        import psycopg2
        from psycopg2 import sql

        try:
            with self.locked(), self._connection() as connection, connection.cursor() as cursor:
                self._create_table(cursor)
                cursor.execute(
                    sql.SQL("SELECT has_table_privilege(%s, 'INSERT, UPDATE')"),
                    (self.table,),
                )
                (allowed,) = cursor.fetchone()
        except (psycopg2.Error, TokenStoreUnavailable) as exc:
            raise ZendeskConfigError(
                f"Cannot write the OAuth token store {self.path} ({exc}). Zendesk invalidates a"
                " refresh token as soon as it is used, so the connector does not refresh until it"
                " can save the new one. Check the database, the role's rights and token_store_path."
            ) from None
        if not allowed:
            raise ZendeskConfigError(
                f"The database role may not insert into or update {self.table} ({self.path}); grant"
                " it INSERT and UPDATE, or set token_store_path to a table it may write."
            )

    # --- locking -------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the entry against every worker on every host; re-entrant within a thread."""
        with self._thread_lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    self._held = self._acquire()
                    self._owner = threading.get_ident()
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._held is not None:
                    connection, self._held, self._owner = self._held, None, None
                    with contextlib.suppress(Exception):
                        connection.close()  # ends the session: releases its advisory lock

    def _acquire(self) -> Any:
        import psycopg2

        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", (self._lock_id,))
        except psycopg2.Error as exc:
            connection.close()
            raise TokenStoreUnavailable("lock", self.path, exc) from None
        return connection
