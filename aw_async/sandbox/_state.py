"""The sandbox's world: tokens, balances, bookings and requirements, and the documented rules of
each operation (docs/api.md).

Everything here is synchronous and in memory, so a reschedule (check, spend, create) happens with no
``await`` in between: concurrent requests can never both spend the last credits.

The rules are written here again on purpose, not shared with the client's checks
(:mod:`aw_async.phonechat._prerequisites`): an emulator is an oracle, and code shared with what it
tests would hide a wrong rule on both sides at once.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import attrs

from .._endpoints import ENDPOINTS
from .._params import CreateBookingRequest, MadeBookingsQuery
from ..models import (
    BookingStatus,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatBookingUser,
    UserBookingRequirements,
)

__all__ = ["ALL_SCOPES", "RefreshGrant", "SandboxRefusal", "SandboxState", "TokenGrant"]

#: Every scope the sandbox's endpoints need.
ALL_SCOPES: frozenset[str] = frozenset(endpoint.scope for endpoint in ENDPOINTS)


@attrs.frozen
class TokenGrant:
    """What an access token lets its bearer do, and until when."""

    user_id: int
    scopes: frozenset[str]
    group_members: frozenset[int]
    expires_at: datetime | None = None


@attrs.frozen
class RefreshGrant:
    """A refresh token: which application may use it, and what the tokens it gives may do."""

    client_id: str
    client_secret: str
    grant: TokenGrant
    expires_in: int


class SandboxRefusal(Exception):
    """A request the API refuses: the status and the message of its ``HttpError`` body."""

    def __init__(self, status: int, message: str, model_state: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.model_state = model_state or {}


class SandboxState:
    """Tokens, balances and bookings."""

    def __init__(self, server_timezone: tzinfo, rng: random.Random | None = None) -> None:
        self.server_timezone = server_timezone
        self.tokens: dict[str, TokenGrant] = {}
        self.balances: dict[int, Decimal] = {}
        self.bookings: dict[int, MadeBooking] = {}
        self.owners: dict[int, int] = {}  # booking id -> the user who made it
        self.rescheduled: dict[int, list[int]] = {}  # booking id -> the bookings it became
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.requirements: dict[int, UserBookingRequirements] = {}  # users who offer PhoneChat
        self.created: set[int] = set()  # ids the sandbox gave to bookings it made
        self._rng = rng or random.Random()

    def add_token(
        self,
        token: str,
        *,
        user_id: int,
        scopes: Iterable[str] = ALL_SCOPES,
        group_members: Iterable[int] = (),
    ) -> None:
        self.tokens[token] = TokenGrant(user_id, frozenset(scopes), frozenset(group_members))

    def grant_for(self, token: str) -> TokenGrant | None:
        """The grant of a live access token; None for an unknown or expired one."""
        grant = self.tokens.get(token)
        if grant is None or (grant.expires_at is not None and grant.expires_at <= datetime.now(UTC)):
            return None
        return grant

    def refresh(self, form: dict[str, str]) -> dict[str, object]:
        """The OAuth refresh grant (docs/api.md, "Access tokens"): a new access token and a new refresh
        token, the old refresh token revoked."""
        if form.get("grant_type") != "refresh_token":
            raise SandboxRefusal(400, "unsupported_grant_type")
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            raise SandboxRefusal(401, "refresh_token_has_expired")
        if (form.get("client_id"), form.get("client_secret")) != (grant.client_id, grant.client_secret):
            raise SandboxRefusal(401, "invalid_client")
        del self.refresh_tokens[form["refresh_token"]]
        access_token, refresh_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires_at = datetime.now(UTC) + timedelta(seconds=grant.expires_in)
        self.tokens[access_token] = attrs.evolve(grant.grant, expires_at=expires_at)
        self.refresh_tokens[refresh_token] = grant
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "refresh_token": refresh_token,
        }

    def add_booking(self, booking: MadeBooking, *, client_user_id: int, seeded: bool = False) -> None:
        if seeded and booking.booking_id in self.created:
            raise ValueError(
                f"booking {booking.booking_id} is one the sandbox created (by a reschedule or a "
                "CreateBooking); seed another id"
            )
        self.bookings[booking.booking_id] = booking
        self.owners[booking.booking_id] = client_user_id

    def _new_id(self) -> int:
        """An id no booking has, seeded or created (ids only grow, as the server's do)."""
        new_id = max(self.bookings, default=0) + 1
        self.created.add(new_id)
        return new_id

    def bookings_of(self, user_id: int) -> list[MadeBooking]:
        return [
            b for booking_id, b in sorted(self.bookings.items()) if self.owners.get(booking_id) == user_id
        ]

    def balance_of(self, user_id: int) -> Decimal:
        return self.balances.get(user_id, Decimal(0))

    def requirements_of(self, book_user_id: int) -> UserBookingRequirements:
        requirements = self.requirements.get(book_user_id)
        if requirements is None:
            raise SandboxRefusal(404, f"No user with UserID {book_user_id} offers PhoneChat bookings.")
        return requirements

    def instant(self, value: datetime) -> datetime:
        """An aware instant for a booking's datetime (naive ones are server-local)."""
        return value if value.tzinfo is not None else value.replace(tzinfo=self.server_timezone)

    # --- MadeBookings: filtering, ordering and paging (docs/api.md, "MadeBookings") --------------

    def made_bookings(self, user_id: int, query: MadeBookingsQuery) -> MadeBookingsPage:
        per_page = 50 if query.bookings_per_page is None else query.bookings_per_page
        number = 1 if query.page_number is None else query.page_number
        order = query.order_by or "date-desc"
        if not 1 <= per_page <= 100:
            raise _invalid("BookingsPerPage", "BookingsPerPage must be between 1 and 100.")
        if number < 1:
            raise _invalid("PageNumber", "PageNumber must be 1 or more.")
        key = _ORDERS.get(order.lower())
        if key is None:
            raise _invalid("OrderBy", f"The value '{order}' is not valid for OrderBy.")
        bookings = self.bookings_of(user_id)
        if query.start_date is not None:
            start = query.start_date
            bookings = [b for b in bookings if b.create_date and self._local_date(b.create_date) >= start]
        sort_key, reverse = key
        bookings.sort(key=lambda b: (sort_key(self, b), b.booking_id), reverse=reverse)
        first = (number - 1) * per_page
        return MadeBookingsPage(
            page_count=math.ceil(len(bookings) / per_page),
            page_number=number,
            bookings_per_page=per_page,
            bookings=tuple(bookings[first : first + per_page]),
        )

    def _local_date(self, value: datetime) -> date:
        return (value.astimezone(self.server_timezone) if value.tzinfo else value).date()

    # --- CreateBooking and CancelMadeBooking ------------------------------------------------------

    def create_booking(self, user_id: int, request: CreateBookingRequest) -> MadeBooking:
        """CreateBooking, with its documented rules (docs/api.md, "CreateBooking request")."""
        now = self.local_now()
        if request.duration < 5:
            raise _invalid("Duration", "Duration must be at least 5 minutes.")
        if request.method not in (1, 2, 3):
            raise _invalid("Method", f"The value '{request.method}' is not valid for Method.")
        digits = (request.phone_number or "").replace(" ", "")
        if request.method == 1 and not (digits.isdigit() and len(digits) in (10, 11)):
            raise _invalid("PhoneNumber", "PhoneNumber requires 10 or 11 numbers.")
        if request.method == 3 and not request.skype_name:
            raise _invalid("SkypeName", "SkypeName is required for Skype bookings.")
        if request.session_date <= now:
            raise _invalid("SessionDate", "SessionDate must be in the future.")
        if request.accept_by <= now or request.accept_by >= request.session_date:
            raise _invalid("AcceptBy", "AcceptBy must be in the future and before SessionDate.")
        requirements = self.requirements.get(request.book_user_id)
        if requirements is None:
            raise _invalid("BookUserID", "This user does not offer PhoneChat bookings.")
        ppm = requirements.phone_chat_ppm
        if ppm is not None and request.credits < ppm * request.duration:
            raise _invalid("Credits", f"Credits must be at least {ppm * request.duration}.")
        booking = MadeBooking(
            booking_id=self._new_id(),
            duration=request.duration,
            credits=request.credits,
            status=BookingStatus.PENDING,
            method=request.method,
            phone_number=digits if request.method == 1 else None,
            skype_name=request.skype_name if request.method == 3 else None,
            create_date=now,
            session_date=request.session_date,
            accept_by=request.accept_by,
            last_updated=now,
            comments=request.comments,
            action_client=f"{self._nickname(request.book_user_id)} needs to accept or reject",
            candidate=self._candidate(request.book_user_id),
        )
        self.add_booking(booking, client_user_id=user_id)
        return booking

    def cancel(self, user_id: int, booking_id: int, reason: str) -> MadeBooking:
        """CancelMadeBooking (docs/api.md, "CancelMadeBooking prerequisites")."""
        booking = self.booking_of(user_id, booking_id)
        if not reason.strip():
            raise _invalid("Reason", "The Reason field is required.")
        if booking.status in (BookingStatus.CANCELLED, BookingStatus.REJECTED):
            raise _invalid("BookingID", f"A {booking.status} booking cannot be cancelled.")
        session = booking.session_date
        now = datetime.now(self.server_timezone)
        if booking.status == BookingStatus.CONFIRMED and session is not None and self.instant(session) <= now:
            raise _invalid("BookingID", "A confirmed booking cannot be cancelled after its session.")
        local_now = self.local_now()
        cancelled = attrs.evolve(
            booking,
            status=BookingStatus.CANCELLED,
            cancelled_date=local_now,
            cancelled_reason=reason,
            cancelled_by=f"User{user_id}",
            last_updated=local_now,
            action_client=None,
        )
        self.bookings[booking_id] = cancelled
        return cancelled

    def _nickname(self, user_id: int) -> str:
        candidate = self._candidate(user_id)
        return candidate.nickname

    def _candidate(self, user_id: int) -> PhoneChatBookingUser:
        """The booked user as seeded bookings show them, or a plain one."""
        for booking in self.bookings.values():
            if booking.candidate is not None and booking.candidate.user_id == user_id:
                return booking.candidate
        return PhoneChatBookingUser(
            user_id=user_id,
            nickname=f"User{user_id}",
            total=0,
            positive=0,
            neutral=0,
            negative=0,
            ratings=0,
            disputes=0,
        )

    def booking_of(self, user_id: int, booking_id: int) -> MadeBooking:
        """The booking, if ``user_id`` made it; a 404 otherwise (another user's booking is not
        revealed to exist)."""
        booking = self.bookings.get(booking_id)
        if booking is None or self.owners.get(booking_id) != user_id:
            raise SandboxRefusal(404, f"No PhoneChat booking with BookingID {booking_id} was found.")
        return booking

    def local_now(self) -> datetime:
        """Now as the server writes it: its local wall-clock time, naive (.NET "Unspecified")."""
        return datetime.now(self.server_timezone).replace(tzinfo=None, microsecond=0)

    def reschedule(self, user_id: int, booking_id: int) -> MadeBooking:
        """RescheduleMadeBooking: a new booking like the old one, its session 5 to 10 minutes from
        now, Pending, its credits taken from the balance (docs/api.md, "RescheduleMadeBooking")."""
        booking = self.booking_of(user_id, booking_id)
        session = booking.session_date
        now = datetime.now(self.server_timezone)
        if session is None:
            raise SandboxRefusal(400, "The booking has no SessionDate.")
        if self.instant(session) >= now:
            raise SandboxRefusal(
                400,
                "The request is invalid.",
                {"request.BookingID": ["The SessionDate of this booking has not passed yet."]},
            )
        balance = self.balances.get(user_id, Decimal(0))
        if balance < booking.credits:
            raise SandboxRefusal(
                400,
                "The request is invalid.",
                {
                    "request.BookingID": [
                        f"Insufficient credits: {booking.credits} needed, {balance} available."
                    ]
                },
            )
        self.balances[user_id] = balance - booking.credits
        local_now = self.local_now()
        new = attrs.evolve(
            booking,
            booking_id=self._new_id(),
            status=BookingStatus.PENDING,
            create_date=local_now,
            session_date=local_now + timedelta(seconds=self._rng.randint(5 * 60, 10 * 60)),
            accept_by=local_now + timedelta(minutes=5),
            accepted_date=None,
            confirmed_date=None,
            cancelled_date=None,
            cancelled_reason=None,
            cancelled_by=None,
            rejected_reason=None,
            last_updated=local_now,
            action_client=f"{booking.candidate.nickname if booking.candidate else 'The user'} needs to "
            "accept or reject",
        )
        self.add_booking(new, client_user_id=user_id)
        self.rescheduled.setdefault(booking_id, []).append(new.booking_id)
        return new


def _invalid(field: str, message: str) -> SandboxRefusal:
    """Web API's 400 for a request that breaks a rule: ModelState names the request's field."""
    return SandboxRefusal(400, "The request is invalid.", {f"request.{field}": [message]})


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
SortKey = Callable[[SandboxState, MadeBooking], Any]


def _by_created(state: SandboxState, booking: MadeBooking) -> Any:
    return state.instant(booking.create_date) if booking.create_date else _EPOCH


def _by_session(state: SandboxState, booking: MadeBooking) -> Any:
    return state.instant(booking.session_date) if booking.session_date else _EPOCH


def _by_nickname(state: SandboxState, booking: MadeBooking) -> Any:
    return (booking.candidate.nickname if booking.candidate else "").lower()


#: MadeBookings' OrderBy values: (key, descending).
_ORDERS: dict[str, tuple[SortKey, bool]] = {
    "date-desc": (_by_created, True),
    "date-asc": (_by_created, False),
    "nickname-asc": (_by_nickname, False),
    "nickname-desc": (_by_nickname, True),
    "sessiondate-asc": (_by_session, False),
    "sessiondate-desc": (_by_session, True),
}
