"""The sandbox's world: tokens, balances and bookings, and the rules of RescheduleMadeBooking.

Everything here is synchronous and in memory, so a reschedule (check, spend, create) happens with no
``await`` in between: concurrent requests can never both spend the last credits.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

import attrs

from .._endpoints import ENDPOINTS
from ..models import BookingStatus, MadeBooking

__all__ = ["ALL_SCOPES", "RefreshGrant", "Refusal", "SandboxState", "TokenGrant"]

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


class Refusal(Exception):
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
        """The OAuth refresh grant (API.md, "Access tokens"): a new access token and a new refresh
        token, the old refresh token revoked."""
        if form.get("grant_type") != "refresh_token":
            raise Refusal(400, "unsupported_grant_type")
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            raise Refusal(401, "refresh_token_has_expired")
        if (form.get("client_id"), form.get("client_secret")) != (grant.client_id, grant.client_secret):
            raise Refusal(401, "invalid_client")
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

    def add_booking(self, booking: MadeBooking, *, client_user_id: int) -> None:
        self.bookings[booking.booking_id] = booking
        self.owners[booking.booking_id] = client_user_id

    def booking_of(self, user_id: int, booking_id: int) -> MadeBooking:
        """The booking, if ``user_id`` made it; a 404 otherwise (another user's booking is not
        revealed to exist)."""
        booking = self.bookings.get(booking_id)
        if booking is None or self.owners.get(booking_id) != user_id:
            raise Refusal(404, f"No PhoneChat booking with BookingID {booking_id} was found.")
        return booking

    def local_now(self) -> datetime:
        """Now as the server writes it: its local wall-clock time, naive (.NET "Unspecified")."""
        return datetime.now(self.server_timezone).replace(tzinfo=None, microsecond=0)

    def reschedule(self, user_id: int, booking_id: int) -> MadeBooking:
        """RescheduleMadeBooking: a new booking like the old one, its session 5 to 10 minutes from
        now, Pending, its credits taken from the balance (RescheduleMadeBooking.txt)."""
        booking = self.booking_of(user_id, booking_id)
        session = booking.session_date
        now = datetime.now(self.server_timezone)
        if session is None:
            raise Refusal(400, "The booking has no SessionDate.")
        instant = session if session.tzinfo is not None else session.replace(tzinfo=self.server_timezone)
        if instant >= now:
            raise Refusal(
                400,
                "The request is invalid.",
                {"request.BookingID": ["The SessionDate of this booking has not passed yet."]},
            )
        balance = self.balances.get(user_id, Decimal(0))
        if balance < booking.credits:
            raise Refusal(
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
            booking_id=max(self.bookings) + 1,
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
