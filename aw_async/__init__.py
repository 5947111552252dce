"""aw_async: an asyncio client for the AdultWork.com REST API.

>>> from aw_async import AdultWorkClient                          # doctest: +SKIP
>>> async with AdultWorkClient(token) as aw:                       # doctest: +SKIP
...     new_booking = await aw.phonechat.reschedule_made_booking(booking_id)

See README.md for the whole tour.
"""

from __future__ import annotations

import logging

from ._client import PRODUCTION_URL, SANDBOX_URL, AdultWorkClient, Format
from ._oauth import TOKEN_URL, TokenSet
from ._tokens import RefreshingToken, StaticToken
from ._version import __version__
from .models import (
    BookingStatus,
    CallMethod,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatBookingUser,
    PhoneChatMethod,
    UserBookingRequirements,
)
from .phonechat import RescheduleOutcome

# A library's logger stays silent until the application configures logging: without a handler of its
# own, Python's last-resort handler would print every retry warning on stderr.
logging.getLogger("aw_async").addHandler(logging.NullHandler())

__all__ = [
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "TOKEN_URL",
    "AdultWorkClient",
    "BookingStatus",
    "CallMethod",
    "Format",
    "MadeBooking",
    "MadeBookingsPage",
    "PhoneChatBookingUser",
    "PhoneChatMethod",
    "RefreshingToken",
    "RescheduleOutcome",
    "StaticToken",
    "TokenSet",
    "UserBookingRequirements",
    "__version__",
]
