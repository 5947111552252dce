"""The test suite's own PostgreSQL (tests/postgres.py): a database per test through asyncpg, session
advisory locks that die with their session (how a journal tells a live owner from a dead one), a restart
in place that keeps the data, and a missing server that fails instead of skipping when CI requires it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from ..postgres import (
    REQUIRE_VARIABLE,
    PostgresServer,
    _version_key,
    redacted,
    unavailable,
    with_database,
)

LOCK_KEY = 7_000_000_042  # above 2**32: both halves of the key show in pg_locks
# A safety net, not a measurement: a lock that is never released fails the test instead of hanging it.
SAFETY_NET = "60s"


async def advisory_lock_holders(connection: asyncpg.Connection, key: int) -> list[int]:
    """The backends holding the session advisory lock ``key`` in this database, as pg_locks shows them."""
    rows = await connection.fetch(
        """
        SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1
        """,
        key,
    )
    return [row["pid"] for row in rows]


async def wait_for_the_lock(connection: asyncpg.Connection, key: int) -> None:
    """Block until this session holds ``key``: the server grants it once the holder's session is gone."""
    await connection.execute(f"SET lock_timeout = '{SAFETY_NET}'")
    await connection.execute("SELECT pg_advisory_lock($1)", key)


async def test_a_test_gets_a_new_empty_database_of_its_own_through_asyncpg(postgres_dsn: str) -> None:
    connection = await asyncpg.connect(postgres_dsn)
    try:
        assert (
            await connection.fetchval("SELECT current_database()") == postgres_dsn.split("/")[3].split("?")[0]
        )
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        await connection.execute("CREATE TABLE entries (id int PRIMARY KEY, state text NOT NULL)")
        await connection.execute("INSERT INTO entries VALUES (1, 'claimed')")
        assert await connection.fetchval("SELECT state FROM entries WHERE id = 1") == "claimed"
    finally:
        await connection.close()


async def test_databases_the_server_creates_do_not_share_tables(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    try:
        one = await asyncpg.connect(first)
        other = await asyncpg.connect(second)
        try:
            await one.execute("CREATE TABLE entries (id int)")
            assert await other.fetchval("SELECT to_regclass('entries') IS NULL")
        finally:
            await one.close()
            await other.close()
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)


async def test_a_session_advisory_lock_shows_in_pg_locks_and_is_released_when_its_connection_closes(
    postgres_dsn: str,
) -> None:
    owner = await asyncpg.connect(postgres_dsn)
    observer = await asyncpg.connect(postgres_dsn)
    try:
        owner_pid = await owner.fetchval("SELECT pg_backend_pid()")
        await owner.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)

        assert await advisory_lock_holders(observer, LOCK_KEY) == [owner_pid]
        assert await observer.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY) is False

        await owner.close()
        await wait_for_the_lock(observer, LOCK_KEY)
        assert await advisory_lock_holders(observer, LOCK_KEY) == [observer.get_server_pid()]
    finally:
        await owner.close()
        await observer.close()


async def test_a_session_advisory_lock_is_released_when_its_backend_is_terminated(postgres_dsn: str) -> None:
    owner = await asyncpg.connect(postgres_dsn)
    observer = await asyncpg.connect(postgres_dsn)
    try:
        owner_pid = await owner.fetchval("SELECT pg_backend_pid()")
        await owner.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        assert await advisory_lock_holders(observer, LOCK_KEY) == [owner_pid]

        # With a timeout, pg_terminate_backend returns once the backend has exited. The owner's
        # connection is not used again: asyncpg 0.32 may report the lost session on it as an
        # InternalClientError ("cannot switch to state ...") when the next query races the server's
        # FATAL message, rather than as an InterfaceError.
        assert await observer.fetchval("SELECT pg_terminate_backend($1, 60000)", owner_pid) is True
        gone = await observer.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", owner_pid)
        assert gone
        await wait_for_the_lock(observer, LOCK_KEY)
        assert await advisory_lock_holders(observer, LOCK_KEY) == [observer.get_server_pid()]
    finally:
        owner.terminate()
        await observer.close()


async def test_a_restart_in_place_keeps_committed_data_and_ends_every_session(
    postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    before = await asyncpg.connect(postgres_dsn)
    try:
        await before.execute("CREATE TABLE entries (id int PRIMARY KEY)")
        await before.execute("INSERT INTO entries VALUES (1)")
        await before.execute("BEGIN; INSERT INTO entries VALUES (2)")  # never committed

        await asyncio.to_thread(postgres_server.restart)

        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await before.fetchval("SELECT 1")
    finally:
        before.terminate()
    after = await asyncpg.connect(postgres_dsn)
    try:
        assert [row["id"] for row in await after.fetch("SELECT id FROM entries ORDER BY id")] == [1]
    finally:
        await after.close()


# --- the fixture's own rules, without a server ------------------------------------------------------


def test_without_postgresql_a_test_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no pg_ctl anywhere"):
        unavailable("no pg_ctl anywhere")


def test_without_postgresql_a_test_fails_with_the_reason_when_postgresql_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"required .* no pg_ctl anywhere"):
        unavailable("no pg_ctl anywhere")


def test_the_server_programs_of_the_highest_version_are_preferred() -> None:
    folders = ["/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin"]
    assert sorted(folders, key=_version_key, reverse=True) == [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/10/bin",
        "/usr/lib/postgresql/9.6/bin",
    ]
    assert _version_key(str(Path("/usr/pgsql-16/bin"))) == (16,)


def test_a_database_of_its_own_keeps_the_server_credentials_and_options() -> None:
    dsn = "postgresql://app:s3cret@db.example:5433/main?sslmode=require&dbname=main"
    assert (
        with_database(dsn, "aw_test_1") == "postgresql://app:s3cret@db.example:5433/aw_test_1?sslmode=require"
    )
    socket = "postgresql://postgres@/postgres?host=/tmp/aw-pg-x&port=5432"
    assert (
        with_database(socket, "aw_test_2") == "postgresql://postgres@/aw_test_2?host=/tmp/aw-pg-x&port=5432"
    )


def test_a_dsn_in_a_message_hides_its_password() -> None:
    assert redacted("postgresql://app:s3cret@db.example/main") == "postgresql://app:***@db.example/main"
    assert (
        redacted("postgresql://postgres@/postgres?host=/tmp/x")
        == "postgresql://postgres@/postgres?host=/tmp/x"
    )
