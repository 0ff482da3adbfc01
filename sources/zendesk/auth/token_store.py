"""Where rotated OAuth tokens live between runs: one small JSON file, written atomically.

Zendesk invalidates a refresh token the moment it is used and answers with a new pair,
so the new pair must reach durable storage before anything else happens: a connector
that loses it locks its user out until someone signs in again.

The store is a file of its own, *outside the destination* (never in a dataset, a
pipeline's state or version control): the destination may be shared, replaced or
rolled back, and a rolled-back refresh token is a dead one. The default location is
`zendesk_tokens.json` in dlt's data dir (`DLT_DATA_DIR`, else dlt's per-user default,
`~/.dlt` for most users), beside the rate state (`<data dir>/zendesk/rate`); set
`token_store_path` to use another file, and use one file per account and OAuth client.
The setting's default value, `~/.dlt/zendesk_tokens.json` (and the per-account
`~/.dlt/zendesk_tokens_<account>.json`), names that default: releases before 2026-12
wrote the file there whatever `DLT_DATA_DIR` said, so while the data dir holds no store
yet, a store found at the old path is read (with a note) and the next save writes the
rotated pair to the data dir: an upgrade never loses the refresh token.

Guarantees:

- `save` writes a temp file in the same directory (created mode 0600), flushes and
  fsyncs it, `os.replace`s it over the store and fsyncs the directory: after a crash at
  any point the store is either the complete old file or the complete new one;
- a temp file left by a crash is never read (`load` reads only the store itself), and
  is removed by the next `save` or, once stale, by the next `load`;
- `locked()` serializes load-refresh-save across the threads of a process and, where
  `fcntl` exists (Linux, macOS), across processes sharing the file, so two runs never
  both spend the same refresh token.

A file locks only the processes of one machine. When runs of one account land on
different machines (an Airflow deployment with several workers), each would hold its own
copy of the pair and the first rotation would kill the others' copies (`invalid_grant`).
`token_store_path = "postgresql://..."` keeps the pair in a Postgres table instead
(`token_store_pg.py`): every worker reaches it, and an advisory lock serializes
load-refresh-save across hosts. `stores.open_token_store(location)` picks the kind from
the location, so callers never name the kind; both offer `load`, `save`, `locked`,
`check_writable` and `path` (where the store is, for messages; never a password).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from ..errors import ZendeskConfigError

try:  # POSIX only; elsewhere the store is guarded by the in-process lock alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_STORE_PATH = "~/.dlt/zendesk_tokens.json"
"""Default `token_store_path`: stands for `zendesk_tokens.json` in dlt's data dir (see the
module docstring), outside any destination."""

_DEFAULT_DIR = "~/.dlt/"
_DEFAULT_NAME = re.compile(r"^zendesk_tokens(_[A-Za-z0-9_.-]+)?\.json$")


def default_store_file(location: str) -> Optional[Tuple[Path, Path]]:
    """(where the store lives, where older releases kept it) for a default-form location
    (`~/.dlt/zendesk_tokens[_<account>].json`); None for any other location."""
    if not location.startswith(_DEFAULT_DIR) or not _DEFAULT_NAME.match(location[len(_DEFAULT_DIR):]):
        return None
    import dlt

    name = location[len(_DEFAULT_DIR):]
    return Path(dlt.current.run_context().data_dir).absolute() / name, Path(os.path.expanduser(location)).absolute()

FILE_MODE = 0o600
DIR_MODE = 0o700
STORE_VERSION = 1
#: A temp file older than this cannot belong to a save in progress (a save takes milliseconds).
STALE_TEMP_SECONDS = 600.0


@dataclass(frozen=True, repr=False)
class TokenSet:
    """One OAuth token pair and what it belongs to.

    Attributes:
        access_token: The bearer token; None when only a refresh token is known.
        refresh_token: The refresh token, single use under Zendesk's rotation.
        expires_at: When the access token expires (Unix epoch seconds); None: unknown or never.
        issued_at: When the access token was issued (epoch); lets the refresh margin adapt
            to short lifetimes.
        token_url: The token endpoint that issued the pair: binds the store to one account.
        client_id: The OAuth client the pair was issued to.
    """

    access_token: Optional[str]
    refresh_token: Optional[str]
    expires_at: Optional[float] = None
    issued_at: Optional[float] = None
    token_url: Optional[str] = None
    client_id: Optional[str] = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={'***' if self.access_token else None},"
            f" refresh_token={'***' if self.refresh_token else None},"
            f" expires_at={self.expires_at!r}, token_url={self.token_url!r},"
            f" client_id={self.client_id!r})"
        )

    __str__ = __repr__

    def bound_to(self, token_url: str, client_id: str) -> "TokenSet":
        return replace(self, token_url=token_url, client_id=client_id)

    def to_json(self) -> Dict[str, Any]:
        return {"version": STORE_VERSION, **asdict(self), "saved_at": time.time()}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TokenSet":
        def number(key: str) -> Optional[float]:
            value = data.get(key)
            return None if value is None else float(value)

        def text(key: str) -> Optional[str]:
            value = data.get(key)
            return None if value in (None, "") else str(value)

        return cls(
            access_token=text("access_token"),
            refresh_token=text("refresh_token"),
            expires_at=number("expires_at"),
            issued_at=number("issued_at"),
            token_url=text("token_url"),
            client_id=text("client_id"),
        )


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_location(location: Union[str, "os.PathLike[str]"]) -> bool:
    """True for a `postgresql://` (or `postgres://`) store location."""
    return isinstance(location, str) and location.strip().lower().startswith(POSTGRES_SCHEMES)


class TokenStore:
    """A JSON file holding one `TokenSet`, replaced atomically on every save.

    Also the interface of every store kind: `PostgresTokenStore` (`token_store_pg.py`)
    overrides `load`, `save`, `locked`, `check_writable` and `path`, so every caller
    handles both kinds through this one interface. `stores.open_token_store` picks the kind.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        if is_postgres_location(path):  # a file named "postgresql:..." would hide the mistake
            raise ValueError("A Postgres token store location is opened with stores.open_token_store.")
        if not str(path).strip():
            raise ZendeskConfigError(
                "token_store_path is empty. Set it to a file outside the destination, for"
                f" example {DEFAULT_TOKEN_STORE_PATH}."
            )
        default = default_store_file(str(path).strip())
        self.path = default[0] if default else Path(os.path.expanduser(str(path))).absolute()
        #: The store of an older release to read while `path` holds none (see the module docstring).
        self.legacy_path: Optional[Path] = default[1] if default and default[1] != default[0] else None
        self._legacy_noted = False
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._lock_fd: Optional[int] = None

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    @property
    def _temp_prefix(self) -> str:
        return f".{self.path.name}."

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # --- reading -------------------------------------------------------------------------

    def load(self) -> Optional[TokenSet]:
        """The stored tokens, or None when there is no store yet.

        Only the store file itself is read: a temp file half-written by a crashed save is
        ignored (and deleted once stale). Raises `ZendeskConfigError` for a store that is
        not ours to read (not JSON, or another format): never guesses over it.
        """
        self._remove_temp_files(older_than=STALE_TEMP_SECONDS)
        source = self.path
        if self.legacy_path is not None and not self.path.exists() and self.legacy_path.exists():
            source = self.legacy_path
            if not self._legacy_noted:
                self._legacy_noted = True
                logger.warning(
                    "Reading the OAuth tokens from %s, where earlier releases kept them; the next"
                    " rotation writes them to %s (dlt's data dir), which is used from then on.",
                    self.legacy_path, self.path,
                )
        try:
            raw = source.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ZendeskConfigError(
                f"Cannot read the OAuth token store at {source} ({exc.strerror or type(exc).__name__})."
                " Fix its permissions or set token_store_path to another file."
            ) from None
        if source == self.path:
            self._tighten_mode()
        if not raw.strip():
            raise ZendeskConfigError(
                f"The OAuth token store at {source} is empty (a save was cut short, or it was"
                " emptied by hand). Run `python zendesk_pipeline.py authorize` to sign in again,"
                " or set refresh_token."
            )
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
                raise ValueError("unexpected layout")
            return TokenSet.from_json(data)
        except (ValueError, UnicodeDecodeError, TypeError):
            raise ZendeskConfigError(
                f"The OAuth token store at {source} is not a token file this connector wrote"
                " (it cannot be parsed). Move it away and run `python zendesk_pipeline.py"
                " authorize` to sign in again."
            ) from None

    # --- writing -------------------------------------------------------------------------

    def save(self, tokens: TokenSet) -> None:
        """Replace the store with `tokens` atomically (temp file, fsync, rename, fsync dir).

        A crash at any point leaves either the complete old store or the complete new one.
        Raises OSError when the file cannot be written; the old store is then untouched.
        """
        data = json.dumps(tokens.to_json(), indent=2, sort_keys=True).encode("utf-8")
        with self.locked():
            self._ensure_dir()
            self._remove_temp_files(older_than=None)
            temp = self._write_temp(data)
            try:
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            self._fsync_dir()

    def check_writable(self) -> None:
        """Fail before a refresh token is spent if the new one could not be saved.

        Raises `ZendeskConfigError` naming the path when the directory cannot be created
        or a file cannot be written in it.
        """
        try:
            self._ensure_dir()
            temp = self._write_temp(b"{}")
            os.unlink(temp)
        except OSError as exc:
            raise ZendeskConfigError(
                f"Cannot write the OAuth token store at {self.path}"
                f" ({exc.strerror or type(exc).__name__}). Zendesk invalidates a refresh token as"
                " soon as it is used, so the connector does not refresh until it can save the"
                " new one. Fix the directory's permissions or set token_store_path to a"
                " writable file outside the destination."
            ) from None

    def _write_temp(self, data: bytes) -> str:
        temp = str(self.path.with_name(f"{self._temp_prefix}{secrets.token_hex(8)}.tmp"))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, FILE_MODE)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        os.close(fd)
        return temp

    def _ensure_dir(self) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            os.makedirs(parent, mode=DIR_MODE, exist_ok=True)

    def _fsync_dir(self) -> None:
        """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
        try:
            fd = os.open(str(self.path.parent), os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _remove_temp_files(self, older_than: Optional[float]) -> None:
        parent = self.path.parent
        try:
            names = os.listdir(parent)
        except OSError:
            return
        now = time.time()
        for name in names:
            if not (name.startswith(self._temp_prefix) and name.endswith(".tmp")):
                continue
            leftover = parent / name
            with contextlib.suppress(OSError):
                if older_than is None or now - leftover.stat().st_mtime > older_than:
                    leftover.unlink()
                    logger.debug("Removed a temp file left by an interrupted token save: %s", leftover)

    def _tighten_mode(self) -> None:
        if os.name != "posix":
            return
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.path, FILE_MODE)
                logger.warning(
                    "The OAuth token store %s was readable by other users (mode %o); it is now 0600.",
                    self.path,
                    mode,
                )

    # --- locking -------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store for a load-refresh-save sequence; re-entrant within a thread."""
        with self._thread_lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    self._lock_fd = self._acquire_file_lock()
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    fd, self._lock_fd = self._lock_fd, None
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    def _acquire_file_lock(self) -> Optional[int]:
        if fcntl is None:
            return None
        try:
            self._ensure_dir()
            fd = os.open(str(self.lock_path), os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError:
            # An unwritable directory surfaces in check_writable()/save() with a clear message.
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            return None
        return fd
