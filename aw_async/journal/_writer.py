"""A sqlite3 connection on a thread of its own, with group commit: the plumbing of ``SqliteJournal``.

Coroutines hand the thread work and await its result; the event loop never touches the disk. The
work a loop asks for in one iteration is handed to the thread at once, at the start of the next
(one wake-up of the thread for the lot). The thread takes every piece of work waiting when it
starts a transaction and commits them together (group commit): fifty concurrent callers cost one
``fsync``, not fifty, and each still resumes only after the commit that holds its work (its
result goes back to its loop in one callback for the whole group). What a group does is the
owner's (``run_group``); a group that fails is run again one piece at a time, so that one failure
fails only its own caller.

The writer serves any event loop (each result goes to the loop that asked), and work that was
queued without a waiter is committed before :meth:`SqliteWriter.close` returns, or at the latest
when the interpreter exits normally. A result whose waiter stopped waiting before it came (its
future cancelled, or its loop closed) is handed to the owner's ``unclaimed`` (a claim granted to a
caller that is gone is given back: docs/design.md, "The journal").
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Deliver", "GroupRunner", "SqliteWriter"]

log = logging.getLogger("aw_async")

T = TypeVar("T")
W = TypeVar("W")  # a piece of work, as the owner describes it

Deliver = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"] | None
"""Where a piece of work's result goes: a future, and the loop it belongs to (None: nowhere)."""
Result = tuple[Deliver, object, "BaseException | None"]
#: Runs a group of work in an open transaction and gives each piece's result, in any order.
GroupRunner = Callable[[sqlite3.Connection, list[tuple[W, Deliver]]], list[Result]]
#: Takes a committed result nobody waits for any more (on the waiter's loop, or on the writer's
#: thread when that loop is closed); it must not block.
Unclaimed = Callable[[object], None]

_MAX_GROUP = 512  # pieces of work committed together, about (hand-overs are not split)
_STOP = object()
_FLUSH = object()  # work that does nothing: its result comes once everything before it is committed
_EXIT_WAIT = 10.0  # seconds the interpreter's exit waits for queued work to be committed

_running: weakref.WeakSet[SqliteWriter[Any]] = weakref.WeakSet()


@atexit.register
def _commit_at_exit() -> None:
    """A writer nobody closed (a journal shared by the process) commits what it was given."""
    for writer in list(_running):
        writer.stop_from_thread(_EXIT_WAIT)


