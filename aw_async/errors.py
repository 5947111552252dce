"""The exceptions aw_async raises.

::

    AdultWorkError                      every error aw_async raises
    ├── DecodeError                     a body that is malformed, hostile or of the wrong shape
    ├── EncodeError                     a value the wire format cannot carry
    ├── InvalidRequestError             an argument breaks a documented rule (also a ValueError)
    ├── InsecureUrlError                a URL that would carry the token in clear (also a ValueError)
    ├── PreconditionError               a documented prerequisite failed; nothing was sent
    │   ├── SessionNotPassedError       the booking's SessionDate has not passed yet
    │   ├── InsufficientCreditsError    the balance does not cover the booking's credits
    │   ├── BookingStatusError          the booking's status forbids the call (cancelled already)
    │   ├── SessionPassedError          a confirmed booking's session has passed: too late to cancel
    │   ├── OfferTooLowError            the credits offered are below the user's price per minute
    │   ├── AlreadyRescheduledError     the journal says the booking was rescheduled already
    │   └── InFlightElsewhereError      another process is rescheduling the booking right now
    ├── JournalError                    the journal could not be read or written; nothing was sent
    ├── NotStartedError                 a batch was stopped before this booking began; nothing was sent
    ├── ClientClosedError               a call on a client after aclose() (also a RuntimeError)
    ├── TokenNotSavedError              on_refresh failed to save a rotated refresh token
    ├── UnexpectedError                 a failure aw_async did not foresee (a bug): the cause says
    ├── ApiError                        the server answered with a non-2xx status
    │   ├── AuthenticationError         401, or a refresh the token endpoint refused
    │   ├── PermissionDeniedError       403: the token lacks the endpoint's scope
    │   ├── NotFoundError               404
    │   ├── RateLimitError              429 (``retry_after``)
    │   └── ServerError                 5xx
    └── TransportError                  no HTTP answer came (connection, timeout, reset)
        └── OutcomeUnknownError         ...for a call that changes state, which may have reached
                                        the server: check before sending it again

``asyncio.CancelledError`` is never wrapped. A caller's argument of the wrong type is a programming
error and raises ``TypeError`` (a value out of its documented range is an ``InvalidRequestError``);
every failure of the call itself is an ``AdultWorkError``. No error's ``str()`` or ``repr()``
contains an access token, refresh token, client secret or API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import ErrorBody

__all__ = [
    "AdultWorkError",
    "AlreadyRescheduledError",
    "ApiError",
    "AuthenticationError",
    "BookingStatusError",
    "ClientClosedError",
    "DecodeError",
    "EncodeError",
    "InFlightElsewhereError",
    "InsecureUrlError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "JournalError",
    "NotFoundError",
    "NotStartedError",
    "OfferTooLowError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "PreconditionError",
    "RateLimitError",
    "ServerError",
    "SessionNotPassedError",
    "SessionPassedError",
    "TokenNotSavedError",
    "TransportError",
    "UnexpectedError",
]


class AdultWorkError(Exception):
    """The base of every error aw_async raises."""


class DecodeError(AdultWorkError, ValueError):
    """A response body could not be decoded into the requested type.

    Attributes:
        path: the wire path of the offending field (``Candidate.UserID``), when one is known.
        line, column: where a syntax error was found, when the parser said (1-based).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column


class EncodeError(AdultWorkError, ValueError):
    """A value cannot be written in the wire format (an XML-forbidden character, a NaN decimal)."""


class InvalidRequestError(AdultWorkError, ValueError):
    """An argument breaks a rule the vendor documents; nothing was sent.

    Attributes:
        field: the wire name of the offending field (``Duration``, ``PhoneNumber``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InsecureUrlError(AdultWorkError, ValueError):
    """A plain ``http://`` URL to a host other than this machine: the token would travel in clear.

    Attributes:
        what: which URL (``base_url``, ``token_url``).
        url, host: the URL, and its host.
    """

    def __init__(self, what: str, url: str, host: str, *, override: str = "allow_insecure_http=True") -> None:
        super().__init__(
            f"{what} {url!r} is plain http to {host}, which would send the token in clear; "
            f"use https, or pass {override} if you really mean it"
        )
        self.what, self.url, self.host = what, url, host


class PreconditionError(AdultWorkError):
    """A documented prerequisite of a call failed, so the call was not sent."""


class _SessionTimeError(PreconditionError):
    """A prerequisite about when a booking's session is (the common part of two errors).

    Attributes:
        booking_id: the booking.
        session_date: its SessionDate as the server sent it (naive means server-local time).
        now: the time it was compared with, aware.
    """

    def __init__(self, message: str, booking_id: int, session_date: datetime, now: datetime) -> None:
        super().__init__(message)
        self.booking_id = booking_id
        self.session_date = session_date
        self.now = now


class SessionNotPassedError(_SessionTimeError):
    """RescheduleMadeBooking needs the booking's SessionDate to have passed."""

    def __init__(self, booking_id: int, session_date: datetime, now: datetime) -> None:
        super().__init__(
            f"booking {booking_id} cannot be rescheduled yet: its session "
            f"({session_date.isoformat()}) has not passed (now {now.isoformat(timespec='seconds')})",
            booking_id,
            session_date,
            now,
        )


