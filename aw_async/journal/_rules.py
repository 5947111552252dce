"""The rules of one reschedule per booking: every state, every transition, and one decision.

Rule 1 (after h11's ``_state.py``): everything that decides what the journal may do lives in this
file. The stores (memory, sqlite, PostgreSQL) persist entries and make each transition atomic; they
decide nothing of their own. A store that cannot call these functions inside its atomic step (the
PostgreSQL one, whose claim is one SQL statement) writes the same rule in SQL, and the model-based
test holds every store to these functions.

An entry is the journal's knowledge of one booking of one API root (its *key*): its last attempt.

=================  ===============================================================================
state              meaning
=================  ===============================================================================
``in_flight``      an owner (a process) holds the attempt and may be sending the POST
``rescheduled``    done, into ``new_booking_id``
``refused``        it did not happen: a prerequisite or the server said no, nothing left, or a
                   reconciliation or the user established it
``unknown``        the POST may have happened; nobody knows yet
=================  ===============================================================================

An ``in_flight`` entry whose owner is gone (its process died: the operating system or the database
says so, never a clock) counts as ``unknown``, and so does an entry this version cannot read.

Transitions, each a compare-and-set on the attempt (its *fence*, a number that grows by one with
every claim of the key):

- **claim** (:func:`may_claim`): a new attempt, ``in_flight``, owned by the claimant. Granted on no
  entry or ``refused``; on ``rescheduled`` or ``unknown`` only when forced; never while an owner is
  alive with an attempt in flight, forced or not.
- **renew** (:func:`may_renew`): the owner restarts its attempt's clock before a POST that was slow to
  leave (nothing was sent yet, so the window can start again).
- **record an outcome** (:func:`may_record_outcome`): the owner's POST answered (``rescheduled``), said
  no or never left (``refused``), or may have happened (``unknown``): :func:`outcome_of` decides which.
  Applies only to the owner's own attempt, still in flight.
- **record a verdict** (:func:`may_record_verdict`): a reconciliation established what happened to an
  attempt that counts as ``unknown``. Applies only to that very attempt, never over a newer attempt
  or a live claim.
- **resolve** (:func:`may_resolve`): the user's own answer; refused while an attempt is in flight.
  A booking the user names as the reschedule of this one is taken from the entry that recorded it
  (:func:`displaced_by_user`), which goes back to unknown: reconciled again before anything is sent.
- **forget** (:func:`expired`): refused and rescheduled entries past their keeping time.

Invariants:

1. At most one attempt is in flight per key, and a live owner's claim is never taken over.
2. An owner sends its POST only while it holds its claim, and only within :data:`LEAVE_WITHIN` of its
   attempt's (re)start by a clock that never steps (the transport refuses to let it leave later).
3. An ``unknown`` attempt is sent again only after a reconciliation (or the user) records ``refused``
   against it, or when forced; "did not happen" is never concluded before the attempt's settle window
   (:func:`settle_seconds`) has passed.
4. ``rescheduled into N`` is recorded only from the POST's own answer, a reconciliation that proves
   it, or the user; a booking is recorded as at most one key's reschedule.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from ..errors import (
    AdultWorkError,
    ApiError,
    ClientClosedError,
    EncodeError,
    InvalidRequestError,
    OutcomeUnknownError,
    PreconditionError,
    ServerError,
    TransportError,
)
from ..models import MadeBooking

__all__ = [
    "DEFAULT_KEEP_REFUSED",
    "DEFAULT_KEEP_RESCHEDULED",
    "FORGET_EVERY",
    "LATE_MARGIN",
    "LEAVE_WITHIN",
    "AttemptState",
    "Decider",
    "JournalEntry",
    "Key",
    "Terms",
    "claimed",
    "displaced_by_user",
    "expired",
    "may_claim",
    "may_record_outcome",
    "may_record_verdict",
    "may_renew",
    "may_resolve",
    "outcome_of",
    "settle_seconds",
]

DEFAULT_KEEP_REFUSED = timedelta(days=1)
DEFAULT_KEEP_RESCHEDULED = timedelta(days=90)

#: A store that forgets on its own does it once in this many of its writes (SqliteJournal counts the
#: outcomes it records, MemoryJournal every write): often enough to stay small, rarely enough that the
#: walk over old entries costs a booking next to nothing.
FORGET_EVERY = 1024

#: How long after its attempt began (or was renewed) a POST may still leave: after that the owner
#: renews the attempt first, and the transport never lets the POST leave past its deadline.
LEAVE_WITHIN = 30.0
#: How long after its last try ended a server may still process a POST it received (a slow server,
#: a queue behind a gateway that answered 504).
LATE_MARGIN = 60.0


def settle_seconds(timeout: float) -> float:
    """The settle window of an attempt by a client whose POST tries last ``timeout`` seconds: from
    the attempt's start, the POST leaves within :data:`LEAVE_WITHIN`, its last try ends within
    ``timeout`` more, and the server may process it :data:`LATE_MARGIN` later. Before that, a listing
    that shows nothing proves nothing."""
    return LEAVE_WITHIN + timeout + LATE_MARGIN


class AttemptState(enum.StrEnum):
    """Where a booking's last reschedule attempt stands."""

    IN_FLIGHT = "in_flight"
    RESCHEDULED = "rescheduled"
    REFUSED = "refused"
    UNKNOWN = "unknown"


