"""The journal's rules, proven on a model: several simulated processes (real clients, each with its
own ``SqliteJournal`` on one shared file, so their liveness is the kernel's) reschedule a few
bookings, twins among them, against a simulated server whose every POST's fate the test decides:
answered, processed and its answer lost, lost before processing, processed late after its answer
timed out, refused with a 429, a gateway's 502. Processes crash at any point (their claims and
queued outcomes die with them) and new ones start; time passes; the host's wall clock steps; the
server's zone offset changes (daylight saving, in either direction); users resolve what only they
can tell; a user books the same performer with the same terms.

After every step:

- the server never rescheduled a booking twice (no call is forced here);
- the journal never says "rescheduled into N" unless the server created N as a reschedule of that
  booking or, for twins whose answers were all lost, of a twin (their new bookings are
  interchangeable), and never names one booking for two;
- the journal never says "refused" (did not happen) about a booking the server rescheduled;
- no call raises anything but an ``AdultWorkError``.

A POST processed late is processed inside its attempt's settle window, as the rules assume (a server
that works through a queue for longer is outside any client's reach). 200 examples of 12 steps run by
default (about 4 s); 2,000 under ``-m slow``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import queue
import shutil
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aw_async import AdultWorkClient, BookingStatus, CallMethod, MadeBooking, PhoneChatBookingUser
from aw_async._params import MadeBookingsQuery
from aw_async.codecs import JsonCodec
from aw_async.codecs._query import decode_query
from aw_async.errors import AdultWorkError
from aw_async.journal import AttemptState, Journal, SqliteJournal
from aw_async.journal._rules import settle_seconds
from aw_async.models import ErrorBody, MadeBookingsPage
from aw_async.testing import MockTransport, Request, Response, VirtualClock

from ..clocks import ManualClocks

ROOT = "https://model.example"
TIMEOUT = 10.0
SETTLE = settle_seconds(TIMEOUT)
#: How long (real seconds) the simulated world may take to come to rest after a step before the
#: model calls it stuck: generous, since a step takes milliseconds (the journal's opening on a slow
#: disk the longest).
QUIET_WITHIN = 60.0
JSON = JsonCodec()
#: Bookings 1-3 are twins (one performer, the same terms); 4 and 5 are each their own.
TWINS = (1, 2, 3)
BOOKINGS = (1, 2, 3, 4, 5)
FATES = ("answer", "lost_after", "lost_before", "late", "too_many", "gateway")


def _original(booking_id: int, session: datetime) -> MadeBooking:
    comments = "weekly" if booking_id in TWINS else f"booking {booking_id}"
    return MadeBooking(
        booking_id=booking_id,
        duration=15,
        credits=Decimal("8.00"),
        status=BookingStatus.CONFIRMED,
        method=CallMethod.CLIENT_CALLS,
        comments=comments,
        create_date=session - timedelta(days=3),
        session_date=session,
        candidate=PhoneChatBookingUser(
            user_id=77, nickname="P", total=0, positive=0, neutral=0, negative=0, ratings=0, disputes=0
        ),
    )


@attrs.define
class _Post:
    """A POST the server received; the test decides its fate."""

    booking_id: int
    answer: asyncio.Future[Response] | None
    received_at: datetime  # the server's true time


class SimServer:
    """The AdultWork API as far as a reschedule needs it, with a true clock and a local zone."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.offset = timedelta(hours=1)  # the server's local time; the client never learns it from us
        self.bookings = {n: _original(n, (now - timedelta(hours=2)).replace(tzinfo=None)) for n in BOOKINGS}
        self.created_by: dict[int, int] = {}  # new booking -> the booking it is a reschedule of
        self.user_made: set[int] = set()
        self.pending: list[_Post] = []
        self.late: list[_Post] = []
        self.scripted: list[
            str
        ] = []  # the fates of the next POSTs, in order ("hold": the test decides later)

    def local_now(self) -> datetime:
        return (self.now + self.offset).replace(tzinfo=None, microsecond=0)

    def reschedules_of(self, booking_id: int) -> list[int]:
        return [new for new, original in self.created_by.items() if original == booking_id]

    def process(self, post: _Post) -> MadeBooking:
        original = self.bookings[post.booking_id]
        local = self.local_now()
        new = attrs.evolve(
            original,
            booking_id=max(self.bookings) + 1,
            status=BookingStatus.PENDING,
            create_date=local,
            session_date=local + timedelta(minutes=7),
        )
        self.bookings[new.booking_id] = new
        self.created_by[new.booking_id] = post.booking_id
        return new

    def user_books_the_same(self) -> None:
        """A user's own booking with the twins' terms, for tomorrow (never a reschedule)."""
        local = self.local_now()
        new = attrs.evolve(
            self.bookings[TWINS[0]],
            booking_id=max(self.bookings) + 1,
            status=BookingStatus.PENDING,
            create_date=local,
            session_date=local + timedelta(days=1),
        )
        self.bookings[new.booking_id] = new
        self.user_made.add(new.booking_id)

    def answer(self, status: int, value: object) -> Response:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Date": email.utils.format_datetime(self.now, usegmt=True),
        }
        return Response(status, headers, JSON.encode(value))

    async def handle(self, request: Request) -> Response:
        path = request.url.split("?")[0].rsplit("/", 1)[-1].lower()
        if path == "getcurrentcreditbalance":
            return self.answer(200, Decimal(1_000_000))
        query = dict(part.split("=", 1) for part in request.url.partition("?")[2].split("&") if part)
        if path == "madebookingdetails":
            return self.answer(200, self.bookings[int(query["BookingID"])])
        if path == "madebookings":
            return self.answer(200, self._page(query))
        assert path == "reschedulemadebooking", request.url
        booking_id = json.loads(request.body or b"{}")["BookingID"]
        post = _Post(booking_id, asyncio.get_running_loop().create_future(), self.now)
        fate = self.scripted.pop(0) if self.scripted else "hold"
        if fate == "hold":
            self.pending.append(post)
        else:
            self.decide(post, fate)
        assert post.answer is not None
        return await post.answer

    def decide(self, post: _Post, fate: str) -> None:
        """What happens to ``post``: see FATES."""
        answer = post.answer
        if answer is not None and answer.done():  # its client gave up (crashed): the server has it
            answer = None
        if fate == "answer":
            new = self.process(post)
            if answer is not None:
                answer.set_result(self.answer(200, new))
        elif fate == "lost_after":
            self.process(post)
            if answer is not None:
                answer.set_exception(aiohttp.ServerDisconnectedError())
        elif fate in ("lost_before", "late"):
            if answer is not None:
                answer.set_exception(aiohttp.ServerDisconnectedError())
            if fate == "late":
                self.late.append(post)
        elif fate == "too_many":
            if answer is not None:
                answer.set_result(self.answer(429, ErrorBody(message="Too many requests.")))
        elif answer is not None:  # a gateway's 502, before the server saw it
            answer.set_result(Response(502, {"Content-Type": "text/html"}, b"<title>502 Bad Gateway</title>"))

    def _page(self, query: dict[str, str]) -> MadeBookingsPage:
        asked = decode_query(query, MadeBookingsQuery)
        created = {b.booking_id: b.create_date or datetime.min for b in self.bookings.values()}
        listing = sorted(
            (
                b
                for b in self.bookings.values()
                if not asked.start_date or created[b.booking_id].date() >= asked.start_date
            ),
            key=lambda b: (
                created[b.booking_id],
                b.booking_id,
            ),  # by the naive local time, as a database would
            reverse=True,
        )
        size, number = asked.bookings_per_page or 50, asked.page_number or 1
        count = max(1, -(-len(listing) // size))
        return MadeBookingsPage(
            page_number=number,
            page_count=count,
            bookings_per_page=size,
            bookings=tuple(listing[(number - 1) * size : number * size]),
        )


class _CountingQueue(queue.SimpleQueue[object]):
    """The writer's queue, counting the pieces of work handed to its thread."""

    def __init__(self, journal: _CountedJournal) -> None:
        self._journal = journal

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, list):  # a hand-over (not the writer's stop marker)
            with self._journal.idle:
                self._journal.on_the_thread += len(item)
        super().put(item, block, timeout)


class _CountedJournal(SqliteJournal):
    """A sqlite journal that says exactly whether it has work under way, so that the model knows when
    the world has come to rest (nothing in the journal, nothing waiting on the clock) without polling:

    - ``under_way``: calls waiting for their work to be committed;
    - ``on_the_thread``: pieces handed to the writer's thread and not yet committed *and* delivered
      (a delivery is a callback already in the loop's ready queue, which the model sees).

    What was asked for and not handed over yet is the writer's ``_gathered``, with its hand-over
    callback in the loop's ready queue."""

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.under_way = 0
        self.on_the_thread = 0
        self.idle = threading.Condition()
        writer = self._writer
        writer._queue = _CountingQueue(self)
        commit = writer._commit

        def counted_commit(connection: Any, everything: list[Any]) -> None:
            try:
                commit(connection, everything)  # delivers: call_soon_threadsafe, before this returns
            finally:
                with self.idle:
                    self.on_the_thread -= len(everything)
                    self.idle.notify_all()

        writer._commit = counted_commit  # type: ignore[method-assign]

    async def _do(self, work: Any) -> Any:
        self.under_way += 1
        try:
            return await super()._do(work)
        finally:
            self.under_way -= 1

    def wait_for_the_thread(self) -> None:
        """Block until the writer's thread has committed and delivered all it was handed."""
        with self.idle:
            if not self.idle.wait_for(lambda: self.on_the_thread == 0, timeout=30):
                raise AssertionError("the journal's thread did not finish its work in 30 s")

    @property
    def at_rest(self) -> bool:
        return self.under_way == 0 and self.on_the_thread == 0 and not self._writer._gathered


class Process:
    """One process of the client: a client with a journal of its own on the shared file."""

    def __init__(
        self, server: SimServer, path: Path, clocks: ManualClocks, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.loop = loop
        self.journal = _CountedJournal(path, clocks=clocks.clocks())
        self.clock = VirtualClock()
        self.client = AdultWorkClient(
            "model-token",
            base_url=ROOT,
            journal=self.journal,
            transport=MockTransport(server.handle),
            clock=self.clock,
            timeout=TIMEOUT,
        )
        self.tasks: list[asyncio.Task[Any]] = []
        self.alive = True

    def start(self, work: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(self.loop.create_task(work))

    async def crash(self) -> None:
        """Die as ``kill -9`` would: nothing more is recorded, queued outcomes are lost, the
        owner's lock goes with the process."""
        self.alive = False
        journal = self.journal

        def nothing(*args: object, **kwargs: object) -> bool:
            return True

        async def nothing_awaited(*args: object, **kwargs: object) -> bool:
            return True

        journal.record_outcome_nowait = nothing  # type: ignore[method-assign]
        journal.record_outcome = nothing_awaited  # type: ignore[method-assign]
        journal._writer._gathered.clear()  # what was asked for, not even queued yet, is gone
        pending = journal._writer._queue
        while True:  # what was queued, uncommitted, is gone
            try:
                pending.get_nowait()
            except queue.Empty:
                break
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        journal._lock.close()
        await journal._writer.close()


@settings(
    max_examples=200,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
class JournalModel(RuleBasedStateMachine):
    """See the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
        self.server = SimServer(self.now)
        self.clocks = ManualClocks(self.now)
        self.folder: Path | None = None
        self.processes: list[Process] = []
        self.errors: list[BaseException] = []

    @initialize(folder=st.just(None))
    def start(self, folder: None) -> None:
        import tempfile

        # On a memory file system where there is one: the journal's fsyncs cost nothing there, and the
        # model is about the rules, not about the disk (tests/journal/test_journal.py is about the disk).
        memory = Path("/dev/shm")
        where = str(memory) if memory.is_dir() and os.access(memory, os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="aw-model-", dir=where))
        for _ in range(2):
            self.processes.append(
                Process(self.server, self.folder / "journal.sqlite3", self.clocks, self.loop)
            )

    def teardown(self) -> None:
        async def close() -> None:
            for process in self.processes:
                if process.alive:
                    await process.crash()
            await asyncio.sleep(0)

        self.loop.run_until_complete(close())
        self.loop.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    # --- running the world until it is quiet ---------------------------------------------------

    def run_until_quiet(self) -> None:
        """Run the world until it rests: every call done or waiting for a POST the test decides."""

        def at_rest() -> bool:
            # Nothing ready to run in the loop but this coroutine, nothing under way in a journal,
            # nobody waiting on a clock: every call is done or waits for a POST the test decides.
            ready = len(self.loop._ready)  # type: ignore[attr-defined]
            return ready == 0 and all(
                p.journal.at_rest and not p.clock._sleepers for p in self.processes if p.alive
            )

        async def quiet() -> None:
            resting = 0
            # A bound in seconds, not turns: a slow disk may keep a journal's opening (a thread of
            # asyncio.to_thread, not the writer's) busy for a while, and it must not fail the model.
            deadline = time.monotonic() + QUIET_WITHIN
            while resting < 2:  # twice in a row, a loop iteration apart: what the first reading's
                # iteration made ready has run by the second
                await asyncio.sleep(0)  # what is ready runs, what a thread handed back is picked up
                busy = [p.journal for p in self.processes if p.alive and p.journal.on_the_thread]
                for journal in busy:  # its thread works without the loop: wait for it, not in a poll
                    journal.wait_for_the_thread()
                resting = resting + 1 if not busy and at_rest() else 0
                if not busy and not resting and not self.loop._ready:  # type: ignore[attr-defined]
                    # Waiting on a thread the counts do not see (an opening): give it the GIL.
                    time.sleep(0.0001)  # noqa: ASYNC251
                if time.monotonic() > deadline:
                    raise AssertionError(f"the world did not come to rest in {QUIET_WITHIN} s")
            for process in self.processes:
                if process.alive and not process.journal._writer._queue.empty():
                    raise AssertionError("at rest by the counts with work queued: the counting missed it")
            for process in self.processes:
                for task in process.tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        self.errors.append(task.exception())  # type: ignore[arg-type]

        self.loop.run_until_complete(quiet())

    def _live(self) -> list[Process]:
        return [p for p in self.processes if p.alive]

    # --- rules ----------------------------------------------------------------------------------

    @rule(
        which=st.integers(0, 5),
        booking=st.sampled_from(BOOKINGS),
        checks=st.booleans(),
        fate=st.sampled_from((*FATES, "hold")),
    )
    def reschedule(self, which: int, booking: int, checks: bool, fate: str) -> None:
        live = self._live()
        if not live:
            return
        process = live[which % len(live)]
        self.server.scripted = [fate]
        process.start(process.client.phonechat.reschedule_made_booking(booking, check_preconditions=checks))
        self.run_until_quiet()
        self.server.scripted = []

    @rule(
        which=st.integers(0, 5),
        bookings=st.lists(st.sampled_from(BOOKINGS), min_size=1, max_size=5),
        fates=st.lists(st.sampled_from((*FATES, "hold")), max_size=5),
    )
    def batch(self, which: int, bookings: list[int], fates: list[str]) -> None:
        live = self._live()
        if not live:
            return
        process = live[which % len(live)]
        self.server.scripted = list(fates)
        process.start(process.client.phonechat.reschedule_made_bookings(bookings, concurrency=3))
        self.run_until_quiet()
        self.server.scripted = []

    @precondition(lambda self: bool(self.server.pending))
    @rule(index=st.integers(0, 20), fate=st.sampled_from(FATES))
    def decide_a_post(self, index: int, fate: str) -> None:
        server = self.server
        server.decide(server.pending.pop(index % len(server.pending)), fate)
        self.run_until_quiet()

    @precondition(lambda self: bool(self.server.late))
    @rule(index=st.integers(0, 20))
    def process_a_late_post(self, index: int) -> None:
        server = self.server
        post = server.late.pop(index % len(server.late))
        # The rules' assumption: a POST is processed, if ever, inside its attempt's settle window.
        if (server.now - post.received_at).total_seconds() < SETTLE - 40:
            server.process(post)
        self.run_until_quiet()

    @rule(seconds=st.sampled_from([5, 30, 90, 150, 600, 3600]))
    def time_passes(self, seconds: int) -> None:
        server = self.server
        server.now += timedelta(seconds=seconds)
        self.clocks.advance(seconds)
        for post in [p for p in server.pending if (server.now - p.received_at).total_seconds() > TIMEOUT]:
            # Its try timed out: the client hears nothing more; the server may still process it late.
            server.pending.remove(post)
            if post.answer is not None and not post.answer.done():
                post.answer.set_exception(aiohttp.ServerTimeoutError())
            server.late.append(post)
        server.late = [p for p in server.late if (server.now - p.received_at).total_seconds() < SETTLE - 40]
        self.run_until_quiet()

    @rule(change=st.sampled_from(["wall -1h", "wall -30s", "wall +30s", "wall +1h", "dst", "booked by hand"]))
    def the_world_changes(self, change: str) -> None:
        """What happens around the client, one rule so that it does not crowd out the rest."""
        if change.startswith("wall"):  # the host's wall clock steps (NTP, a VM resumed, a user)
            sign, amount = change[5], change[6:]
            seconds = 3600 if amount == "1h" else 30
            self.clocks.step_wall(seconds if sign == "+" else -seconds)
        elif change == "dst":
            # The server's local time moves an hour back (a repeated hour: a fold) or forward (a
            # gap), as London's does twice a year: its offset is one of two, an hour apart.
            hour = timedelta(hours=1)
            self.server.offset = hour if self.server.offset == timedelta(0) else timedelta(0)
        else:  # a user books the twins' performer with their terms, by hand, for tomorrow
            self.server.user_books_the_same()

    @precondition(lambda self: len(self._live()) > 0)
    @rule(which=st.integers(0, 5))
    def a_process_crashes(self, which: int) -> None:
        live = self._live()
        self.loop.run_until_complete(live[which % len(live)].crash())
        self.run_until_quiet()

    @precondition(lambda self: len(self._live()) < 3)
    @rule()
    def a_process_starts(self) -> None:
        assert self.folder is not None
        self.processes.append(Process(self.server, self.folder / "journal.sqlite3", self.clocks, self.loop))

    @rule(which=st.integers(0, 5), booking=st.sampled_from(BOOKINGS))
    def reconcile(self, which: int, booking: int) -> None:
        live = self._live()
        if live:
            process = live[which % len(live)]
            process.start(process.client.phonechat.reconcile(booking))
            self.run_until_quiet()

    @precondition(lambda self: not self.server.pending and not self.server.late)
    @rule(which=st.integers(0, 5), booking=st.sampled_from(BOOKINGS))
    def a_user_resolves(self, which: int, booking: int) -> None:
        # A user who looked at the account, once nothing is under way: the truth, as the server has it.
        live = self._live()
        if not live:
            return
        made = self.server.reschedules_of(booking)
        process = live[which % len(live)]
        process.start(process.client.phonechat.resolve(booking, rescheduled_into=made[-1] if made else None))
        self.run_until_quiet()

    # --- what must always hold ---------------------------------------------------------------

    @invariant()
    def no_booking_is_rescheduled_twice(self) -> None:
        for booking in BOOKINGS:
            assert len(self.server.reschedules_of(booking)) <= 1, (booking, self.server.created_by)

    @invariant()
    def every_error_is_typed(self) -> None:
        assert all(isinstance(e, AdultWorkError) for e in self.errors), self.errors

    @invariant()
    def the_journal_says_only_what_the_server_did(self) -> None:
        journal: Journal | None = next((p.journal for p in self._live()), None)
        if journal is None:
            return
        entries = self.loop.run_until_complete(journal.entries(ROOT))
        named: dict[int, int] = {}
        for entry in entries:
            booking = entry.booking_id
            if entry.state is AttemptState.RESCHEDULED:
                made = entry.new_booking_id
                assert made is not None
                assert made not in named, (made, named)
                named[made] = booking
                source = self.server.created_by.get(made)
                assert source is not None, (
                    f"{booking} recorded as rescheduled into {made}, which no reschedule made"
                )
                assert source == booking or (source in TWINS and booking in TWINS), (booking, made, source)
            if entry.state is AttemptState.REFUSED:
                assert not self.server.reschedules_of(booking), (booking, entry)
        twins_done = sum(1 for b in TWINS if self.server.reschedules_of(b))
        twins_recorded = sum(
            1 for e in entries if e.booking_id in TWINS and e.state is AttemptState.RESCHEDULED
        )
        assert twins_recorded <= twins_done


def test_the_journals_rules_hold_in_every_interleaving() -> None:
    run_state_machine_as_test(JournalModel)


@pytest.mark.slow
def test_the_journals_rules_hold_in_thousands_of_interleavings() -> None:
    run_state_machine_as_test(
        JournalModel,
        settings=settings(
            max_examples=2000,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
