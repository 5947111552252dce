"""What every journal store does: persist entries, and make each transition of the rules atomic.

A store decides nothing of its own: inside each atomic step it reads the entry (with its owner's
liveness and the attempt's age, by its own clocks) and asks :mod:`._rules` whether the transition
applies. The subclasses differ in where entries live and how atomicity and liveness are had:

- :class:`~aw_async.journal.MemoryJournal`: a dictionary; the process is the only owner.
- :class:`~aw_async.journal.SqliteJournal`: a file, transactions under sqlite's write lock; an owner
  is alive while it holds its lock on a file beside the journal (the kernel drops it when the process
  dies, whatever PID namespace it is in).
- :class:`~aw_async.journal.PostgresJournal`: a database, one statement per claim; an owner is alive
  while its database session holds its advisory lock.

A store is shared by every client that is given it (and, on disk or in a database, by processes):
the single-flight that makes concurrent callers of one booking share one attempt is the guard's, not
the store's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import attrs

from .._clock import HostInstant, host_instant
from ._rules import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    AttemptState,
    JournalEntry,
    Key,
    Terms,
)

__all__ = ["Claim", "Clocks", "Journal"]


@attrs.frozen
class Claim:
    """The answer to :meth:`Journal.claim`.

    ``granted``: the caller holds the attempt ``entry`` (in flight, durable before this returned) and
    may send its POST. Otherwise ``entry`` is what refused it: rescheduled, in flight with a live
    owner, or unknown (reconcile it first).
    """

    granted: bool
    entry: JournalEntry | None


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class Clocks:
    """The clocks a store reads: a wall clock that dates entries, and the host's clock that measures
    an attempt's age (it never steps). Tests give their own."""

    wall: Callable[[], datetime] = _now
    host: Callable[[], HostInstant] = host_instant


