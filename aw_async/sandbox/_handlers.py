"""The sandbox's dispatch table: one handler per endpoint declaration.

A handler takes the sandbox's state, the user the call acts for (the token's, or the group member a
group manager named) and the request model the server read by the endpoint's own declaration, and
returns the value to answer with (or raises :class:`~._state.SandboxRefusal`). An endpoint with no handler
here answers 501, never another operation's behaviour; ``tests/phonechat/test_lifecycle.py`` holds this table
equal to :data:`~aw_async._endpoints.ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._endpoints import (
    CANCEL_MADE_BOOKING,
    CREATE_BOOKING,
    GET_CURRENT_CREDIT_BALANCE,
    GET_USER_BOOKING_REQUIREMENTS,
    MADE_BOOKING_DETAILS,
    MADE_BOOKINGS,
    RESCHEDULE_MADE_BOOKING,
    Endpoint,
)
from ._state import SandboxState

__all__ = ["HANDLERS", "Handler"]

#: (state, acting user id, request model) -> the answer's value.
Handler = Callable[[SandboxState, int, Any], object]

HANDLERS: dict[Endpoint[Any], Handler] = {
    RESCHEDULE_MADE_BOOKING: lambda state, user, request: state.reschedule(user, request.booking_id),
    MADE_BOOKING_DETAILS: lambda state, user, request: state.booking_of(user, request.booking_id),
    MADE_BOOKINGS: lambda state, user, request: state.made_bookings(user, request),
    CREATE_BOOKING: lambda state, user, request: state.create_booking(user, request),
    CANCEL_MADE_BOOKING: lambda state, user, request: state.cancel(user, request.booking_id, request.reason),
    GET_USER_BOOKING_REQUIREMENTS: lambda state, user, request: state.requirements_of(request.book_user_id),
    GET_CURRENT_CREDIT_BALANCE: lambda state, user, request: state.balance_of(user),
}
