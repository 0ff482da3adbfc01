"""token_store.py: atomic saves, file modes, crash leftovers, locking, no secrets in reprs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

from zendesk.errors import ZendeskConfigError
from zendesk.auth.token_store import DEFAULT_TOKEN_STORE_PATH, STALE_TEMP_SECONDS, TokenSet, TokenStore

OLD = TokenSet("access-old-4f2a", "refresh-old-8e1b", 1_800_000_000.0, 1_799_998_200.0,
               "https://acme.zendesk.com/oauth/tokens", "dlt_connector")
NEW = TokenSet("access-new-0c3d", "refresh-new-a7f9", 1_800_001_800.0, 1_800_000_000.0,
               "https://acme.zendesk.com/oauth/tokens", "dlt_connector")
SECRETS = {"access-old-4f2a", "refresh-old-8e1b", "access-new-0c3d", "refresh-new-a7f9"}
REPO_SOURCES = str(Path(__file__).resolve().parents[2] / "sources")


def temp_files(store: TokenStore) -> List[str]:
    return sorted(p for p in os.listdir(store.path.parent) if p.endswith(".tmp"))


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "dlt_home" / "zendesk_tokens.json")


def test_missing_store_loads_as_none(store: TokenStore) -> None:
    assert store.load() is None


def test_save_then_load_round_trips(store: TokenStore) -> None:
    store.save(OLD)
    assert store.load() == OLD
    store.save(NEW)
    assert store.load() == NEW
    assert temp_files(store) == []


def test_file_is_0600_and_a_new_directory_0700(store: TokenStore) -> None:
    old_umask = os.umask(0o000)  # even a permissive umask must not widen it
    try:
        store.save(OLD)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    store.save(NEW)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_save_fsyncs_the_file_and_the_directory(store: TokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(OLD)
    synced: List[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    order: List[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (spy(fd), order.append("fsync"))[0])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    store.save(NEW)
    assert synced == ["file", "dir"]
    assert order == ["fsync", "replace", "fsync"]  # data durable before the rename


def test_store_is_plain_json_with_a_version(store: TokenStore) -> None:
    store.save(OLD)
    data = json.loads(store.path.read_text())
    assert data["version"] == 1
    assert data["refresh_token"] == OLD.refresh_token and data["expires_at"] == OLD.expires_at


def test_default_path_follows_dlts_data_dir_like_the_rate_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "data"))
    assert TokenStore(DEFAULT_TOKEN_STORE_PATH).path == tmp_path / "data" / "zendesk_tokens.json"
    assert TokenStore("~/.dlt/zendesk_tokens_acme.json").path == tmp_path / "data" / "zendesk_tokens_acme.json"
    assert TokenStore("~/.dlt/my_tokens.json").path == tmp_path / "home" / ".dlt" / "my_tokens.json"  # chosen: kept


def test_a_store_at_the_old_default_path_is_read_until_the_data_dir_holds_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "home" / ".dlt").mkdir(parents=True)
    TokenStore(tmp_path / "home" / ".dlt" / "zendesk_tokens.json").save(OLD)  # written by an older release
    store = TokenStore(DEFAULT_TOKEN_STORE_PATH)
    loaded = store.load()
    assert loaded is not None and loaded.refresh_token == OLD.refresh_token
    assert [r.getMessage() for r in caplog.records if "earlier releases" in r.getMessage()] != []
    store.save(NEW)
    assert (tmp_path / "data" / "zendesk_tokens.json").is_file()
    loaded = TokenStore(DEFAULT_TOKEN_STORE_PATH).load()
    assert loaded is not None and loaded.refresh_token == NEW.refresh_token


def test_empty_path_is_refused() -> None:
    with pytest.raises(ZendeskConfigError, match="token_store_path"):
        TokenStore("  ")


# --- crashes --------------------------------------------------------------------------------


def test_failed_rename_leaves_the_old_store_complete_and_no_temp_file(
    store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(OLD)

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.save(NEW)
    monkeypatch.undo()
    assert store.load() == OLD
    assert temp_files(store) == []


def test_failed_write_leaves_the_old_store_complete(store: TokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save(OLD)

    def full_disk(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError):
        store.save(NEW)
    monkeypatch.undo()
    assert store.load() == OLD
    assert temp_files(store) == []


def test_hard_crash_mid_save_leaves_the_old_store_usable(store: TokenStore) -> None:
    """A real process dies (os._exit: no cleanup, no finally) right before the rename."""
    store.save(OLD)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {REPO_SOURCES!r})
        from zendesk.auth.token_store import TokenSet, TokenStore
        os.replace = lambda src, dst: os._exit(9)
        TokenStore({str(store.path)!r}).save(TokenSet("access-new-0c3d", "refresh-new-a7f9", None))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 9
    leftovers = temp_files(store)
    assert len(leftovers) == 1  # the complete-but-never-renamed temp file
    assert store.load() == OLD  # the next run reads the old pair, ignoring the leftover
    store.save(NEW)  # the next save clears leftovers
    assert temp_files(store) == []
    assert store.load() == NEW


def test_half_written_temp_file_is_ignored_and_cleaned(store: TokenStore) -> None:
    store.save(OLD)
    half = store.path.with_name(f".{store.path.name}.deadbeef.tmp")
    half.write_text('{"version": 1, "access_token": "acc')  # cut off mid-write
    assert store.load() == OLD
    assert half.exists()  # fresh: could belong to a save in progress elsewhere
    old = time.time() - STALE_TEMP_SECONDS - 5
    os.utime(half, (old, old))
    assert store.load() == OLD
    assert not half.exists()  # stale: removed by load


def test_half_written_temp_file_without_any_store(store: TokenStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.with_name(f".{store.path.name}.0123.tmp").write_text("{")
    assert store.load() is None


def test_unparseable_store_is_refused_without_echoing_it(store: TokenStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"refresh_token": "refresh-old-8e1b", ')
    with pytest.raises(ZendeskConfigError, match="authorize") as info:
        store.load()
    assert "refresh-old-8e1b" not in str(info.value)


def test_foreign_json_is_refused(store: TokenStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text('["not", "ours"]')
    with pytest.raises(ZendeskConfigError):
        store.load()


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_store_readable_by_others_is_tightened_with_a_warning(
    store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.save(OLD)
    os.chmod(store.path, 0o644)
    assert store.load() == OLD
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "readable by other users" in caplog.text


def test_check_writable_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    store = TokenStore(tmp_path / "file" / "tokens.json")
    with pytest.raises(ZendeskConfigError, match="Cannot write the OAuth token store") as info:
        store.check_writable()
    assert str(store.path) in str(info.value)
    assert store.load() is None


def test_check_writable_leaves_nothing_behind(store: TokenStore) -> None:
    store.check_writable()
    assert [p for p in os.listdir(store.path.parent) if not p.endswith(".lock")] == []


# --- locking --------------------------------------------------------------------------------


def test_lock_is_reentrant_and_excludes_other_threads(store: TokenStore) -> None:
    events: List[str] = []
    with store.locked():
        with store.locked():
            store.save(OLD)  # save takes the lock again: no deadlock

        def other() -> None:
            with store.locked():
                events.append("other")

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.2)
        events.append("first")
    thread.join(5)
    assert events == ["first", "other"]


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_lock_excludes_another_process(store: TokenStore) -> None:
    store.save(OLD)
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {REPO_SOURCES!r})
        from zendesk.auth.token_store import TokenStore
        print("waiting", flush=True)
        with TokenStore({str(store.path)!r}).locked():
            print(repr(time.time()), flush=True)
        """
    )
    with store.locked():
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "waiting"
        time.sleep(0.5)
        assert child.poll() is None  # still waiting for the lock
        released = time.time()
    out, _ = child.communicate(timeout=60)
    assert float(out) >= released


# --- secrets --------------------------------------------------------------------------------


def test_token_set_repr_and_str_hide_tokens(store: TokenStore) -> None:
    text = repr(OLD) + str(NEW) + repr(store)
    assert not [s for s in SECRETS if s in text]
    assert "***" in repr(OLD) and "dlt_connector" in repr(OLD)
