"""Exactly one reschedule per booking, through the client against the real sandbox over loopback:
single-flight, the journal's memory, unknown outcomes reconciled only with proof, twins, zones, later
bookings, discovery. Each reschedule is counted on the server (``reschedule_count``). Time that a
settle window needs passes on the journal's own clock (:class:`tests.clocks.ManualClocks`)."""

from __future__ import annotations

import asyncio
import email.utils
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from aw_async import AdultWorkClient, BookingStatus, CallMethod, MadeBooking
from aw_async.codecs import JsonCodec
from aw_async.errors import (
    AlreadyRescheduledError,
    InFlightElsewhereError,
    InsufficientCreditsError,
    InvalidRequestError,
    OutcomeUnknownError,
)
from aw_async.journal import AttemptState, Journal, Key, MemoryJournal, SqliteJournal, Terms
from aw_async.journal._rules import settle_seconds
from aw_async.models import MadeBookingsPage
from aw_async.sandbox import SandboxServer
from aw_async.testing import MockTransport, Request, Response

from ..answers import answer
from ..clocks import ManualClocks
from ..scripted import eventually, past_booking

TOKEN = "once-token"
ROOT = "https://api.example"
USER = 41
TIMEOUT = 5.0
SETTLE = settle_seconds(TIMEOUT)


@pytest.fixture(params=["json", "xml"])
def format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, balance=1000)


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture
async def journal(clock: ManualClocks) -> AsyncIterator[Journal]:
    made = MemoryJournal(clocks=clock.clocks())
    yield made
    await made.aclose()


def client(sandbox: SandboxServer, journal: Journal | str | Path, **options: Any) -> AdultWorkClient:
    return AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal, timeout=TIMEOUT, **options)


def distinct(booking_id: int, **changes: Any) -> MadeBooking:
    """A passed booking whose kept terms are its own (no twin of any other)."""
    return past_booking(booking_id, comments=f"booking {booking_id}", credits="5", **changes)


def twin(booking_id: int, **changes: Any) -> MadeBooking:
    """A passed booking with the terms every twin shares (a weekly booking with one performer)."""
    return past_booking(booking_id, comments="same time next week?", credits="5", **changes)