class Decider(enum.StrEnum):
    """Who established an attempt's outcome."""

    ANSWER = "answer"
    """The attempt itself: the POST's answer, a refusal, or a failure before anything left."""
    RECONCILIATION = "reconciliation"
    """A reading of MadeBookings proved it."""
    USER = "user"
    """The user said so (``resolve``)."""


@attrs.frozen(order=True, cache_hash=True)
class Key:
    """What an entry is about: a booking of one API root (the normalised ``base_url``). Its hash is
    kept: a key is looked up about a dozen times on a reschedule's way."""

    api_root: str
    booking_id: int

    def __str__(self) -> str:
        return f"booking {self.booking_id} at {self.api_root}"


#: json.dumps(..., sort_keys=True, ensure_ascii=True, separators=(",", ":")), made once.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True, separators=(",", ":"))


@attrs.frozen
class Terms:
    """What a reschedule keeps of its original (docs/api.md, "What the server does not tell a
    client"): two bookings with equal terms are twins, and a reschedule of one is one of the other."""

    user_id: int | None
    duration: int
    credits: Decimal
    method: int
    phone_number: str | None
    skype_name: str | None
    comments: str | None

    @classmethod
    def of(cls, booking: MadeBooking) -> Terms:
        """The terms of ``booking``."""
        return cls(
            user_id=booking.candidate.user_id if booking.candidate else None,
            duration=booking.duration,
            credits=booking.credits.normalize(),  # 8, 8.0 and 8.0000 are the same price
            method=int(booking.method),
            phone_number=booking.phone_number,
            skype_name=booking.skype_name,
            comments=booking.comments,
        )

    def to_text(self) -> str:
        """The terms as stores keep them: canonical JSON, so equal terms give equal text."""
        # Every field by its name, as attrs.asdict gives them (which costs more than the JSON);
        # a test holds the two equal.
        fields = {
            "comments": self.comments,
            "credits": str(self.credits),
            "duration": self.duration,
            "method": self.method,
            "phone_number": self.phone_number,
            "skype_name": self.skype_name,
            "user_id": self.user_id,
        }
        return _CANONICAL_JSON.encode(fields)

    @classmethod
    def from_text(cls, text: str) -> Terms:
        """The terms kept as :meth:`to_text`.

        Raises:
            ValueError, TypeError, KeyError: the text is not what :meth:`to_text` writes.
        """
        fields = json.loads(text)
        fields["credits"] = Decimal(fields["credits"])
        return cls(**fields)

    @property
    def fingerprint(self) -> str:
        """A short digest of the terms: twins share it, and stores index it."""
        return self.fingerprint_of(self.to_text())

    @staticmethod
    def fingerprint_of(text: str) -> str:
        """The :attr:`fingerprint` of the terms whose :meth:`to_text` is ``text``."""
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


@attrs.frozen(kw_only=True)
class JournalEntry:
    """What the journal knows of one booking's reschedule: its last attempt."""

    api_root: str
    booking_id: int
    state: AttemptState
    attempt: int
    """The attempt's fence: 1 for the first claim of the key, one more for each claim since."""
    started_at: datetime
    """When the attempt began (aware, UTC, by the store's clock): for people, and the start of the
    window in which a reconciliation looks for its new booking."""
    updated_at: datetime
    settle_seconds: float
    """The attempt's settle window (:func:`settle_seconds`), recorded by its owner."""
    age: float = attrs.field(default=0.0, eq=False)
    """Seconds since the attempt began, by a clock that never steps, as read from the store."""
    owner: str | None = None
    """Who made the attempt (a process's liveness token at the store)."""
    owner_alive: bool | None = attrs.field(default=None, eq=False)
    """For an attempt in flight: whether its owner still lives, as the store's system says."""
    server_started_at: datetime | None = None
    """When the attempt began by the server's clock, as far as the client could tell then (its
    answers' ``Date``): a second anchor for the window, in case this host's clock was wrong."""
    terms: Terms | None = None
    """The original booking's terms, once known."""
    new_booking_id: int | None = None
    """The booking it was rescheduled into."""
    decided_by: Decider | None = None
    readable: bool = True
    """False for a row this version of the library could not read: it counts as unknown, never as
    free, until the user resolves it."""

    @property
    def key(self) -> Key:
        return Key(self.api_root, self.booking_id)

    @property
    def effective_state(self) -> AttemptState:
        """The state, with an attempt in flight whose owner is gone (or an unreadable row) read as
        ``unknown``."""
        if not self.readable:
            return AttemptState.UNKNOWN
        if self.state is AttemptState.IN_FLIGHT and not self.owner_alive:
            return AttemptState.UNKNOWN
        return self.state

    @property
    def settled(self) -> bool:
        """Whether the attempt's settle window has passed: a POST it sent can no longer land."""
        return self.age >= self.settle_seconds

    @property
    def retry_after(self) -> float:
        """Seconds until the settle window has passed (0 once it has)."""
        return max(0.0, self.settle_seconds - self.age)


