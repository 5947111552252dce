"""The exact values of the vendor's RescheduleMadeBooking response samples, typed by hand.

The JSON and XML samples are not the same booking: they differ in SessionDate, AcceptedDate,
ConfirmedDate and the scale of Credits.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from aw_async.models import BookingStatus, CallMethod, MadeBooking, PhoneChatBookingUser

SEED_CANDIDATE = PhoneChatBookingUser(
    user_id=123456,
    nickname="BookedUser",
    phone_number=None,
    skype_name=None,
    total=6,
    positive=7,
    neutral=0,
    negative=1,
    ratings=8,
    disputes=0,
)

SEED_JSON_BOOKING = MadeBooking(
    booking_id=2,
    duration=15,
    credits=Decimal("8"),
    status=BookingStatus.PENDING,
    method=CallMethod.CALLED_BY_CANDIDATE,
    phone_number="44...",
    skype_name=None,
    create_date=datetime(2018, 1, 25, 14, 32, 12, 456000),
    session_date=datetime(2018, 1, 25, 14, 32, 12, 456000),
    accept_by=datetime(2018, 1, 25, 14, 40, 0),
    accepted_date=None,
    confirmed_date=None,
    cancelled_date=datetime(2018, 1, 22, 18, 24, 11),
    cancelled_reason="I've had something come up",
    cancelled_by="BookingUser",
    rejected_reason=None,
    last_updated=datetime(2018, 1, 25, 14, 32, 12, 456000),
    comments="Hi, I had a great time last weekend, I want to do it again tonight!",
    action_client="BookedUser needs to accept or reject",
    candidate=SEED_CANDIDATE,
)

SEED_XML_BOOKING = attrs.evolve(
    SEED_JSON_BOOKING,
    credits=Decimal("8.0000"),
    session_date=datetime(2018, 1, 22, 21, 30, 0),
    accepted_date=datetime(2018, 1, 21, 13, 11, 27, 123000),
    confirmed_date=datetime(2018, 1, 21, 13, 24, 5, 987000),
)
