"""The server's clock, as its answers' ``Date`` headers show it.

A reconciliation looks for a new booking by its ``CreateDate``, which the server writes by its own
clock in its own (undocumented) zone. Anchoring an attempt's window on the server's clock as well as
on this host's keeps a wrong host clock from hiding the booking; and a ``Date`` (UTC) read beside the
``CreateDate`` of a booking this client just made tells the zone's offset (docs/api.md, "What the
server does not tell a client").
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

from ._clock import elapsed

__all__ = ["ServerClock", "offset_minutes"]

#: Zone offsets are whole quarter hours; a reading further than this from one is not an offset.
_QUARTER = 15
_TOLERANCE = timedelta(minutes=5)


class ServerClock:
    """The last ``Date`` an answer carried, and when it came (by a clock that never steps)."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._date: datetime | None = None
        self._seen_at = 0.0

    def observe(self, date_header: str | None) -> None:
        """Note an answer's ``Date`` header (cheap when it is the same text as the last one: a
        ``Date`` has a resolution of one second)."""
        if date_header is None or date_header == self._text:
            return
        try:
            parsed = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return  # a proxy's odd header: no reading
        if parsed.tzinfo is None:
            return  # "-0000": the sender did not know its zone
        self._text, self._date, self._seen_at = date_header, parsed.astimezone(UTC), elapsed()

    def now(self) -> datetime | None:
        """The server's time now, as well as its last ``Date`` tells (None before any)."""
        if self._date is None:
            return None
        return self._date + timedelta(seconds=elapsed() - self._seen_at)


def offset_minutes(create_date: datetime | None, server_now: datetime | None) -> int | None:
    """The server's offset from UTC (minutes east) that a naive ``CreateDate`` written just now shows
    against the server's clock; None when it cannot tell (aware, missing, or not near a quarter hour)."""
    if create_date is None or server_now is None or create_date.tzinfo is not None:
        return None
    difference = create_date - server_now.astimezone(UTC).replace(tzinfo=None)
    minutes = round(difference / timedelta(minutes=_QUARTER)) * _QUARTER
    if abs(difference - timedelta(minutes=minutes)) > _TOLERANCE or abs(minutes) > 14 * 60:
        return None
    return minutes
