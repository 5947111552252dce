"""Rescheduling: prerequisites refuse with no POST sent; the batch accounts for credits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import attrs
import pytest

from aw_async import RescheduleOutcome
from aw_async.errors import (
    ApiError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    NotStartedError,
    OutcomeUnknownError,
    PermissionDeniedError,
    PreconditionError,
    ServerError,
    SessionNotPassedError,
)
from aw_async.phonechat._prerequisites import check_session_passed
from aw_async.testing import Request, Response

from ..answers import error, format_asked
from ..scripted import ScriptedApi, past_booking

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi()


@pytest.mark.parametrize("format", ["json", "xml"])
async def test_a_reschedule_with_its_prerequisites_met_sends_one_post(api: ScriptedApi, format: str) -> None:
    api.add(past_booking(1, credits="8.50"))
    async with api.client(format=format) as aw:
        new = await aw.phonechat.reschedule_made_booking(1)
    assert new.booking_id == 1001
    assert new.credits == Decimal("8.50")
    assert api.count("POST", "RescheduleMadeBooking") == 1
    assert api.count("GET", "MadeBookingDetails") == 1
    assert api.count("GET", "GetCurrentCreditBalance") == 1
    assert api.balance == Decimal("91.50")
    assert {format_asked(request) for request in api.transport.requests} == {format}  # by Accept


async def test_a_session_that_has_not_passed_is_refused_without_a_post(api: ScriptedApi) -> None:
    session = datetime.now(UTC) + timedelta(minutes=30)
    api.add(past_booking(1, session_date=session))
    async with api.client() as aw:
        with pytest.raises(SessionNotPassedError) as caught:
            await aw.phonechat.reschedule_made_booking(1)
    assert caught.value.session_date == session
    assert caught.value.now < session
    assert api.count("POST", "RescheduleMadeBooking") == 0


async def test_insufficient_credits_are_refused_without_a_post(api: ScriptedApi) -> None:
    api.add(past_booking(1, credits="8"))
    api.balance = Decimal("7.99")
    async with api.client() as aw:
        with pytest.raises(InsufficientCreditsError) as caught:
            await aw.phonechat.reschedule_made_booking(1)
    assert (caught.value.required, caught.value.balance) == (Decimal("8"), Decimal("7.99"))
    assert api.count("POST", "RescheduleMadeBooking") == 0


async def test_an_exact_balance_is_enough(api: ScriptedApi) -> None:
    api.add(past_booking(1, credits="8"))
    api.balance = Decimal("8.00")
    async with api.client() as aw:
        await aw.phonechat.reschedule_made_booking(1)
    assert api.balance == 0


async def test_without_checks_only_the_post_is_sent(api: ScriptedApi) -> None:
    api.add(past_booking(1, session_date=datetime.now(UTC) + timedelta(days=1)))
    api.balance = Decimal(0)
    async with api.client() as aw:
        await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert api.seen == [("POST", "/v1/PhoneChat/RescheduleMadeBooking")]


async def test_a_failed_prerequisite_fetch_sends_no_post(api: ScriptedApi) -> None:
    async with api.client() as aw:
        with pytest.raises(NotFoundError):
            await aw.phonechat.reschedule_made_booking(404)
    assert api.count("POST", "RescheduleMadeBooking") == 0


def london_naive(delta: timedelta) -> datetime:
    """Now plus ``delta`` as the server writes it: London wall-clock time, no suffix."""
    return (datetime.now(LONDON) + delta).replace(tzinfo=None)


@pytest.mark.parametrize(("delta", "passed"), [(timedelta(minutes=-2), True), (timedelta(minutes=2), False)])
async def test_a_naive_session_date_is_read_in_the_server_time_zone(
    api: ScriptedApi, delta: timedelta, passed: bool
) -> None:
    api.add(past_booking(1, session_date=london_naive(delta)))
    async with api.client() as aw:
        if passed:
            await aw.phonechat.reschedule_made_booking(1)
        else:
            with pytest.raises(SessionNotPassedError):
                await aw.phonechat.reschedule_made_booking(1)


async def test_the_server_time_zone_is_configurable(api: ScriptedApi) -> None:
    # 90 minutes ago in Tokyo's wall-clock time is long in the future read as UTC-10 time.
    tokyo_past = (datetime.now(ZoneInfo("Asia/Tokyo")) - timedelta(minutes=90)).replace(tzinfo=None)
    api.add(past_booking(1, session_date=tokyo_past))
    async with api.client(server_timezone="Asia/Tokyo") as aw:
        await aw.phonechat.reschedule_made_booking(1)
    api.add(past_booking(2, session_date=tokyo_past))
    async with api.client(server_timezone="Pacific/Honolulu") as aw:
        with pytest.raises(SessionNotPassedError):
            await aw.phonechat.reschedule_made_booking(2)


def test_session_checks_at_the_edges() -> None:
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    booking = past_booking(1, session_date=now)
    with pytest.raises(SessionNotPassedError):  # "must have passed": equal is not passed
        check_session_passed(booking, now, LONDON)
    check_session_passed(attrs.evolve(booking, session_date=now - timedelta(microseconds=1)), now, LONDON)
    with pytest.raises(PreconditionError, match="no SessionDate"):
        check_session_passed(attrs.evolve(booking, session_date=None), now, LONDON)
    # 00:59 London wall time on the night clocks go forward is 00:59 UTC (still GMT): not passed.
    with pytest.raises(SessionNotPassedError):
        check_session_passed(attrs.evolve(booking, session_date=datetime(2026, 3, 29, 0, 59)), now, LONDON)


@pytest.mark.parametrize("bad", ["1", 1.0, True, None])
async def test_a_booking_id_must_be_an_int(api: ScriptedApi, bad: Any) -> None:
    async with api.client() as aw:
        with pytest.raises(TypeError, match="BookingID is an int"):
            await aw.phonechat.reschedule_made_booking(bad)
        with pytest.raises(TypeError, match="BookingID is an int"):
            await aw.phonechat.reschedule_made_bookings([1, bad])
    assert api.seen == []


@pytest.mark.parametrize("bad", [0, -1, 2**31, 2**63])
async def test_a_booking_id_the_server_cannot_hold_is_refused_before_anything(
    api: ScriptedApi, bad: int
) -> None:
    async with api.client(journal="memory") as aw:
        with pytest.raises(InvalidRequestError, match="BookingID: must be from 1 to 2147483647") as caught:
            await aw.phonechat.reschedule_made_booking(bad)
        assert caught.value.field == "BookingID"
        with pytest.raises(InvalidRequestError):
            await aw.phonechat.reschedule_made_bookings([1, bad])
        with pytest.raises(InvalidRequestError):
            await aw.phonechat.reconcile(bad)
        assert await aw.journal.entries() == []  # nothing read, written or sent
    assert api.seen == []


# --- the batch -------------------------------------------------------------------------------------


async def test_a_batch_reserves_credits_as_bookings_go_through(api: ScriptedApi) -> None:
    api.add(*(past_booking(i, credits="8") for i in range(1, 6)))
    api.balance = Decimal(20)
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2, 3, 4, 5], concurrency=5)
    assert [o.booking_id for o in outcomes] == [1, 2, 3, 4, 5]
    assert sum(o.ok for o in outcomes) == 2
    refused = [o.error for o in outcomes if not o.ok]
    assert all(isinstance(e, InsufficientCreditsError) for e in refused)
    assert {e.balance for e in refused} == {Decimal(4)}  # type: ignore[union-attr]
    assert api.count("POST", "RescheduleMadeBooking") == 2  # no POST for a booking it cannot cover
    assert api.balance == Decimal(4)


async def test_a_batch_sends_at_most_two_requests_per_booking_plus_one(api: ScriptedApi) -> None:
    api.add(*(past_booking(i, credits="1") for i in range(1, 51)))
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 51), concurrency=10)
    assert all(o.ok for o in outcomes)
    assert len(api.seen) == 2 * 50 + 1
    assert api.count("GET", "GetCurrentCreditBalance") == 1


async def test_a_batch_without_checks_sends_only_posts(api: ScriptedApi) -> None:
    api.add(*(past_booking(i) for i in range(1, 11)))
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 11), check_preconditions=False)
    assert all(o.ok for o in outcomes)
    assert len(api.seen) == 10
    assert {m for m, _ in api.seen} == {"POST"}


async def test_duplicates_are_collapsed_and_order_is_kept(api: ScriptedApi) -> None:
    api.add(*(past_booking(i, credits="1") for i in (3, 1, 2)))
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([3, 1, 3, 2, 1, 3], concurrency=3)
    assert [o.booking_id for o in outcomes] == [3, 1, 2]
    assert api.count("POST", "RescheduleMadeBooking") == 3


async def test_one_failure_never_stops_the_others(api: ScriptedApi) -> None:
    api.add(
        past_booking(1), past_booking(3), past_booking(4, session_date=datetime.now(UTC) + timedelta(hours=1))
    )
    api.overrides["POST", 3] = lambda: error(400, "The request is invalid.")
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2, 3, 4, 5], concurrency=2)
    kinds = {o.booking_id: type(o.error).__name__ if o.error else "ok" for o in outcomes}
    assert kinds == {
        1: "ok",
        2: "NotFoundError",
        3: "ApiError",
        4: "SessionNotPassedError",
        5: "NotFoundError",
    }


async def test_credits_come_back_when_a_post_certainly_spent_none(api: ScriptedApi) -> None:
    # Balance 10: booking 1 (8 credits) is refused by the server with a 400, so its credits are
    # given back and booking 2 (8 credits) still fits.
    api.add(past_booking(1, credits="8"), past_booking(2, credits="8"))
    api.balance = Decimal(10)
    api.overrides["POST", 1] = lambda: error(400, "The request is invalid.")
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2], concurrency=1)
    assert [o.ok for o in outcomes] == [False, True]


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (lambda: error(500), ServerError),
        (aiohttp.ServerDisconnectedError, OutcomeUnknownError),
    ],
)
async def test_credits_stay_reserved_when_a_post_may_have_spent_them(
    api: ScriptedApi, failure: Any, error_class: type[Exception]
) -> None:
    api.add(past_booking(1, credits="8"), past_booking(2, credits="8"))
    api.balance = Decimal(10)

    def fail() -> Response:
        result = failure()
        if isinstance(result, Exception):
            raise result
        return result

    api.overrides["POST", 1] = fail
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2], concurrency=1)
    assert isinstance(outcomes[0].error, error_class)
    assert isinstance(outcomes[1].error, InsufficientCreditsError)  # better refused than overspent
    assert api.count("POST", "RescheduleMadeBooking") == 1


async def test_a_failed_balance_read_fails_every_booking_and_sends_nothing_else(api: ScriptedApi) -> None:
    api.add(past_booking(1), past_booking(2))
    api.on_balance = lambda request: error(403, "Authorization has been denied.")
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2])
    assert [type(o.error).__name__ for o in outcomes] == ["NotStartedError"] * 2
    assert all(isinstance(o.error, NotStartedError) for o in outcomes)
    stopped_by = {id(o.error.stopped_by) for o in outcomes if isinstance(o.error, NotStartedError)}
    assert len(stopped_by) == 1  # one cause, named by every booking it stopped
    assert isinstance(outcomes[0].error.stopped_by, PermissionDeniedError)  # type: ignore[union-attr]
    assert api.seen == [("GET", "/v1/CreditHistory/GetCurrentCreditBalance")]  # and nothing after it


async def test_on_progress_sees_each_outcome_as_it_completes(api: ScriptedApi) -> None:
    api.add(*(past_booking(i, credits="1") for i in range(1, 8)))
    seen: list[RescheduleOutcome] = []
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 10), on_progress=seen.append)
    assert sorted(o.booking_id for o in seen) == list(range(1, 10))
    assert {o.booking_id: o for o in seen} == {o.booking_id: o for o in outcomes}


async def test_an_on_progress_that_raises_does_not_stop_the_batch(
    api: ScriptedApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.add(*(past_booking(i, credits="1") for i in range(1, 4)))

    def broken(outcome: RescheduleOutcome) -> None:
        raise RuntimeError("progress bar is broken")

    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings([1, 2, 3], on_progress=broken)
    assert all(o.ok for o in outcomes)
    assert "on_progress raised" in caplog.text


async def test_concurrency_is_bounded(api: ScriptedApi) -> None:
    in_flight = 0
    peak = 0
    api.add(*(past_booking(i, credits="1") for i in range(1, 31)))

    async def slow_details(request: Request) -> Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return api.details(request)

    api.on_details = slow_details
    async with api.client() as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 31), concurrency=4)
    assert all(o.ok for o in outcomes)
    assert peak == 4


async def test_cancelling_a_batch_cancels_its_work_and_reports_posts_in_flight(api: ScriptedApi) -> None:
    api.add(*(past_booking(i, credits="1") for i in range(1, 21)))
    posted = asyncio.Event()

    async def hanging_post(request: Request) -> Response:
        posted.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    api.on_reschedule = hanging_post
    seen: list[RescheduleOutcome] = []
    async with api.client() as aw:
        batch = asyncio.create_task(
            aw.phonechat.reschedule_made_bookings(range(1, 21), concurrency=3, on_progress=seen.append)
        )
        # The first POST, or the batch's end without one: a failure then, not a hang.
        first_post = asyncio.create_task(posted.wait())
        await asyncio.wait([first_post, batch], return_when=asyncio.FIRST_COMPLETED)
        if not first_post.done():
            first_post.cancel()
            pytest.fail(f"the batch ended before any POST was sent: {batch.result()!r}")
        await asyncio.sleep(0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []  # none left
    posts = api.count("POST", "RescheduleMadeBooking")
    assert 1 <= posts <= 3
    unknown = [o for o in seen if isinstance(o.error, OutcomeUnknownError)]
    assert len(unknown) == posts  # every POST in flight is reported as such


@pytest.mark.parametrize(("concurrency", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
async def test_concurrency_must_be_a_positive_int(
    api: ScriptedApi, concurrency: Any, error: type[Exception]
) -> None:
    async with api.client() as aw:
        with pytest.raises(error, match="concurrency"):
            await aw.phonechat.reschedule_made_bookings([1], concurrency=concurrency)
    assert api.seen == []


async def test_an_empty_batch(api: ScriptedApi) -> None:
    async with api.client() as aw:
        assert await aw.phonechat.reschedule_made_bookings([]) == []
    assert api.seen == []


def test_an_outcome_says_whether_it_went_through() -> None:
    assert RescheduleOutcome(1, booking=past_booking(2)).ok
    assert not RescheduleOutcome(1, error=ApiError(400, None)).ok


async def test_a_user_id_must_be_an_int_and_is_called_one(api: ScriptedApi) -> None:
    async with api.client() as aw:
        with pytest.raises(TypeError, match="UserID is an int"):
            await aw.phonechat.made_booking_details(1, as_user="77")  # type: ignore[arg-type]
    assert api.seen == []
