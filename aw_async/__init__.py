"""aw_async: an asyncio client for the AdultWork.com REST API.

>>> from aw_async import AdultWorkClient                          # doctest: +SKIP
>>> async with AdultWorkClient(token) as aw:                       # doctest: +SKIP
...     new_booking = await aw.phonechat.reschedule_made_booking(booking_id)

See README.md for the whole tour.

The public names are loaded on first use (PEP 562), so that importing a light submodule
(``aw_async.testing.pytest_plugin``, which pytest loads in every run wherever aw-async is installed)
does not import aiohttp, lxml and the rest.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._client import PRODUCTION_URL, SANDBOX_URL, AdultWorkClient, Format
    from ._oauth import TOKEN_URL, TokenSet
    from ._tokens import RefreshingToken, StaticToken
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

#: Where each public name lives.
_HOMES = {
    "PRODUCTION_URL": "._client",
    "SANDBOX_URL": "._client",
    "AdultWorkClient": "._client",
    "Format": "._client",
    "TOKEN_URL": "._oauth",
    "TokenSet": "._oauth",
    "RefreshingToken": "._tokens",
    "StaticToken": "._tokens",
    "BookingStatus": ".models",
    "CallMethod": ".models",
    "MadeBooking": ".models",
    "MadeBookingsPage": ".models",
    "PhoneChatBookingUser": ".models",
    "PhoneChatMethod": ".models",
    "UserBookingRequirements": ".models",
    "RescheduleOutcome": ".phonechat",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aw_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


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
