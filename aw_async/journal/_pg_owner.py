"""Who a ``PostgresJournal`` is, to the database: a session-level advisory lock on a connection of
its own.

The lock's key is random (63 bits: two owners never meet by chance) and the owner's token names
it, so any session can ask ``pg_locks`` whether the owner of an attempt lives (:mod:`._pg_sql`). The
lock dies with its connection (the process died, the network or the server dropped it) and lives
while the connection does, however stopped the process. It is taken outside any pool: a pool resets
the connections it lends, advisory locks included. For the same reason the connection must not go
through a transaction-pooling proxy (PgBouncer in transaction mode), which would hand its session,
and the lock with it, to someone else.

When the connection is lost, the next use takes a new lock under a new token: the attempts of the
old token are orphans, unknown to everyone (this process included), never alive again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["OwnerSession"]

_CLOSE_WAIT = 10.0  # seconds a closing owner waits for its connection before cutting it
# The server drops the session of an owner whose host vanished (no FIN: a power cut, a partition)
# within about a minute, rather than the system's two hours: the kernel of a live host answers
# keepalives, its process stopped or not. (Unix sockets ignore these.)
_KEEPALIVES = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"


class OwnerSession:
    """The owner of one event loop's attempts.

    Args:
        on_lost: called when the owner is given up (its attempts become orphans).
    """

    def __init__(self, asyncpg: ModuleType, dsn: str, timeout: float, on_lost: Callable[[], None]) -> None:
        self._asyncpg = asyncpg
        self._dsn = dsn
        self._timeout = timeout
        self._on_lost = on_lost
        self.token = ""  # once the lock is taken
        self.key = 0
        self._connection: Any = None
        self._taking = asyncio.Lock()
        self._ping: asyncio.Future[bool] | None = None
        self._pinging = False

    async def current(self) -> tuple[str, int]:
        """The owner's token and lock key, taking a new lock if there is none or the connection
        that held it is lost.

        Raises:
            The driver's errors: the database could not be reached.
        """
        if self._holding():
            return self.token, self.key
        async with self._taking:
            if self._holding():
                return self.token, self.key
            self.drop()
            settings = {"application_name": "aw-async journal owner"}
            connection = await self._asyncpg.connect(
                self._dsn, timeout=self._timeout, server_settings=settings
            )
            try:
                await connection.execute(_KEEPALIVES)
                version = connection.get_server_version()
                if version >= (12,):
                    await connection.execute("SET tcp_user_timeout = 60000")
                if version >= (14,):  # this connection is idle by design
                    await connection.execute("SET idle_session_timeout = 0")
                while True:
                    key = secrets.randbits(63) or 1
                    if await connection.fetchval("SELECT pg_try_advisory_lock($1)", key):
                        break
            except BaseException:
                connection.terminate()
                raise
            self._connection, self.key = connection, key
            self.token = f"pg:{key}@{socket.gethostname()}:{os.getpid()}"
            return self.token, key

    def _holding(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    def drop(self) -> None:
        """Give the owner up (its connection is lost or doubtful): its attempts become orphans."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()
        self._on_lost()

    async def ping(self) -> bool:
        """Whether the owner's connection answers a ping sent after this call began (one ping
        answers every caller that was waiting when it was sent)."""
        if self._ping is None:
            self._ping = asyncio.get_running_loop().create_future()
            if not self._pinging:
                self._pinging = True
                asyncio.get_running_loop().create_task(self._pinger())
        return await asyncio.shield(self._ping)

    async def _pinger(self) -> None:
        try:
            while self._ping is not None:
                answered, self._ping = self._ping, None  # who comes now waits for the next ping
                connection = self._connection
                ok = False
                if connection is not None and not connection.is_closed():
                    try:
                        # A server that does not answer in time may have dropped the session:
                        # the owner is given up (cautious, never unsafe: its POSTs do not leave).
                        ok = await connection.fetchval("SELECT true", timeout=self._timeout) is True
                    except Exception:
                        if self._connection is connection:
                            self.drop()
                answered.set_result(ok)
        finally:
            self._pinging = False

    async def close(self) -> None:
        """Release the lock by closing its connection."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close(timeout=_CLOSE_WAIT)
            except Exception:
                connection.terminate()
