"""Sample data for the demo and for ``aw-async sandbox``: a user, a balance and some bookings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from ..models import BookingStatus, CallMethod, MadeBooking, PhoneChatBookingUser
from ._server import SandboxServer

__all__ = ["DemoData", "make_booking", "seed_demo"]


@attrs.frozen
class DemoData:
    """What :func:`seed_demo` put in the sandbox."""

    token: str
    user_id: int
    balance: Decimal
    passed: tuple[int, ...]
    """Bookings whose session has passed: they can be rescheduled."""
    upcoming: int
    """A booking whose session is still to come: a reschedule is refused."""
    expensive: int
    """A passed booking that costs more than the balance: a reschedule is refused."""
    member_booking: tuple[int, int]
    """(group member's user id, booking id): readable with ``as_user``."""


def _booking(booking_id: int, credits: str, session: datetime, nickname: str, user_id: int) -> MadeBooking:
    return MadeBooking(
        booking_id=booking_id,
        duration=15,
        credits=Decimal(credits),
        status=BookingStatus.CONFIRMED,
        method=CallMethod.CALLED_BY_CANDIDATE,
        phone_number="44...",
        create_date=session - timedelta(days=2),
        session_date=session,
        accept_by=session - timedelta(days=1),
        accepted_date=session - timedelta(days=1, hours=2),
        confirmed_date=session - timedelta(days=1, hours=1),
        last_updated=session - timedelta(days=1, hours=1),
        comments="Same time as last week?",
        candidate=PhoneChatBookingUser(
            user_id=user_id,
            nickname=nickname,
            total=6,
            positive=7,
            neutral=0,
            negative=1,
            ratings=8,
            disputes=0,
        ),
    )


def make_booking(
    booking_id: int,
    *,
    credits: Decimal | str = "8.00",
    session_date: datetime | timedelta = timedelta(hours=-1),
    duration: int = 15,
    status: BookingStatus | str = BookingStatus.CONFIRMED,
    book_user_id: int = 123456,
    nickname: str = "BookedUser",
    **changes: Any,
) -> MadeBooking:
    """A booking to seed a sandbox with, every member filled in; change any with keywords.

    Args:
        session_date: when the session is (was): a ``timedelta`` from now (negative: it has passed,
            so it can be rescheduled), an aware datetime, or a naive one, which the sandbox (like the
            real server) reads as its local time, ``Europe/London`` by default.
        book_user_id, nickname: the user the booking is with (its ``Candidate``).
        changes: any other member of :class:`~aw_async.MadeBooking` (``comments``, ``method``...).

    >>> sandbox.add_booking(make_booking(42), client_user_id=1)      # doctest: +SKIP
    """
    session = datetime.now(UTC) + session_date if isinstance(session_date, timedelta) else session_date
    booking = _booking(booking_id, str(credits), session, nickname, book_user_id)
    return attrs.evolve(booking, duration=duration, status=status, **changes)


def seed_demo(sandbox: SandboxServer, *, token: str = "sandbox-token") -> DemoData:
    """Fill ``sandbox`` with a user (1001), 50.00 credits and bookings in each interesting state."""
    user_id, member_id = 1001, 2002
    sandbox.add_token(token, user_id=user_id, group_members=[member_id])
    balance = Decimal("50.00")
    sandbox.set_balance(user_id, balance)
    now = sandbox.state.local_now()
    passed = (101, 102, 103, 104, 105)
    for offset, (booking_id, credits) in enumerate(
        zip(passed, ("8.00", "12.50", "5", "7.25", "6"), strict=True)
    ):
        sandbox.add_booking(
            _booking(booking_id, credits, now - timedelta(hours=3 + offset), "BookedUser", 123456),
            client_user_id=user_id,
        )
    sandbox.add_booking(
        _booking(110, "8.00", now + timedelta(hours=2), "LaterUser", 223344), client_user_id=user_id
    )
    sandbox.add_booking(
        _booking(120, "75.00", now - timedelta(hours=1), "PricyUser", 334455), client_user_id=user_id
    )
    sandbox.add_booking(
        _booking(201, "9.99", now - timedelta(days=1), "GroupCall", 445566), client_user_id=member_id
    )
    return DemoData(token, user_id, balance, passed, 110, 120, (member_id, 201))
