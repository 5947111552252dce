"""aw_async: an asyncio client for the AdultWork.com REST API.

Typed models, JSON and DataContract XML codecs, and (coming next) the client that reschedules
PhoneChat bookings. See README.md.
"""

from __future__ import annotations

from ._version import __version__
from .models import BookingStatus, CallMethod, MadeBooking, PhoneChatBookingUser

__all__ = [
    "BookingStatus",
    "CallMethod",
    "MadeBooking",
    "PhoneChatBookingUser",
    "__version__",
]
