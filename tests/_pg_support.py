"""What the PostgresJournal tests share: two journals (two owners) on a fresh database, and ways
to look at the server's sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from aw_async.journal import Key, PostgresJournal

ROOT = "https://api.example"
SETTLE = 120.0


@pytest.fixture
async def journal(postgres_dsn: str) -> AsyncIterator[PostgresJournal]:
    made = PostgresJournal(postgres_dsn)
    yield made
    await made.aclose()


@pytest.fixture
async def other(postgres_dsn: str) -> AsyncIterator[PostgresJournal]:
    """A second owner: another journal, with its own connections."""
    made = PostgresJournal(postgres_dsn)
    yield made
    await made.aclose()


def key(n: int) -> Key:
    return Key(ROOT, n)


async def sql(dsn: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        if not args and ";" in query:  # several statements: the simple protocol
            return await connection.execute(query)
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


def lock_key_of(token: str) -> int:
    return int(token.removeprefix("pg:").partition("@")[0])


async def owner_pid(dsn: str, token: str) -> int:
    """The server process of the session that holds the owner's lock."""
    k = lock_key_of(token)
    rows = await sql(
        dsn,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND classid = $1::bigint::oid"
        " AND objid = $2::bigint::oid",
        k >> 32,
        k & 0xFFFFFFFF,
    )
    assert len(rows) == 1
    return int(rows[0]["pid"])


async def until(condition: Callable[[], Any], what: str) -> None:
    """Wait for the server to do something it does asynchronously (a backend exiting): polled a
    bounded number of times; how long it took is never asserted."""
    for _ in range(3000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def session_gone(dsn: str, pid: int) -> None:
    async def gone() -> bool:
        return not await sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid)

    await until(gone, f"the session {pid} ending")