def posts(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST")


def key(sandbox: SandboxServer, booking_id: int) -> Key:
    return Key(sandbox.url, booking_id)


async def lose_the_answer(
    aw: AdultWorkClient, sandbox: SandboxServer, booking_id: int, *, processed: bool
) -> None:
    """One reschedule whose answer is lost, after the server processed it or before."""
    sandbox.faults.add("reset", method="POST", when="after" if processed else "before")
    with pytest.raises(OutcomeUnknownError):
        await aw.phonechat.reschedule_made_booking(booking_id)
    entry = await aw.journal.get(key(sandbox, booking_id))
    assert entry is not None
    assert entry.state is AttemptState.UNKNOWN


# --- single-flight ------------------------------------------------------------------------------


async def test_fifty_concurrent_calls_for_one_booking_send_one_post(
    sandbox: SandboxServer, journal: Journal, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.latency = 0.02  # keeps the calls truly concurrent
    async with client(sandbox, journal, format=format) as aw:
        results = await asyncio.gather(*(aw.phonechat.reschedule_made_booking(4) for _ in range(50)))
    assert posts(sandbox) == 1
    assert sandbox.reschedule_count(4) == 1
    assert len({r.booking_id for r in results}) == 1
    assert sandbox.get_balance(USER) == Decimal(995)


async def test_clients_sharing_a_journal_share_the_flight_and_its_error(
    sandbox: SandboxServer, journal: Journal
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.set_balance(USER, Decimal(1))  # not enough: every caller gets the same refusal
    sandbox.faults.latency = 0.02
    async with client(sandbox, journal) as first, client(sandbox, journal) as second:
        results = await asyncio.gather(
            *(aw.phonechat.reschedule_made_booking(4) for aw in (first, second) for _ in range(10)),
            return_exceptions=True,
        )
    assert all(isinstance(r, InsufficientCreditsError) for r in results)
    assert len({id(r) for r in results}) == 1  # one flight, one error, shared
    assert sum(1 for r in sandbox.requests if "MadeBookingDetails" in r.path) == 1


async def test_concurrent_reschedules_of_different_bookings_share_their_balance_read(
    sandbox: SandboxServer, journal: Journal
) -> None:
    # Each would read the same balance (none has spent yet), and a read costs more than the POST.
    for booking_id in range(1, 11):
        sandbox.add_booking(distinct(booking_id), client_user_id=USER)
    sandbox.faults.latency = 0.05  # the first read is still on its way when the others need one
    async with client(sandbox, journal) as aw:
        await asyncio.gather(*(aw.phonechat.reschedule_made_booking(n) for n in range(1, 11)))
    assert [sandbox.reschedule_count(n) for n in range(1, 11)] == [1] * 10
    reads = sum(1 for r in sandbox.requests if "GetCurrentCreditBalance" in r.path)
    assert 1 <= reads < 10


async def test_a_balance_read_begun_before_a_post_spent_credits_is_not_shared_with_a_later_caller() -> None:
    # Balance 100, each booking 60. C's POST spends while A's read, sent before the spend, is still
    # on its way; D starts after C's POST landed. Joining A's read, D would see 100 and POST a
    # reschedule the balance no longer covers; it reads the balance afresh and is refused.
    state = {"balance": Decimal(100), "posts": 0}
    reads: list[asyncio.Event] = []
    posting = asyncio.Event()

    async def handle(request: Request) -> Response:
        if "GetCurrentCreditBalance" in request.url:
            seen = state["balance"]  # the server reads it when the GET arrives
            answered = asyncio.Event()
            reads.append(answered)
            await answered.wait()
            return answer(seen)
        if "MadeBookingDetails" in request.url:
            return answer(past_booking(int(request.url.rsplit("=", 1)[1]), credits="60"))
        await posting.wait()
        state["balance"] -= 60
        state["posts"] += 1
        return answer(past_booking(9000 + state["posts"]))

    async def turns() -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async with AdultWorkClient("token", transport=MockTransport(handle), journal="memory") as aw:
        c = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(1))
        await turns()
        reads[0].set()  # C's read: 100; C's POST is on its way
        await turns()
        a = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(2))
        await turns()  # A's read is sent while C's POST has not spent yet: it will say 100
        posting.set()
        await c
        d = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(3))
        await turns()
        assert len(reads) == 3  # D sent a read of its own
        for read in reads:
            read.set()
        results = await asyncio.gather(a, d, return_exceptions=True)
    assert not isinstance(results[0], BaseException)  # A's read was concurrent with C's POST: as before
    assert isinstance(results[1], InsufficientCreditsError)  # D saw the 40 left, and sent nothing
    assert state["posts"] == 2


class _GrantsThenWaits(MemoryJournal):
    """A journal written elsewhere: its claim is granted, then its caller waits for word of it (a
    commit's notice), and makes no promise about a cancellation in between."""

    claims_survive_cancellation = False

    async def claim(self, key: Key, **options: Any) -> Any:
        granted = await super().claim(key, **options)
        await asyncio.sleep(0.05)
        return granted


async def test_a_caller_cancelled_while_its_claim_is_on_its_way_gives_the_claim_back(
    sandbox: SandboxServer,
) -> None:
    # Left in flight under this live process, the claim would hold every later call back; nothing
    # was sent, so it is given back as refused, and the next call sends the one POST.
    sandbox.add_booking(distinct(4), client_user_id=USER)
    journal = _GrantsThenWaits()
    async with client(sandbox, journal) as aw:
        caller = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        await eventually(lambda: bool(journal._live))  # granted, its notice on its way
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        entry = await journal.get(key(sandbox, 4))
        assert entry is not None
        assert entry.state is AttemptState.REFUSED
        await aw.phonechat.reschedule_made_booking(4, check_preconditions=False)
    assert sandbox.reschedule_count(4) == 1