class SqliteWriter(Generic[W]):
    """The thread that owns one connection.

    Args:
        connect: opens the connection (on the thread).
        run_group: does a group's work inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.
        unclaimed: takes each committed result whose waiter is gone.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        run_group: GroupRunner[W],
        name: str,
        unclaimed: Unclaimed = lambda value: None,
    ) -> None:
        self._connect = connect
        self._run_group = run_group
        self._unclaimed = unclaimed
        self._name = name
        # Work reaches the thread a loop iteration's worth at a time: gathered here in order, then
        # handed over (one list on the queue) by a callback at the loop's next iteration. So the
        # thread wakes once for the lot, not at the first piece (taking the GIL from a busy loop
        # to commit a group of one, while the rest of the iteration's work queues behind it).
        # One list for every loop, so that the queue keeps the order in which work was asked for.
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._gathered: list[tuple[W, Deliver]] = []
        self._handing_over: set[asyncio.AbstractEventLoop] = set()  # loops with a hand-over to come
        self._gathering = threading.Lock()
        self._thread: threading.Thread | None = None
        self._opening = threading.Lock()
        self.closed = False

    async def submit(self, work: W) -> asyncio.Future[Any]:
        """Queue ``work``; the future resolves once it is committed (or fails)."""
        await self._open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._gather((work, (loop, future)), loop)
        return future

    def submit_nowait(self, work: W) -> asyncio.Future[Any] | None:
        """:meth:`submit` without awaiting, when the writer is running; None when it is not (await
        :meth:`submit`, which opens it)."""
        if self.closed or self._thread is None:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._gather((work, (loop, future)), loop)
        return future

    async def post(self, work: W) -> None:
        """Queue ``work`` and do not wait: it is committed with the next group (and before
        :meth:`close` returns). A failure is logged, since nobody waits to hear of it."""
        await self._open()
        self._gather((work, None), asyncio.get_running_loop())

    def post_nowait(self, work: W) -> bool:
        """:meth:`post` without opening: False (nothing queued) unless the writer is running. Off
        any event loop (the writer's own thread), it is handed over at once, after what was
        gathered."""
        if self.closed or self._thread is None:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._hand_over(None, (work, None))
        else:
            self._gather((work, None), loop)
        return True

    def _gather(self, item: tuple[W, Deliver], loop: asyncio.AbstractEventLoop) -> None:
        with self._gathering:
            self._gathered.append(item)
            if loop not in self._handing_over:
                self._handing_over.add(loop)
                loop.call_soon(self._hand_over, loop)

    def _hand_over(self, loop: asyncio.AbstractEventLoop | None, *more: tuple[W, Deliver]) -> None:
        """Put what was gathered (and ``more``) on the thread's queue, as one list, in order."""
        with self._gathering:  # held while putting: two hand-overs must not swap their lists
            if loop is not None:
                self._handing_over.discard(loop)
            items, self._gathered = self._gathered, []
            items += more
            if items:
                self._queue.put(items)

    async def _open(self) -> None:
        if self.closed:
            raise RuntimeError("this journal is closed")
        if self._thread is not None:
            return  # open: no need to wait on the opening again
        await asyncio.to_thread(self._start)  # opening the file is disk I/O too

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        if self._thread is not None:
            await (await self.submit(_FLUSH))  # type: ignore[arg-type]  # the writer's own marker

    async def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection."""
        self.closed = True
        await asyncio.to_thread(self.stop_from_thread, None)

    def stop_from_thread(self, timeout: float | None) -> None:
        """Commit what is queued and stop (blocking; for :meth:`close` and the interpreter's exit)."""
        self.closed = True
        with self._opening:  # an opening under way finishes first
            thread, self._thread = self._thread, None
        if thread is not None:
            self._hand_over(None)  # what was gathered and not handed over yet goes first
            self._queue.put(_STOP)
            thread.join(timeout)
        _running.discard(self)

    def _start(self) -> None:
        with self._opening:  # the first use opens the file, once, however many arrive at once
            if self._thread is not None:
                return
            if self.closed:
                raise RuntimeError("this journal is closed")
            ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
            thread = threading.Thread(target=self._run, args=(ready,), name=self._name, daemon=True)
            thread.start()  # daemon: a crashed program must not hang on it; its commits are done
            problem = ready.get()
            if problem is not None:
                raise problem  # the next use tries again
            self._thread = thread
            _running.add(self)

    def _run(self, ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:  # reported to the opener, which raises it
            ready.put(exc)
            return
        ready.put(None)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group: list[tuple[W, Deliver]] = list(first)  # type: ignore[call-overload]
                while len(group) < _MAX_GROUP:  # and whatever else was handed over meanwhile
                    try:
                        items = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if items is _STOP:
                        self._queue.put(_STOP)  # finish this group first, then stop
                        break
                    group += items  # type: ignore[arg-type]
                self._commit(connection, group)
        finally:
            connection.close()

    def _commit(self, connection: sqlite3.Connection, everything: list[tuple[W, Deliver]]) -> None:
        group = [item for item in everything if item[0] is not _FLUSH]
        try:
            results = self._transaction(connection, group) if group else []
        except Exception:
            results = []  # run each alone, so that one failure fails only its own caller
            for item in group:
                try:
                    results += self._transaction(connection, [item])
                except Exception as exc:  # delivered to its caller: the thread must live on
                    results.append((item[1], None, exc))
        results += [(deliver, None, None) for work, deliver in everything if work is _FLUSH]
        # Only now, each result being committed; one wake-up of each waiting loop for the group.
        by_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object, BaseException | None]]
        ] = {}
        for deliver, value, problem in results:
            if deliver is None:  # posted, not awaited
                if problem is not None:
                    log.error("the journal could not record an outcome: %s", problem)
                continue
            loop, future = deliver
            by_loop.setdefault(loop, []).append((future, value, problem))
        for loop, resolved in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._resolve_all, resolved)
            except RuntimeError:  # the loop closed meanwhile: nobody waits
                for _future, value, problem in resolved:
                    if problem is None:
                        self._give_back(value)

    def _transaction(self, connection: sqlite3.Connection, group: list[tuple[W, Deliver]]) -> list[Result]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            results = self._run_group(connection, group)
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        return results

    def _resolve_all(self, resolved: list[tuple[asyncio.Future[Any], object, BaseException | None]]) -> None:
        for future, value, problem in resolved:
            if future.cancelled():  # its caller stopped waiting; the work is committed all the same
                if problem is None:
                    self._give_back(value)
            elif problem is not None:
                future.set_exception(problem)
            else:
                future.set_result(value)

    def _give_back(self, value: object) -> None:
        try:
            self._unclaimed(value)
        except Exception:  # on the writer's thread or in a batch of results: the others go on
            log.exception("the journal could not give back a result nobody waited for")
