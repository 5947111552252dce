"""The booking lifecycle against the real sandbox over loopback, in both formats: list, create,
cancel, requirements; every local rule refused with zero requests; POSTs never sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from aw_async import AdultWorkClient, BookingStatus, CallMethod, MadeBooking
from aw_async._endpoints import ENDPOINTS
from aw_async.errors import (
    BookingStatusError,
    InvalidRequestError,
    OfferTooLowError,
    OutcomeUnknownError,
    PermissionDeniedError,
    SessionPassedError,
)
from aw_async.models import PhoneChatMethod, UserBookingRequirements
from aw_async.sandbox import SandboxServer
from aw_async.sandbox._handlers import HANDLERS

from ..scripted import past_booking

TOKEN = "lifecycle-token"
USER = 21
MEMBER = 31
LONDON = ZoneInfo("Europe/London")
PERFORMER = 123456  # the seed booking's Candidate


@pytest.fixture(params=["json", "xml"])
def format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def requirements(server: SandboxServer) -> None:
    server.set_requirements(
        PERFORMER,
        UserBookingRequirements(
            phone_chat_ppm=Decimal("1.50"),
            methods=(PhoneChatMethod(method=CallMethod.CALLED_BY_CANDIDATE, description="Phone"),),
        ),
    )


pytestmark = pytest.mark.sandbox(
    token=TOKEN, user=USER, group_members=[MEMBER], balance=100, seed=requirements
)


@pytest.fixture
async def aw(sandbox: SandboxServer, format: str) -> AsyncIterator[AdultWorkClient]:
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as client:
        yield client


def seed(
    sandbox: SandboxServer, booking_id: int, created: datetime, user: int = USER, **changes: Any
) -> None:
    sandbox.add_booking(past_booking(booking_id, create_date=created, **changes), client_user_id=user)


def requests_to(sandbox: SandboxServer, operation: str) -> int:
    return sum(1 for r in sandbox.requests if r.path.lower().endswith(operation.lower()))


def in_future(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


# --- the sandbox serves every declaration ------------------------------------------------------


def test_the_sandbox_has_a_handler_for_every_declared_endpoint() -> None:
    assert set(HANDLERS) == set(ENDPOINTS)


# --- MadeBookings -------------------------------------------------------------------------------


async def test_a_page_is_ordered_and_paged(sandbox: SandboxServer, aw: AdultWorkClient) -> None:
    base = datetime(2026, 11, 1, 12, 0)
    for n in range(1, 8):
        seed(sandbox, n, base + timedelta(hours=n))
    page = await aw.phonechat.made_bookings_page(2, per_page=3)
    assert (page.page_number, page.page_count, page.bookings_per_page) == (2, 3, 3)
    assert [b.booking_id for b in page.bookings] == [4, 3, 2]  # newest first
    oldest = await aw.phonechat.made_bookings_page(order_by="date-asc", per_page=2)
    assert [b.booking_id for b in oldest.bookings] == [1, 2]
    past_the_end = await aw.phonechat.made_bookings_page(9, per_page=3)
    assert past_the_end.bookings == ()
    assert past_the_end.page_count == 3


async def test_start_date_keeps_bookings_created_on_or_after_it(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    seed(sandbox, 1, datetime(2026, 10, 31, 23, 59))
    seed(sandbox, 2, datetime(2026, 11, 1, 0, 0))
    seed(sandbox, 3, datetime(2026, 11, 2, 9, 0))
    page = await aw.phonechat.made_bookings_page(start_date=date(2026, 11, 1), order_by="date-asc")
    assert [b.booking_id for b in page.bookings] == [2, 3]
    assert "StartDate=2026-11-01" in next(r.query for r in sandbox.requests if "MadeBookings" in r.path)


async def test_every_booking_once_lazily_even_when_pages_shift(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    base = datetime(2026, 11, 1, 12, 0)
    for n in range(1, 11):
        seed(sandbox, n, base + timedelta(hours=n))
    seen: list[int] = []
    async for booking in aw.phonechat.made_bookings(per_page=3):
        seen.append(booking.booking_id)
        if len(seen) == 1:
            assert requests_to(sandbox, "MadeBookings") == 1  # lazy: one page so far
        if len(seen) == 2:  # a booking made meanwhile pushes every other one place on
            seed(sandbox, 50, base + timedelta(days=30))
    assert seen == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]  # 7 would come twice without the dedupe
    assert requests_to(sandbox, "MadeBookings") == 4


async def test_the_group_manager_variant_lists_a_members_bookings(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    seed(sandbox, 1, datetime(2026, 11, 1), user=MEMBER)
    seed(sandbox, 2, datetime(2026, 11, 1), user=USER)
    page = await aw.phonechat.made_bookings_page(as_user=MEMBER)
    assert [b.booking_id for b in page.bookings] == [1]
    assert [b.booking_id async for b in aw.phonechat.made_bookings(as_user=MEMBER)] == [1]
    with pytest.raises(PermissionDeniedError):
        await aw.phonechat.made_bookings_page(as_user=999)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page": 0}, "PageNumber"),
        ({"per_page": 0}, "BookingsPerPage"),
        ({"per_page": 101}, "BookingsPerPage"),
        ({"order_by": "price-asc"}, "OrderBy"),
        ({"start_date": "2026-11-01"}, "StartDate"),
    ],
)
async def test_a_listing_out_of_range_is_refused_with_zero_requests(
    sandbox: SandboxServer, aw: AdultWorkClient, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await aw.phonechat.made_bookings_page(**kwargs)
    assert caught.value.field == field
    if "page" not in kwargs:
        with pytest.raises(InvalidRequestError):
            aw.phonechat.made_bookings(**kwargs)  # at once, not at the first iteration
    assert sandbox.requests == []


# --- GetUserBookingRequirements -----------------------------------------------------------------


async def test_requirements(sandbox: SandboxServer, aw: AdultWorkClient) -> None:
    requirements = await aw.phonechat.get_user_booking_requirements(PERFORMER)
    assert requirements.phone_chat_ppm == Decimal("1.50")
    assert requirements.methods == (
        PhoneChatMethod(method=CallMethod.CALLED_BY_CANDIDATE, description="Phone"),
    )
    sandbox.set_requirements(7, UserBookingRequirements())
    assert await aw.phonechat.get_user_booking_requirements(7) == UserBookingRequirements()


# --- CreateBooking ------------------------------------------------------------------------------


def offer(**changes: Any) -> dict[str, Any]:
    return {
        "book_user_id": PERFORMER,
        "session_date": in_future(days=1),
        "duration": 20,
        "method": CallMethod.CALLED_BY_CANDIDATE,
        "credits": Decimal("30.00"),
        "accept_by": in_future(hours=20),
        "phone_number": "07700 900123",
        "comments": "Friday?",
        **changes,
    }


async def test_a_booking_is_created_with_server_local_times(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    session = datetime(2031, 7, 1, 18, 30, tzinfo=UTC)  # 19:30 in London (summer time)
    booking = await aw.phonechat.create_booking(
        **offer(session_date=session, accept_by=session - timedelta(hours=2))
    )
    assert booking.status == BookingStatus.PENDING
    assert booking.session_date == datetime(2031, 7, 1, 19, 30)  # naive: server-local
    assert booking.credits == Decimal("30.00")
    assert booking.phone_number == "07700900123"
    assert booking.candidate is not None
    assert booking.candidate.user_id == PERFORMER
    assert sandbox.get_booking(booking.booking_id) == booking
    assert [b.booking_id for b in sandbox.bookings_of(USER)] == [booking.booking_id]
    assert requests_to(sandbox, "CreateBooking") == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"duration": 4}, "Duration"),
        ({"method": 4}, "Method"),
        ({"phone_number": None}, "PhoneNumber"),
        ({"phone_number": "12345"}, "PhoneNumber"),
        ({"phone_number": "0770090012345"}, "PhoneNumber"),
        ({"method": CallMethod.SKYPE, "phone_number": None}, "SkypeName"),
        ({"session_date": datetime.now(UTC) - timedelta(minutes=1)}, "SessionDate"),
        ({"accept_by": datetime.now(UTC) - timedelta(minutes=1)}, "AcceptBy"),
        ({"accept_by": in_future(days=2)}, "AcceptBy"),
        ({"credits": 30.0}, "Credits"),
        ({"credits": Decimal("-1")}, "Credits"),
        ({"book_user_id": 0}, "BookUserID"),
    ],
)
async def test_a_broken_rule_is_refused_before_any_request(
    sandbox: SandboxServer, aw: AdultWorkClient, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await aw.phonechat.create_booking(**offer(**changes))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert sandbox.requests == []


async def test_an_offer_below_the_price_per_minute_is_refused_before_the_post(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    with pytest.raises(OfferTooLowError) as caught:
        await aw.phonechat.create_booking(**offer(credits=Decimal("29.99")))  # 20 min x 1.50 = 30
    assert (caught.value.required, caught.value.offered) == (Decimal("30.00"), Decimal("29.99"))
    assert requests_to(sandbox, "CreateBooking") == 0
    assert requests_to(sandbox, "GetUserBookingRequirements") == 1


async def test_with_checks_off_the_server_refuses_the_low_offer(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    from aw_async.errors import ApiError

    with pytest.raises(ApiError, match="Credits must be at least 30"):
        await aw.phonechat.create_booking(**offer(credits=Decimal("10")), check_preconditions=False)
    assert requests_to(sandbox, "GetUserBookingRequirements") == 0


@pytest.mark.parametrize("operation", ["CreateBooking", "CancelMadeBooking"])
async def test_a_post_whose_outcome_is_unknown_is_never_sent_again(
    sandbox: SandboxServer, aw: AdultWorkClient, operation: str
) -> None:
    seed(sandbox, 1, datetime(2026, 11, 1), status=BookingStatus.PENDING)
    sandbox.faults.add("reset", method="POST", path=operation, when="after", times=5)
    call = (
        aw.phonechat.create_booking(**offer())
        if operation == "CreateBooking"
        else aw.phonechat.cancel_made_booking(1, "changed my mind")
    )
    with pytest.raises(OutcomeUnknownError):
        await call
    assert requests_to(sandbox, operation) == 1


# --- CancelMadeBooking --------------------------------------------------------------------------


async def test_a_pending_booking_is_cancelled(sandbox: SandboxServer, aw: AdultWorkClient) -> None:
    seed(sandbox, 1, datetime(2026, 11, 1), status=BookingStatus.PENDING, session_date=in_future(days=1))
    cancelled = await aw.phonechat.cancel_made_booking(1, "something came up")
    assert cancelled.status == BookingStatus.CANCELLED
    assert cancelled.cancelled_reason == "something came up"
    assert sandbox.get_booking(1) == cancelled


@pytest.mark.parametrize("status", [BookingStatus.CANCELLED, BookingStatus.REJECTED])
async def test_a_cancelled_or_rejected_booking_is_refused_without_the_post(
    sandbox: SandboxServer, aw: AdultWorkClient, status: BookingStatus
) -> None:
    seed(sandbox, 1, datetime(2026, 11, 1), status=status)
    with pytest.raises(BookingStatusError) as caught:
        await aw.phonechat.cancel_made_booking(1, "again")
    assert caught.value.status == status
    assert requests_to(sandbox, "CancelMadeBooking") == 0


async def test_a_confirmed_booking_whose_session_passed_is_refused_without_the_post(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    seed(sandbox, 1, datetime(2026, 11, 1), status=BookingStatus.CONFIRMED)  # session an hour ago
    with pytest.raises(SessionPassedError):
        await aw.phonechat.cancel_made_booking(1, "too late")
    assert requests_to(sandbox, "CancelMadeBooking") == 0
    # ...and the server refuses it too when the check is off
    from aw_async.errors import ApiError

    with pytest.raises(ApiError, match="after its session"):
        await aw.phonechat.cancel_made_booking(1, "too late", check_preconditions=False)


async def test_a_cancel_needs_a_reason(sandbox: SandboxServer, aw: AdultWorkClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await aw.phonechat.cancel_made_booking(1, "  ")
    assert caught.value.field == "Reason"
    assert sandbox.requests == []


# --- the sandbox's bookkeeping ------------------------------------------------------------------


async def test_new_ids_never_collide_and_seeding_a_created_id_is_refused(
    sandbox: SandboxServer, aw: AdultWorkClient
) -> None:
    seed(sandbox, 500, datetime(2026, 11, 1), credits="5")
    new = await aw.phonechat.reschedule_made_booking(500)
    assert new.booking_id == 501
    assert sandbox.reschedule_count(500) == 1
    created = await aw.phonechat.create_booking(**offer())
    assert created.booking_id == 502
    with pytest.raises(ValueError, match="sandbox created"):
        seed(sandbox, 501, datetime(2026, 11, 1))
    assert sandbox.get_booking(501) == new


async def test_an_unhandled_operation_answers_501_never_another_ones(sandbox: SandboxServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{sandbox.url}/v1/PhoneChat/ReInvite",
            json={"BookingID": 1},
            headers={"Authorization": f"bearer {TOKEN}"},
        )
        assert answer.status == 501
        answer.release()


def test_bookings_keep_their_order_in_the_seed() -> None:  # the helper's own contract
    booking = past_booking(1, create_date=datetime(2026, 1, 1))
    assert attrs.evolve(booking, booking_id=2).create_date == booking.create_date
    assert isinstance(booking, MadeBooking)
    assert LONDON.key == "Europe/London"