def claimed(
    previous: JournalEntry | None,
    key: Key,
    *,
    owner: str,
    now: datetime,
    settle: float,
    server_now: datetime | None,
    terms: Terms | None,
) -> JournalEntry:
    """The entry a granted claim writes: the next attempt, in flight, owned by ``owner``."""
    return JournalEntry(
        api_root=key.api_root,
        booking_id=key.booking_id,
        state=AttemptState.IN_FLIGHT,
        attempt=(previous.attempt if previous is not None else 0) + 1,
        started_at=now,
        updated_at=now,
        settle_seconds=settle,
        owner=owner,
        owner_alive=True,
        server_started_at=server_now,
        terms=terms if terms is not None else (previous.terms if previous is not None else None),
    )


def may_claim(entry: JournalEntry | None, *, force: bool) -> bool:
    """Whether a claim on ``entry`` is granted."""
    if entry is None:
        return True
    state = entry.effective_state
    if state is AttemptState.IN_FLIGHT:
        return False  # never two attempts at once, forced or not
    if state is AttemptState.REFUSED:
        return True
    return force  # rescheduled: done; unknown: reconcile first (a refused verdict frees it)


def may_renew(entry: JournalEntry | None, *, attempt: int, owner: str) -> bool:
    """Whether ``owner`` may restart the clock of its ``attempt``: still its own, still in flight."""
    return (
        entry is not None
        and entry.attempt == attempt
        and entry.state is AttemptState.IN_FLIGHT
        and entry.owner == owner
    )


#: Recording an outcome needs exactly what renewing does: the owner's own attempt, still in flight.
may_record_outcome = may_renew


def may_record_verdict(entry: JournalEntry | None, *, attempt: int) -> bool:
    """Whether a reconciliation's verdict about ``attempt`` applies to ``entry``: the same attempt,
    and it counts as unknown (never over a newer attempt, a live claim or a refused or rescheduled state).
    ``attempt`` 0 is a reconciliation of a booking the journal had no attempt of."""
    if entry is None:
        return attempt == 0
    return entry.attempt == attempt and entry.effective_state is AttemptState.UNKNOWN


def may_resolve(entry: JournalEntry | None) -> bool:
    """Whether the user's answer may be recorded: anything but an attempt in flight with a live
    owner (whose POST may be on its way)."""
    return entry is None or entry.effective_state is not AttemptState.IN_FLIGHT


def displaced_by_user(entry: JournalEntry | None, new_booking_id: int) -> bool:
    """Whether ``entry``, which records ``new_booking_id`` as its reschedule, goes back to unknown
    because the user says that booking is another's. An attempt in flight with a live owner is left
    alone (only the record of which booking is whose moves)."""
    return (
        entry is not None
        and entry.effective_state is not AttemptState.IN_FLIGHT
        and entry.new_booking_id == new_booking_id
    )


def expired(
    entry: JournalEntry, now: datetime, *, keep_refused: timedelta, keep_rescheduled: timedelta
) -> bool:
    """Whether a store may forget ``entry``: a refused or rescheduled one past its keeping time. Unknown and
    in-flight entries are never forgotten: they are what keeps a booking from being sent twice."""
    if entry.state is AttemptState.REFUSED:
        return now - entry.updated_at > keep_refused
    if entry.state is AttemptState.RESCHEDULED:
        return now - entry.updated_at > keep_rescheduled
    return False


def outcome_of(error: BaseException | None, *, post_may_have_left: bool) -> AttemptState:
    """What an attempt that ended with ``error`` means for money: ``rescheduled`` (no error),
    ``refused`` (nothing was spent), or ``unknown`` (it may have been).

    The one place this is decided: the guard records it, the batch's credit ledger refunds on
    ``refused`` only, a batch's outcome says ``may_have_happened`` on ``unknown``, and an unforeseen
    error after a POST left is reported as :class:`~aw_async.errors.OutcomeUnknownError`.

    Args:
        post_may_have_left: whether the POST had been handed to the transport when the attempt
            ended (before that, nothing can have been spent, whatever the error).
    """
    if error is None:
        return AttemptState.RESCHEDULED
    if not post_may_have_left:
        return AttemptState.REFUSED
    if isinstance(error, OutcomeUnknownError | ServerError):
        return AttemptState.UNKNOWN  # no answer, or a 5xx from the server or a gateway
    if isinstance(error, _NOTHING_SPENT):
        return AttemptState.REFUSED  # a 4xx answer, or a request that never left
    # A 2xx whose body could not be read (it happened), cancelled mid-POST, the unforeseen.
    return AttemptState.UNKNOWN


#: Errors that prove the POST spent nothing: the server answered no (4xx), or nothing left.
_NOTHING_SPENT: tuple[type[AdultWorkError], ...] = (
    ApiError,  # ServerError, the exception, is handled above
    TransportError,  # OutcomeUnknownError, the exception, likewise
    PreconditionError,
    ClientClosedError,
    InvalidRequestError,
    EncodeError,
)