async def test_a_cancelled_caller_leaves_the_post_to_the_caller_still_waiting(
    sandbox: SandboxServer, journal: Journal
) -> None:
    # A web backend's double click: the first request's handler is cancelled (its client went away)
    # while the POST is in flight. The second still gets the new booking, from the same one POST.
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.add("delay", method="POST", seconds=0.2)
    async with client(sandbox, journal) as aw:
        first = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        second = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        await eventually(lambda: posts(sandbox) == 1)
        first.cancel()
        new = await second
        assert first.cancelled()
        entry = await journal.get(key(sandbox, 4))
        assert entry is not None
        assert entry.new_booking_id == new.booking_id
    assert posts(sandbox) == 1
    assert sandbox.reschedule_count(4) == 1


# --- the journal's memory -----------------------------------------------------------------------


async def test_a_second_reschedule_is_refused_with_zero_requests_unless_forced(
    sandbox: SandboxServer, journal: Journal, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with client(sandbox, journal, format=format) as aw:
        first = await aw.phonechat.reschedule_made_booking(4)
        seen = len(sandbox.requests)
        with pytest.raises(AlreadyRescheduledError) as caught:
            await aw.phonechat.reschedule_made_booking(4)
        assert (caught.value.booking_id, caught.value.new_booking_id) == (4, first.booking_id)
        assert "force=True" not in str(caught.value)
        outcomes = await aw.phonechat.reschedule_made_bookings([4])
        assert isinstance(outcomes[0].error, AlreadyRescheduledError)
        assert len(sandbox.requests) == seen  # zero requests
        again = await aw.phonechat.reschedule_made_booking(4, force=True)
    assert again.booking_id != first.booking_id
    assert sandbox.reschedule_count(4) == 2


async def test_a_refusal_does_not_block_a_later_attempt(sandbox: SandboxServer, journal: Journal) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.set_balance(USER, Decimal(1))
    async with client(sandbox, journal) as aw:
        with pytest.raises(InsufficientCreditsError):
            await aw.phonechat.reschedule_made_booking(4)
        entry = await journal.get(key(sandbox, 4))
        assert entry is not None
        assert entry.state is AttemptState.REFUSED
        sandbox.set_balance(USER, Decimal(10))
        await aw.phonechat.reschedule_made_booking(4)
    assert sandbox.reschedule_count(4) == 1


async def test_the_default_journal_is_durable_and_shared(sandbox: SandboxServer, state_home: Path) -> None:
    # Finding 10: the README's examples pass no journal. Run twice (a re-run, a second worker): once.
    for n in range(1, 6):
        sandbox.add_booking(distinct(n), client_user_id=USER)
    for _ in range(2):
        async with (
            AdultWorkClient(TOKEN, base_url=sandbox.url) as first,
            AdultWorkClient(TOKEN, base_url=sandbox.url) as second,
        ):
            assert first.journal is second.journal  # one journal, shared in the process
            assert isinstance(first.journal, SqliteJournal)
            await asyncio.gather(
                first.phonechat.reschedule_made_bookings(range(1, 6)),
                second.phonechat.reschedule_made_bookings(range(1, 6)),
            )
    assert [sandbox.reschedule_count(n) for n in range(1, 6)] == [1] * 5
    assert (state_home / "aw-async" / "journal.sqlite3").exists()


async def test_one_journal_serves_two_servers_with_the_same_ids(tmp_path: Path) -> None:
    # Finding 11: entries are keyed by API root and booking id.
    path = tmp_path / "journal.sqlite3"
    async with SandboxServer() as one, SandboxServer() as other:
        for server in (one, other):
            server.add_token(TOKEN, user_id=USER)
            server.set_balance(USER, Decimal(100))
            server.add_booking(distinct(101), client_user_id=USER)
            async with client(server, path) as aw:
                await aw.phonechat.reschedule_made_booking(101)
        assert (one.reschedule_count(101), other.reschedule_count(101)) == (1, 1)


async def test_the_attempt_is_committed_before_the_post_arrives(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.add("delay", method="POST", seconds=0.5)  # holds the POST's answer back
    path = tmp_path / "journal.sqlite3"
    async with client(sandbox, path) as aw:
        call = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(4, check_preconditions=False))
        await eventually(lambda: posts(sandbox) > 0)
        with sqlite3.connect(path) as other:  # what another process would read now
            state = other.execute("SELECT state FROM attempts WHERE booking_id = 4").fetchone()
        assert state == ("in_flight",)
        new = await call
    with sqlite3.connect(path) as other:
        row = other.execute("SELECT state, new_booking_id FROM attempts WHERE booking_id = 4").fetchone()
    assert row == ("rescheduled", new.booking_id)


async def test_the_post_is_no_public_method() -> None:
    # Finding 15: nothing public sends the POST without the journal.
    async with AdultWorkClient(TOKEN, journal="memory") as aw:
        assert not hasattr(aw.phonechat, "send_reschedule")
        assert all(name.startswith("_") for name in dir(aw.phonechat) if "post" in name)


# --- unknown outcomes: reconciled with proof, never too early ----------------------------------


async def test_calling_again_right_after_a_lost_answer_sends_nothing_until_the_window_has_passed(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    # Finding 14: the server processed the POST late, after its answer timed out.
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.faults.add("reset", method="POST", when="late", seconds=0.3)
    async with client(sandbox, journal) as aw:
        with pytest.raises(OutcomeUnknownError):
            await aw.phonechat.reschedule_made_booking(4)
        with pytest.raises(OutcomeUnknownError) as caught:  # as the README advises: call again
            await aw.phonechat.reschedule_made_booking(4)
        assert caught.value.retry_after is not None
        assert 0 < caught.value.retry_after <= SETTLE
        await eventually(lambda: sandbox.reschedule_count(4) == 1)  # the late one lands
        clock.advance(SETTLE)
        with pytest.raises(AlreadyRescheduledError) as already:
            await aw.phonechat.reschedule_made_booking(4)
        assert already.value.new_booking_id == sandbox.rescheduled(4)[0]
    assert posts(sandbox) == 1
    assert sandbox.reschedule_count(4) == 1


async def test_a_reschedule_that_happened_is_found_at_once(
    sandbox: SandboxServer, journal: Journal, format: str
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    sandbox.add_booking(distinct(5), client_user_id=USER)  # a neighbour that must not be mistaken
    async with client(sandbox, journal, format=format) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=True)
        found = await aw.phonechat.reconcile(4)  # no wait: the new booking is there
        assert found is not None
        assert found.booking_id == sandbox.rescheduled(4)[0]
        entry = await journal.get(key(sandbox, 4))
        assert entry is not None
        assert (entry.state, entry.new_booking_id) == (AttemptState.RESCHEDULED, found.booking_id)
    assert posts(sandbox) == 1


async def test_a_reschedule_that_did_not_happen_is_sent_once_the_window_has_passed(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=False)
        with pytest.raises(OutcomeUnknownError):
            await aw.phonechat.reconcile(4)  # nothing yet, but nothing is proven before the window ends
        clock.advance(SETTLE)
        assert await aw.phonechat.reconcile(4) is None
        entry = await journal.get(key(sandbox, 4))
        assert entry is not None
        assert (entry.state, entry.decided_by.value if entry.decided_by else None) == (
            AttemptState.REFUSED,
            "reconciliation",
        )
        await aw.phonechat.reschedule_made_booking(4)
    assert sandbox.reschedule_count(4) == 1


async def test_a_reconciliation_never_records_over_a_live_claim(
    sandbox: SandboxServer, journal: Journal
) -> None:
    # Finding 1: `reconcile 11` while 11's POST is in flight.
    sandbox.add_booking(distinct(11), client_user_id=USER)
    sandbox.faults.add("delay", method="POST", seconds=0.3)
    async with client(sandbox, journal) as aw:
        call = asyncio.ensure_future(aw.phonechat.reschedule_made_booking(11, check_preconditions=False))
        await eventually(lambda: posts(sandbox) == 1)
        with pytest.raises(InFlightElsewhereError):
            await aw.phonechat.reconcile(11)
        with pytest.raises(InFlightElsewhereError):
            await aw.phonechat.resolve(11, rescheduled_into=None)
        await call
        with pytest.raises(AlreadyRescheduledError):
            await aw.phonechat.reschedule_made_booking(11)
    assert sandbox.reschedule_count(11) == 1


async def test_a_server_in_another_zone_is_still_found(tmp_path: Path) -> None:
    # Finding 7: the server's local time is nine hours off the client's server_timezone.
    async with SandboxServer(server_timezone="Asia/Tokyo") as sandbox:
        sandbox.add_token(TOKEN, user_id=USER)
        sandbox.set_balance(USER, Decimal(100))
        sandbox.add_booking(distinct(4), client_user_id=USER)
        async with client(sandbox, MemoryJournal(), server_timezone="Europe/London") as aw:
            await lose_the_answer(aw, sandbox, 4, processed=True)
            with pytest.raises(AlreadyRescheduledError):
                await aw.phonechat.reschedule_made_booking(4)
        assert sandbox.reschedule_count(4) == 1


async def test_the_servers_offset_is_learned_from_a_new_booking(
    sandbox: SandboxServer, journal: Journal
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        await aw.phonechat.reschedule_made_booking(4)
    london_now = datetime.now(UTC).astimezone(sandbox.state.server_timezone)
    offset = london_now.utcoffset()
    assert offset is not None
    assert await journal.server_offset(sandbox.url) == int(offset.total_seconds() // 60)


async def test_a_booking_made_by_hand_with_the_same_terms_is_not_taken_for_the_reschedule(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    # Finding 8: the user books the same performer with the same terms for tomorrow.
    original = distinct(4, method=CallMethod.CLIENT_CALLS, phone_number=None)
    sandbox.add_booking(original, client_user_id=USER)
    sandbox.set_requirements(original.candidate.user_id, _requirements())  # type: ignore[union-attr]
    async with client(sandbox, journal) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=False)
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        await aw.phonechat.create_booking(
            book_user_id=original.candidate.user_id,  # type: ignore[union-attr]
            session_date=tomorrow,
            duration=original.duration,
            method=CallMethod.CLIENT_CALLS,
            credits=original.credits,
            accept_by=tomorrow - timedelta(hours=1),
            comments=original.comments,
        )
        clock.advance(SETTLE)
        new = await aw.phonechat.reschedule_made_booking(4)  # not "already rescheduled into" tomorrow's
    assert sandbox.rescheduled(4) == [new.booking_id]


def _requirements() -> Any:
    from aw_async import UserBookingRequirements

    return UserBookingRequirements(phone_chat_ppm=None, methods=())


# --- twins ----------------------------------------------------------------------------------------


async def test_twins_with_lost_answers_are_never_sent_twice_and_the_user_decides_what_counting_cannot(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    # Finding 5: two weekly bookings, both answers lost, one of them processed.
    for n in (11, 12):
        sandbox.add_booking(twin(n), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        await lose_the_answer(aw, sandbox, 11, processed=True)
        await lose_the_answer(aw, sandbox, 12, processed=False)
        clock.advance(SETTLE)
        made = sandbox.rescheduled(11)[0]
        for booking_id in (12, 11):  # neither is told "already rescheduled into": it could be either
            with pytest.raises(OutcomeUnknownError) as caught:
                await aw.phonechat.reschedule_made_booking(booking_id)
            assert caught.value.candidates == (made,)
            assert caught.value.retry_after is None  # only the user can tell
        await aw.phonechat.resolve(11, rescheduled_into=made)
        await aw.phonechat.resolve(12, rescheduled_into=None)
        with pytest.raises(AlreadyRescheduledError):
            await aw.phonechat.reschedule_made_booking(11)
        await aw.phonechat.reschedule_made_booking(12)
    assert (sandbox.reschedule_count(11), sandbox.reschedule_count(12)) == (1, 1)
    assert posts(sandbox) == 3


async def test_twins_an_hour_apart_are_weighed_together_while_the_servers_offset_is_unknown() -> None:
    # Found by the journal's model: 11's POST was processed (the server made 6, at 23:30 on its own
    # clock, zone unknown) and its answer lost; 12's, an hour later, was lost before processing. Their
    # windows do not meet in UTC, but 6's naive CreateDate reads into both under some offset. Weighed
    # alone, 12 took 6 for its own; 11, with 6 recorded as 12's, was then "did not happen", and sent
    # again: rescheduled twice. Weighed together, neither can be told: only the user can say.
    clocks = ManualClocks(wall=datetime(2026, 10, 24, 23, 30, tzinfo=UTC))
    journal = MemoryJournal(clocks=clocks.clocks())
    made = twin(6, create_date=datetime(2026, 10, 24, 23, 30), session_date=datetime(2026, 10, 24, 23, 37))
    listing = MadeBookingsPage(page_count=1, page_number=1, bookings=(made,))

    def handle(request: Request) -> Response:
        date = {"Date": email.utils.format_datetime(clocks.wall, usegmt=True)}
        if "MadeBookings" in request.url and "Details" not in request.url:
            return answer(listing, **date)
        return answer(twin(int(request.url.rsplit("=", 1)[1])), **date)

    for booking_id in (11, 12):
        granted = await journal.claim(
            Key(ROOT, booking_id), force=False, settle=SETTLE, terms=Terms.of(twin(booking_id))
        )
        assert granted.entry is not None
        await journal.record_outcome(granted.entry, AttemptState.UNKNOWN)
        clocks.advance(3600)
    async with AdultWorkClient(TOKEN, base_url=ROOT, journal=journal, transport=MockTransport(handle)) as aw:
        for booking_id in (12, 11):
            with pytest.raises(OutcomeUnknownError) as caught:
                await aw.phonechat.reconcile(booking_id)
            assert caught.value.candidates == (6,)
    await journal.aclose()


async def test_sixteen_twins_whose_answers_were_all_lost_are_all_decided_by_counting(
    sandbox: SandboxServer, journal: Journal
) -> None:
    ids = list(range(21, 37))
    for n in ids:
        sandbox.add_booking(twin(n), client_user_id=USER)
    sandbox.faults.add("reset", method="POST", when="after", times=len(ids))
    async with client(sandbox, journal) as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(ids, concurrency=4)
        assert all(isinstance(o.error, OutcomeUnknownError) and o.may_have_happened for o in outcomes)
        again = await aw.phonechat.reschedule_made_bookings(ids)  # one listing read decides them all
    assert all(isinstance(o.error, AlreadyRescheduledError) for o in again)
    made = sorted(o.error.new_booking_id for o in again if isinstance(o.error, AlreadyRescheduledError))
    assert made == sorted(n for i in ids for n in sandbox.rescheduled(i))
    assert [sandbox.reschedule_count(n) for n in ids] == [1] * 16
    assert sum(1 for r in sandbox.requests if r.path.endswith("/MadeBookings")) == 1


async def test_twins_whose_posts_failed_before_processing_are_sent_once_the_window_has_passed(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    ids = list(range(21, 31))
    for n in ids:
        sandbox.add_booking(twin(n), client_user_id=USER)
    sandbox.faults.add("server_error", status=502, method="POST", times=len(ids))  # a gateway, before
    async with client(sandbox, journal) as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(ids)
        assert all(o.may_have_happened for o in outcomes)  # a 502 proves nothing
        clock.advance(SETTLE)
        again = await aw.phonechat.reschedule_made_bookings(ids)
    assert all(o.ok for o in again)
    assert [sandbox.reschedule_count(n) for n in ids] == [1] * 10


# --- discovery --------------------------------------------------------------------------------------


async def test_passed_bookings_skips_what_was_rescheduled(
    sandbox: SandboxServer, journal: Journal, format: str
) -> None:
    now = datetime.now(UTC)
    for n, hours in ((1, 1), (2, 2), (3, 3), (4, 30)):  # 4 passed before the window
        sandbox.add_booking(distinct(n, session_date=now - timedelta(hours=hours)), client_user_id=USER)
    sandbox.add_booking(
        distinct(5, session_date=now - timedelta(hours=1), status=BookingStatus.CANCELLED),
        client_user_id=USER,
    )
    sandbox.add_booking(distinct(6, session_date=now + timedelta(hours=1)), client_user_id=USER)  # to come
    async with client(sandbox, journal, format=format) as aw:
        await aw.phonechat.reschedule_made_booking(1)  # known to the journal
        async with client(sandbox, MemoryJournal(), format=format) as other:
            await other.phonechat.reschedule_made_booking(2)  # not known to aw's journal
        found = [b.booking_id async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24))]
        assert found == [3]  # 2 is recognised by its newer twin in the listing
        cancelled = aw.phonechat.passed_bookings(since=timedelta(hours=24), statuses=["Cancelled"])
        assert [b.booking_id async for b in cancelled] == [5]
        with pytest.raises(InvalidRequestError):
            aw.phonechat.passed_bookings(since="yesterday")  # type: ignore[arg-type]


async def test_a_twin_of_a_recorded_reschedule_is_still_offered_and_no_reschedule_is_chained(
    sandbox: SandboxServer, journal: Journal
) -> None:
    # Finding 9: after 11 is rescheduled into 13, its twin 12 is still offered; and 13, whose
    # session the performer misses again, is not rescheduled again by an hourly run.
    now = datetime.now(UTC)
    for n in (11, 12):
        sandbox.add_booking(twin(n, session_date=now - timedelta(hours=1)), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        new = await aw.phonechat.reschedule_made_booking(11)
        found = [b.booking_id async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24))]
        assert found == [12]
        # the reschedule's own session passes, missed again: still not offered (no chains)
        sandbox.state.bookings[new.booking_id] = attrs.evolve(new, session_date=now - timedelta(minutes=1))
        found = [b.booking_id async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24))]
        assert found == [12]
        chained = aw.phonechat.passed_bookings(since=timedelta(hours=24), include_reschedules=True)
        assert {b.booking_id async for b in chained} == {12, new.booking_id}


async def test_a_discovery_batch_reads_no_details(sandbox: SandboxServer, journal: Journal) -> None:
    # The listing's bookings are the evidence: one balance read, one POST each, no details read.
    now = datetime.now(UTC)
    for n in range(1, 21):
        sandbox.add_booking(distinct(n, session_date=now - timedelta(hours=1)), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        found = [b async for b in aw.phonechat.passed_bookings(since=timedelta(hours=24))]
        before = len(sandbox.requests)
        outcomes = await aw.phonechat.reschedule_made_bookings(found)
    assert all(o.ok for o in outcomes)
    during = sandbox.requests[before:]
    assert sum(r.method == "POST" for r in during) == 20
    assert sum("GetCurrentCreditBalance" in r.path for r in during) == 1
    assert not any("MadeBookingDetails" in r.path for r in during)


# --- bounds --------------------------------------------------------------------------------------


async def test_a_listing_that_never_ends_is_not_read_for_ever(
    sandbox: SandboxServer, journal: Journal, clock: ManualClocks
) -> None:
    # Finding 12: PageCount 2**31 - 1 and the same booking on every page.
    sandbox.add_booking(distinct(4), client_user_id=USER)
    async with client(sandbox, journal) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=False)
        clock.advance(SETTLE)
        booking = JsonCodec().encode(distinct(9))
        page = (
            b'{"PageCount": 2147483647, "PageNumber": 1, "BookingsPerPage": 100, "Bookings": [%s]}' % booking
        )
        sandbox.faults.add("answer", status=200, body=page, path="/MadeBookings", times=1000)
        with pytest.raises(OutcomeUnknownError):  # an incomplete listing proves nothing
            await aw.phonechat.reschedule_made_booking(4)
    assert sum(1 for r in sandbox.requests if r.path.endswith("/MadeBookings")) <= 2
    assert sandbox.reschedule_count(4) == 0


async def test_a_reconciliation_asks_the_journal_only_about_twins_and_candidates(
    sandbox: SandboxServer, journal: Journal
) -> None:
    sandbox.add_booking(distinct(4), client_user_id=USER)

    async def everything(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("a reconciliation must not load the whole journal")

    journal.entries = everything  # type: ignore[method-assign]
    async with client(sandbox, journal) as aw:
        await lose_the_answer(aw, sandbox, 4, processed=True)
        with pytest.raises(AlreadyRescheduledError):
            await aw.phonechat.reschedule_made_booking(4)
