"""Exactly one reschedule per booking, against the real sandbox over loopback: concurrent callers,
re-runs, unknown outcomes and their reconciliation, discovery of passed bookings."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from aw_async._reconcile import reschedules_of

from aw_async import AdultWorkClient, BookingStatus, MadeBooking
from aw_async.errors import (
    AlreadyRescheduledError,
    InsufficientCreditsError,
    InvalidRequestError,
    OutcomeUnknownError,
)
from aw_async.journal import AttemptState, MemoryJournal, SqliteJournal
from aw_async.sandbox import SandboxServer

from .scripted import eventually, past_booking

TOKEN = "once-token"
USER = 41
LONDON_NAIVE_NOW = None


@pytest.fixture(params=["json", "xml"])
def format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        server.add_token(TOKEN, user_id=USER)
        server.set_balance(USER, Decimal(1000))
        yield server


def distinct(booking_id: int, **changes: Any) -> MadeBooking:
    """A passed booking whose kept properties are its own (so reconciliation can tell it apart)."""
    return past_booking(booking_id, comments=f"booking {booking_id}", credits="5", **changes)


def posts(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST")


# --- single-flight ------------------------------------------------------------------------------


async def test_fifty_concurrent_calls_for_one_booking_send_one_post(
    sandbox: SandboxServer, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.latency = 0.02  # keeps the calls truly concurrent
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        results = await asyncio.gather(*(aw.phonechat.reschedule_made_booking(4) for _ in range(50)))
    assert posts(sandbox) == 1
    assert sandbox.reschedule_count(4) == 1
    assert len({r.booking_id for r in results}) == 1
    assert sandbox.get_balance(USER) == Decimal(995)


async def test_clients_sharing_a_journal_share_the_flight_and_its_error(sandbox: SandboxServer) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.set_balance(USER, Decimal(1))  # not enough: every caller gets the same refusal
    sandbox.faults.latency = 0.02
    journal = MemoryJournal()
    async with (
        AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as first,
        AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as second,
    ):
        results = await asyncio.gather(
            *(aw.phonechat.reschedule_made_booking(4) for aw in (first, second) for _ in range(10)),
            return_exceptions=True,
        )
    assert all(isinstance(r, InsufficientCreditsError) for r in results)
    assert len({id(r) for r in results}) == 1  # one flight, one error, shared
    assert sum(1 for r in sandbox.requests if "MadeBookingDetails" in r.path) == 1


async def test_a_cancelled_caller_leaves_the_post_to_the_caller_still_waiting(sandbox: SandboxServer) -> None:
    # A web backend's double click: the first request's handler is cancelled (its client went away)
    # while the POST is in flight. The second still gets the new booking, from the same one POST.
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.add("delay", method="POST", seconds=0.2)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
        first = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        second = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        await eventually(lambda: posts(sandbox) == 1)
        first.cancel()
        new = await second
        assert first.cancelled()
        assert (await aw.phonechat.journal.get(4)).new_booking_id == new.booking_id  # type: ignore[union-attr]
    assert posts(sandbox) == 1
    assert sandbox.reschedule_count(4) == 1


# --- the journal's memory -----------------------------------------------------------------------


async def test_a_second_reschedule_is_refused_with_zero_requests_unless_forced(
    sandbox: SandboxServer, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        first = await aw.phonechat.reschedule_made_booking(4)
        seen = len(sandbox.requests)
        with pytest.raises(AlreadyRescheduledError) as caught:
            await aw.phonechat.reschedule_made_booking(4)
        assert (caught.value.booking_id, caught.value.new_booking_id) == (4, first.booking_id)
        assert len(sandbox.requests) == seen  # zero requests
        outcomes = await aw.phonechat.reschedule_made_bookings([4])
        assert isinstance(outcomes[0].error, AlreadyRescheduledError)
        assert len(sandbox.requests) == seen
        again = await aw.phonechat.reschedule_made_booking(4, force=True)
    assert again.booking_id != first.booking_id
    assert sandbox.reschedule_count(4) == 2


async def test_a_refusal_does_not_block_a_later_attempt(sandbox: SandboxServer) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.set_balance(USER, Decimal(1))
    async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
        with pytest.raises(InsufficientCreditsError):
            await aw.phonechat.reschedule_made_booking(4)
        assert (await aw.phonechat.journal.get(4)).state is AttemptState.REFUSED  # type: ignore[union-attr]
        sandbox.set_balance(USER, Decimal(10))
        await aw.phonechat.reschedule_made_booking(4)
    assert sandbox.reschedule_count(4) == 1


async def test_a_rerun_with_a_journal_on_disk_reschedules_nothing_twice(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    for n in range(1, 11):
        sandbox.add_booking(distinct(n), client_user_id=USER)
    path = tmp_path / "journal.sqlite3"
    for _ in range(2):  # the script run twice
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=path) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 11))
    assert all(isinstance(o.error, AlreadyRescheduledError) for o in outcomes)
    assert [sandbox.reschedule_count(n) for n in range(1, 11)] == [1] * 10


async def test_the_attempt_is_committed_before_the_post_arrives(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.add("delay", method="POST", seconds=0.5)  # holds the POST's answer back
    path = tmp_path / "journal.sqlite3"
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=path) as aw:
        call = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        await eventually(lambda: posts(sandbox) > 0)
        with sqlite3.connect(path) as other:  # what another process would read now
            state = other.execute("SELECT state FROM reschedules WHERE booking_id = 4").fetchone()
        assert state == ("in_flight",)
        new = await call
    with sqlite3.connect(path) as other:
        row = other.execute("SELECT state, new_booking_id FROM reschedules WHERE booking_id = 4").fetchone()
    assert row == ("rescheduled", new.booking_id)


# --- unknown outcomes and reconciliation --------------------------------------------------------


async def lose_the_answer(
    aw: AdultWorkClient, sandbox: SandboxServer, booking_id: int, *, processed: bool
) -> None:
    sandbox.faults.add("reset", method="POST", when="after" if processed else "before")
    with pytest.raises(OutcomeUnknownError):
        await aw.phonechat.reschedule_made_booking(booking_id)
    assert (await aw.phonechat.journal.get(booking_id)).state is AttemptState.UNKNOWN  # type: ignore[union-attr]


async def test_unknown_then_reconcile_finds_the_reschedule(sandbox: SandboxServer, format: str) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.add_booking(distinct(5), client_user_id=USER)  # a neighbour that must not be mistaken
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=True)
        found = await aw.phonechat.reconcile(4)
        assert found is not None
        assert found.booking_id == sandbox.rescheduled(4)[0]
        entry = await aw.phonechat.journal.get(4)
        assert entry is not None
        assert (entry.state, entry.new_booking_id) == (AttemptState.RESCHEDULED, found.booking_id)


async def test_unknown_then_reconcile_finds_nothing(sandbox: SandboxServer) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=False)
        assert await aw.phonechat.reconcile(4) is None
        assert (await aw.phonechat.journal.get(4)).state is AttemptState.REFUSED  # type: ignore[union-attr]
        await aw.phonechat.reschedule_made_booking(4)
    assert sandbox.reschedule_count(4) == 1


async def test_an_ambiguous_listing_names_the_candidates(sandbox: SandboxServer) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=True)
        # The user booked the same again by hand meanwhile: two bookings could be the reschedule.
        twin = attrs.evolve(sandbox.get_booking(sandbox.rescheduled(4)[0]), booking_id=900)  # type: ignore[arg-type]
        sandbox.add_booking(twin, client_user_id=USER)
        with pytest.raises(OutcomeUnknownError) as caught:
            await aw.phonechat.reconcile(4)
        assert sorted(caught.value.candidates) == sorted([sandbox.rescheduled(4)[0], 900])
        posted = posts(sandbox)
        with pytest.raises(OutcomeUnknownError):  # and a reschedule does not guess either
            await aw.phonechat.reschedule_made_booking(4)
        assert posts(sandbox) == posted


async def test_an_unknown_outcome_is_reconciled_before_anything_is_sent(
    sandbox: SandboxServer, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.add_booking(distinct(6), client_user_id=USER)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=True)
        await lose_the_answer(aw, sandbox, 6, processed=False)
        posted = posts(sandbox)
        with pytest.raises(AlreadyRescheduledError) as caught:
            await aw.phonechat.reschedule_made_booking(4)  # it happened: found, not sent again
        assert caught.value.new_booking_id == sandbox.rescheduled(4)[0]
        assert posts(sandbox) == posted
        await aw.phonechat.reschedule_made_booking(6)  # it did not: sent once now
    assert (sandbox.reschedule_count(4), sandbox.reschedule_count(6)) == (1, 1)


async def test_reconcile_needs_a_time_when_the_journal_has_none(sandbox: SandboxServer) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
        with pytest.raises(InvalidRequestError, match="since"):
            await aw.phonechat.reconcile(4)
        assert sandbox.requests == []
        assert await aw.phonechat.reconcile(4, since=datetime.now(UTC) - timedelta(hours=1)) is None


def test_the_reconciliation_rule_is_a_pure_function() -> None:
    zone = UTC
    original = distinct(1)
    since = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    new = attrs.evolve(original, booking_id=2, create_date=since + timedelta(seconds=1))
    older = attrs.evolve(new, booking_id=3, create_date=since - timedelta(hours=1))
    other_user = attrs.evolve(new, booking_id=4, candidate=attrs.evolve(new.candidate, user_id=7))  # type: ignore[misc]
    other_credits = attrs.evolve(new, booking_id=5, credits=Decimal("5.01"))
    listing = [new, older, other_user, other_credits, original]
    assert reschedules_of(original, listing, since=since, zone=zone) == [new]
    assert reschedules_of(original, listing, since=since, zone=zone, exclude=frozenset({2})) == []


# --- discovery ----------------------------------------------------------------------------------


async def test_passed_bookings_skips_what_was_rescheduled(sandbox: SandboxServer, format: str) -> None:
    now = datetime.now(UTC)
    for n, hours in ((1, 1), (2, 2), (3, 3), (4, 30)):  # 4 passed before the window
        sandbox.add_booking(distinct(n, session_date=now - timedelta(hours=hours)), client_user_id=USER)
    sandbox.add_booking(
        distinct(5, session_date=now - timedelta(hours=1), status=BookingStatus.CANCELLED),
        client_user_id=USER,
    )
    sandbox.add_booking(distinct(6, session_date=now + timedelta(hours=1)), client_user_id=USER)  # to come
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        await aw.phonechat.reschedule_made_booking(1)  # known to the journal
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as other:
            await other.phonechat.reschedule_made_booking(2)  # not known to aw's journal
        found = [b.booking_id async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24))]
        assert found == [3]  # 2 is recognised by its newer twin in the listing
        assert [
            b.booking_id
            async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24), statuses=["Cancelled"])
        ] == [5]
        with pytest.raises(InvalidRequestError):
            aw.phonechat.passed_bookings(since="yesterday")  # type: ignore[arg-type]


async def test_a_sqlite_journal_is_closed_with_the_client_that_opened_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    shared = SqliteJournal(tmp_path / "shared.sqlite3")
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=shared) as aw:
        assert aw.phonechat.journal is shared
        await shared.get(1)
    await shared.get(1)  # still open: the client did not open it, so it does not close it
    await shared.aclose()
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=tmp_path / "own.sqlite3") as aw:
        own = aw.phonechat.journal
        await own.get(1)
    with pytest.raises(RuntimeError, match="closed"):
        await own.get(1)
