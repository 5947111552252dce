"""Reading MadeBookings page by page, each booking once, and never without end.

A listing is read until its last page (the one the server counts, or an empty one). The pages may
shift while it is read (a booking made meanwhile pushes the others one place on, and the next page
repeats one): a booking already given is skipped. A server that never ends (a ``PageCount`` of 2**31,
the same booking on every page) is not followed: the read stops at a page that brings nothing new,
past the first page's ``PageCount`` plus :data:`PAGE_MARGIN`, or at :data:`MAX_PAGES`; such a read is
not :attr:`Reading.complete`, and nothing is concluded from what it did not find.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import attrs

from ..models import MadeBooking, MadeBookingsPage

__all__ = ["MAX_PAGES", "PAGE_MARGIN", "Reading", "every_booking"]

#: Pages read beyond the first page's count (bookings made while reading add pages).
PAGE_MARGIN = 2
#: Pages read at most, whatever the server says: 100,000 bookings at 100 a page.
MAX_PAGES = 1000


@attrs.define
class Reading:
    """How a read went."""

    complete: bool = False
    """True when the read reached the last page."""
    pages: int = 0


async def every_booking(
    fetch: Callable[[int], Awaitable[MadeBookingsPage]], reading: Reading | None = None
) -> AsyncIterator[MadeBooking]:
    """Every booking of the pages ``fetch(1)``, ``fetch(2)``, ... gives, each once, lazily."""
    reading = reading if reading is not None else Reading()
    seen: set[int] = set()
    limit = MAX_PAGES
    number = 1
    while True:
        page = await fetch(number)
        reading.pages += 1
        if number == 1:
            limit = min(max(page.page_count, 1) + PAGE_MARGIN, MAX_PAGES)
        fresh = False
        for booking in page.bookings:
            if booking.booking_id not in seen:
                seen.add(booking.booking_id)
                fresh = True
                yield booking
        if not page.bookings or number >= page.page_count:
            reading.complete = True
            return
        if not fresh or number >= limit:
            return  # going round in circles, or past any count the server gave: stop, incomplete
        number += 1
