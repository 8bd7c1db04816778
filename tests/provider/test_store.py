"""The SQLite store: schema versioning, WAL, transactions and savepoints."""

from __future__ import annotations

import sqlite3

import pytest

from reference_peer.provider.store import SCHEMA_VERSION, SchemaTooNew, Store


def test_new_database_has_current_schema_and_wal(tmp_path):
    store = Store.open(tmp_path / "s.sqlite")
    assert store.schema_version == SCHEMA_VERSION >= 1
    assert store.journal_mode == "wal"
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "users",
        "clients",
        "key_packages",
        "kp_routes",
        "hub_kp_routes",
        "consent_requests",
        "consent_decisions",
        "notify_dedup",
        "outbox",
        "held_rooms",
        "held_items",
        "inbox",
    } <= tables
    store.close()
    assert Store.open(tmp_path / "s.sqlite").schema_version == SCHEMA_VERSION  # reopening migrates nothing


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew):
        Store.open(path)


def test_transaction_rolls_back_on_error_and_nested_savepoint_only_undoes_itself():
    store = Store.memory()
    with store.transaction() as conn:
        conn.execute("INSERT INTO users (uri, created_at) VALUES ('u1', 0)")
        with pytest.raises(RuntimeError), store.transaction() as inner:
            inner.execute("INSERT INTO users (uri, created_at) VALUES ('u2', 0)")
            raise RuntimeError
    assert [r[0] for r in store.conn.execute("SELECT uri FROM users")] == ["u1"]
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO users (uri, created_at) VALUES ('u3', 0)")
        raise RuntimeError
    assert [r[0] for r in store.conn.execute("SELECT uri FROM users")] == ["u1"]
    assert not store.in_transaction


def test_after_commit_runs_only_on_outer_commit():
    store = Store.memory()
    calls = []
    with store.transaction():
        with store.transaction():
            store.after_commit(lambda: calls.append("a"))
        assert calls == []
    assert calls == ["a"]
    with pytest.raises(RuntimeError), store.transaction():
        store.after_commit(lambda: calls.append("b"))
        raise RuntimeError
    with store.transaction():
        pass
    assert calls == ["a"]


def test_foreign_keys_cascade_client_deletion_to_key_packages():
    store = Store.memory()
    with store.transaction() as conn:
        conn.execute("INSERT INTO users (uri, created_at) VALUES ('u', 0)")
        conn.execute("INSERT INTO clients (uri, user_uri, created_at) VALUES ('c', 'u', 0)")
        conn.execute(
            "INSERT INTO key_packages (client_uri, ref, key_package, cipher_suite, not_before, not_after, uploaded_at) "
            "VALUES ('c', x'01', x'02', 1, 0, 10, 0)"
        )
        conn.execute("DELETE FROM clients WHERE uri = 'c'")
    assert store.conn.execute("SELECT COUNT(*) FROM key_packages").fetchone()[0] == 0