class Journal(abc.ABC):
    """Where reschedule attempts are remembered (docs/design.md, "The journal").

    Every write names the attempt it is about and applies only while the rules allow it
    (compare-and-set); every read gives entries with their owner's liveness and their age. A store
    that keeps outcomes in a queue (:meth:`record_outcome_nowait`) commits them before
    :meth:`flush` or :meth:`aclose` returns.

    Args:
        keep_refused, keep_rescheduled: how long refused and rescheduled entries are kept (1 and 90
            days). Unknown and in-flight entries are never forgotten.
    """

    #: Whether :meth:`claim` keeps its word when its caller is cancelled while it is on its way: a
    #: claim that lands all the same is given back (recorded as refused), never left in flight
    #: under a live owner that no longer runs it. A store that says False (the default, for a
    #: journal written elsewhere) has each claim run in a task of its own by the guard, which gives
    #: it back itself: a task and a hop through the event loop a claim.
    claims_survive_cancellation: ClassVar[bool] = False

    def __init__(
        self,
        *,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
    ) -> None:
        self.keep_refused = keep_refused
        self.keep_rescheduled = keep_rescheduled

    # --- transitions ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim(
        self,
        key: Key,
        *,
        force: bool,
        settle: float,
        server_now: datetime | None = None,
        terms: Terms | None = None,
    ) -> Claim:
        """Take the next attempt of ``key`` if :func:`~._rules.may_claim` allows it, atomically and
        durably: in flight, owned by this store's owner, with the settle window ``settle`` (seconds),
        the server's clock as far as the caller knows it, and the original's ``terms`` if known.

        Raises:
            JournalError: the store could not be read or written; nothing was claimed.
        """

    @abc.abstractmethod
    async def renew(self, entry: JournalEntry, *, server_now: datetime | None = None) -> JournalEntry | None:
        """Restart the clock of this owner's attempt ``entry`` (before a POST that was slow to leave).
        The renewed entry, or None when the attempt is no longer this owner's in flight."""

    async def still_holds(self, entry: JournalEntry) -> bool:
        """Whether this owner provably still holds its attempt ``entry`` now, just before its POST
        leaves. A store whose owners are processes (memory, a file lock) cannot lose a live owner's
        claim, so the default is True; a store whose liveness is a database session checks that the
        session has lived since the claim."""
        return True

    @abc.abstractmethod
    async def record_outcome(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        """Record how this owner's attempt ``entry`` ended (``rescheduled`` into ``new_booking_id``,
        ``refused`` or ``unknown``), if it is still this owner's in flight. False when it was not
        (nothing written). Either way the attempt stops being live in this process."""

    def record_outcome_nowait(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        """:meth:`record_outcome` without awaiting, when the store can (a dictionary, a queue to its
        writer): an outcome recorded this way cannot be lost to a cancellation. False when the store
        cannot, and :meth:`record_outcome` must be awaited instead. The default cannot."""
        return False

    @abc.abstractmethod
    async def record_verdict(
        self,
        key: Key,
        attempt: int,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
    ) -> bool:
        """Record what a reconciliation established about ``attempt`` of ``key`` (``rescheduled``
        into ``new_booking_id``, or ``refused``), if :func:`~._rules.may_record_verdict` allows it
        and ``new_booking_id`` is no other key's recorded reschedule. False when not."""

    @abc.abstractmethod
    async def resolve(self, key: Key, *, rescheduled_into: int | None) -> JournalEntry | None:
        """Record the user's answer for ``key``'s last attempt (``rescheduled`` into
        ``rescheduled_into``, or ``refused`` for None) if :func:`~._rules.may_resolve` allows it.
        The recorded entry, or None when refused; the entry that refused it is then in flight."""

    @abc.abstractmethod
    async def learn_terms(self, key: Key, attempt: int, terms: Terms) -> None:
        """Keep the original booking's ``terms`` on ``attempt`` of ``key`` (learned after the claim,
        for a reconciliation), if that attempt is still the entry's."""

    @abc.abstractmethod
    async def learn_server_offset(self, api_root: str, minutes: int) -> None:
        """Keep the offset of the server's local time from UTC, as learned from one of its answers."""

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, key: Key) -> JournalEntry | None:
        """What the journal knows of ``key``."""
        return (await self.get_many([key])).get(key)

    @abc.abstractmethod
    async def get_many(self, keys: Iterable[Key]) -> dict[Key, JournalEntry]:
        """What the journal knows of each of ``keys`` (keys it knows nothing of are left out)."""

    @abc.abstractmethod
    async def outstanding(self, api_root: str, fingerprints: Iterable[str | None]) -> list[JournalEntry]:
        """The outstanding entries of ``api_root`` (in flight or unknown: no outcome decided yet) whose
        terms have one of ``fingerprints`` (None: whose terms are not known yet): the twins a
        reconciliation weighs together."""

    @abc.abstractmethod
    async def results_among(self, api_root: str, booking_ids: Iterable[int]) -> dict[int, int]:
        """Which of ``booking_ids`` are recorded as a reschedule's new booking: new id -> original id."""

    @abc.abstractmethod
    async def entries(
        self, api_root: str | None = None, *, states: Iterable[AttemptState] | None = None
    ) -> list[JournalEntry]:
        """The entries of ``api_root`` (all roots for None) whose effective state is one of
        ``states`` (any for None), by API root and booking id."""

    @abc.abstractmethod
    async def server_offset(self, api_root: str) -> int | None:
        """The offset (minutes east of UTC) of ``api_root``'s server's local time, last learned."""

    @abc.abstractmethod
    async def forget_old(self, now: datetime | None = None) -> int:
        """Forget refused and rescheduled entries past their keeping time (:func:`~._rules.expired`);
        how many."""

    async def flush(self) -> None:  # noqa: B027 - a store that queues nothing has nothing to flush
        """Commit what was queued (outcomes recorded without awaiting)."""

    async def aclose(self) -> None:  # noqa: B027 - a store that holds nothing has nothing to close
        """Commit what was queued, then release what the store holds (a file, a connection)."""