class InsufficientCreditsError(PreconditionError):
    """RescheduleMadeBooking needs a credit balance that covers the booking's credits.

    Attributes:
        booking_id: the booking.
        required: the booking's credits.
        balance: the balance available for it (in a batch: what earlier bookings left).
    """

    def __init__(self, booking_id: int, required: Decimal, balance: Decimal) -> None:
        super().__init__(
            f"booking {booking_id} needs {required} credits but the balance available is {balance}"
        )
        self.booking_id = booking_id
        self.required = required
        self.balance = balance


class BookingStatusError(PreconditionError):
    """The booking's status forbids the call: a cancelled or rejected booking cannot be cancelled.

    Attributes:
        booking_id: the booking.
        status: its status.
    """

    def __init__(self, booking_id: int, status: object, action: str = "cancelled") -> None:
        shown = getattr(status, "value", status)
        super().__init__(f"booking {booking_id} cannot be {action}: it is {shown}")
        self.booking_id = booking_id
        self.status = status


class SessionPassedError(_SessionTimeError):
    """A confirmed booking can be cancelled only before its session; this one has passed."""

    def __init__(self, booking_id: int, session_date: datetime, now: datetime) -> None:
        super().__init__(
            f"booking {booking_id} is confirmed and its session ({session_date.isoformat()}) has passed "
            f"(now {now.isoformat(timespec='seconds')}): it can no longer be cancelled",
            booking_id,
            session_date,
            now,
        )


class OfferTooLowError(PreconditionError):
    """The credits offered are below what the booked user asks: ``PhoneChatPPM x Duration``.

    Attributes:
        required: the least the user accepts for that duration.
        offered: the credits offered.
    """

    def __init__(self, book_user_id: int, required: Decimal, offered: Decimal) -> None:
        super().__init__(
            f"user {book_user_id} asks at least {required} credits for this duration; {offered} were offered"
        )
        self.book_user_id = book_user_id
        self.required = required
        self.offered = offered


class AlreadyRescheduledError(PreconditionError):
    """The journal says this booking was rescheduled already; nothing was sent.

    Pass ``force=True`` to reschedule it again on purpose.

    Attributes:
        booking_id: the booking.
        new_booking_id: the booking it was rescheduled into.
    """

    def __init__(self, booking_id: int, new_booking_id: int) -> None:
        super().__init__(
            f"booking {booking_id} was already rescheduled into booking {new_booking_id}; "
            "nothing was sent (force a reschedule to do it again on purpose)"
        )
        self.booking_id = booking_id
        self.new_booking_id = new_booking_id


class InFlightElsewhereError(PreconditionError):
    """Another process (or another client of this one) is rescheduling this booking right now, and
    its outcome did not come within the time this call waits; nothing was sent. Its owner is alive
    (a stopped process keeps its claim): try again later.

    Attributes:
        booking_id: the booking.
        since: when that attempt began (aware, UTC).
    """

    def __init__(self, booking_id: int, since: datetime) -> None:
        super().__init__(
            f"booking {booking_id} is being rescheduled by another process since "
            f"{since.isoformat(timespec='seconds')}; nothing was sent: try again later"
        )
        self.booking_id = booking_id
        self.since = since


class JournalError(AdultWorkError):
    """The journal could not be read or written (a full disk, a folder that cannot be made, a lock
    held too long, a file that is not a journal, a database out of reach, a schema newer than this
    version knows). Nothing was sent for the booking; the original error is the ``__cause__``."""


class NotStartedError(AdultWorkError):
    """A batch was stopped before this booking's POST could leave (its ``stop`` event set, it was
    cancelled, or it could not go on); nothing that spends credits was sent for it.

    Attributes:
        stopped_by: the error that stopped the batch (an authentication failure a refresh could not
            mend, a balance that could not be read), or None when the caller stopped it.
    """

    def __init__(self, message: str, *, stopped_by: AdultWorkError | None = None) -> None:
        super().__init__(message)
        self.stopped_by = stopped_by


class ClientClosedError(AdultWorkError, RuntimeError):
    """A call was made on a client after :meth:`~aw_async.AdultWorkClient.aclose`; nothing was sent."""


class TokenNotSavedError(AdultWorkError):
    """``on_refresh`` raised while saving a rotated refresh token (a full disk, a database down).

    The refresh happened: the old refresh token is dead and the new one is only in this process's
    memory. The next call hands the same tokens to ``on_refresh`` again before anything else; if
    the process ends before a save succeeds, the user must log in again. The original error is the
    ``__cause__``.
    """


class UnexpectedError(AdultWorkError):
    """A failure aw_async did not foresee (a bug in it, or in a plugged-in codec): the redacted
    original is the ``__cause__``: every failure of a call is an :class:`AdultWorkError` (a caller's
    argument of the wrong type aside, which raises ``TypeError``)."""


class ApiError(AdultWorkError):
    """The server answered with a status that is not 2xx.

    Attributes:
        status: the HTTP status.
        body: the decoded ``HttpError`` body, when the answer was JSON or XML.
        message: the server's message, or a short excerpt of a body that was not JSON or XML.
        method, url: the request (the URL with secrets redacted).
        headers: the response headers.
        request_id: the server's request id header, when it sent one.
    """

    def __init__(
        self,
        status: int,
        body: ErrorBody | None,
        *,
        message: str | None = None,
        method: str = "",
        url: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.message = message or (body.message if body and body.message else "") or f"HTTP {status}"
        self.method = method
        self.url = url
        self.headers: dict[str, str] = dict(headers or {})
        self.request_id = next(
            (
                value
                for name, value in self.headers.items()
                if name.lower() in ("request-id", "x-request-id", "x-correlation-id")
            ),
            None,
        )
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class AuthenticationError(ApiError):
    """401: the access token is missing, wrong or expired, or a token refresh was refused.

    Attributes:
        error: the OAuth ``error`` code of a refused refresh (``refresh_token_has_expired``).
    """

    def __init__(
        self, status: int, body: ErrorBody | None, *, error: str | None = None, **kwargs: Any
    ) -> None:
        self.error = error
        super().__init__(status, body, **kwargs)


class PermissionDeniedError(ApiError):
    """403: the token does not carry the scope the endpoint needs, or (for a group manager's call)
    the user acted for is not in a group the token's user manages.

    Attributes:
        scope: the scope the endpoint needs (docs/api.md).
        acting_for: the group member the call acted for (``as_user``), if any.
    """

    def __init__(
        self,
        status: int,
        body: ErrorBody | None,
        *,
        scope: str = "",
        acting_for: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.scope = scope
        self.acting_for = acting_for
        super().__init__(status, body, **kwargs)

    def _describe(self) -> str:
        if self.acting_for is not None:  # a group manager's call: membership comes first
            needs = f"; is user {self.acting_for} a member of a group you manage?"
            if self.scope:
                needs += f" (the token also needs the scope {self.scope!r})"
        else:
            needs = f"; this endpoint needs the scope {self.scope!r}" if self.scope else ""
        return super()._describe() + needs


class NotFoundError(ApiError):
    """404: no such booking (or no such endpoint)."""


class RateLimitError(ApiError):
    """429: too many requests.

    Attributes:
        retry_after: seconds the server asked to wait, when it said.
    """

    def __init__(
        self, status: int, body: ErrorBody | None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status, body, **kwargs)

    def _describe(self) -> str:
        wait = f"; retry after {self.retry_after:g} s" if self.retry_after is not None else ""
        return super()._describe() + wait


class ServerError(ApiError):
    """5xx: the server or a proxy in front of it failed.

    For a call that changes state, a gateway's 502 or 504 does not prove the server did nothing:
    check (MadeBookingDetails) before sending it again.
    """


class TransportError(AdultWorkError):
    """No HTTP answer came: the connection failed, timed out or broke.

    Attributes:
        method, url: the request (the URL with secrets redacted).
        attempts: how many times the request was tried.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.attempts = attempts


class OutcomeUnknownError(TransportError):
    """A call that changes state (RescheduleMadeBooking) may have reached the server, and no answer
    says whether it did. It was not sent again. For a reschedule the journal records it as unknown,
    and calling again is safe: the next attempt reconciles (reads MadeBookings) before sending
    anything, and sends only when the reconciliation proves the reschedule did not happen. (A forced
    call reconciles first too, then sends again even if the reschedule happened.)

    Attributes:
        candidates: when a reconciliation found bookings that could be the reschedule but could not
            tell which, their ids: look at them, then record the answer with ``resolve``.
        retry_after: seconds until a reconciliation can prove more (a POST whose answer was lost may
            still be processed until then), or None when only the user can tell (``resolve``).
    """

    def __init__(
        self,
        message: str,
        *,
        candidates: tuple[int, ...] = (),
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.candidates = candidates
        self.retry_after = retry_after
