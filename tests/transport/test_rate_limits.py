"""The account's gate and the client's pace, in virtual time; and the sandbox's rate limit.

A 429 (or a 503 with Retry-After) closes the gate of the account (API root and token): every request
of every client of that account waits until it opens, and the waiters go through spread out, not
all at once. ``max_rate`` paces a client. A batch puts a booking whose POST got a 429 back in its
queue, within its budget, and stops at an authentication failure. Times are read on a VirtualClock,
never on the wall.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import weakref
from decimal import Decimal
from typing import Any

import pytest

from aw_async import SANDBOX_URL, AdultWorkClient, RefreshingToken, StaticToken
from aw_async._gate import LEAST_EVIDENCE, RELEASE_WINDOW, Gate, LearnedPace, Pacer, account_gate
from aw_async.errors import AuthenticationError, NotStartedError, RateLimitError, ServerError
from aw_async.models import ErrorBody
from aw_async.sandbox import SandboxServer
from aw_async.testing import MockTransport, Request, Response, VirtualClock

from ..answers import answer, error
from ..scripted import past_booking

TOKEN = "gate-token-31d2"
OTHER_TOKEN = "gate-token-88aa"


class Api:
    """An API in memory: balances answer 1; a POST gets whatever :attr:`post_answer` says; every
    request's virtual arrival time is written down."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.post_answer: Response = error(429, "Too many requests.", **{"Retry-After": "5"})
        self.arrivals: list[tuple[str, float]] = []
        self.transport = MockTransport(self.handle)

    def handle(self, request: Request) -> Response:
        self.arrivals.append((request.headers["Authorization"].split()[-1], self.clock.now()))
        if request.method == "POST":
            return self.post_answer
        return answer(Decimal(1))

    def client(self, token: Any = TOKEN, **kwargs: Any) -> AdultWorkClient:
        return AdultWorkClient(token, transport=self.transport, clock=self.clock, **kwargs)

    def times(self, token: str = TOKEN) -> list[float]:
        return [when for who, when in self.arrivals if who == token]


async def test_a_single_posts_429_is_raised_at_once_and_closes_the_gate_for_the_rest(
    clock: VirtualClock,
) -> None:
    api = Api(clock)
    async with api.client() as aw:
        with pytest.raises(RateLimitError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        assert clock.sleeps == []  # the call that got the 429 did not wait
        assert clock.now() == 0.0
        await aw.credit_history.get_current_credit_balance()
    assert api.times() == [0.0, 5.0]  # the next request waited for the gate
    assert clock.sleeps == [5.0]


async def test_a_503_with_retry_after_closes_the_gate_too(clock: VirtualClock) -> None:
    api = Api(clock)
    api.post_answer = error(503, "Busy.", **{"Retry-After": "4"})
    async with api.client() as aw:
        with pytest.raises(ServerError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        await aw.credit_history.get_current_credit_balance()
    assert api.times() == [0.0, 4.0]


async def test_a_503_without_retry_after_closes_nothing(clock: VirtualClock) -> None:
    api = Api(clock)
    api.post_answer = error(503, "Busy.")
    async with api.client() as aw:
        with pytest.raises(ServerError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        await aw.credit_history.get_current_credit_balance()
    assert api.times() == [0.0, 0.0]


async def test_a_get_that_meets_a_429_waits_at_the_gate_and_goes_through(clock: VirtualClock) -> None:
    api = Api(clock)
    replies = [error(429, **{"Retry-After": "3"}), answer(Decimal(2))]
    api.transport.handler = lambda request: (api.arrivals.append((TOKEN, clock.now())), replies.pop(0))[1]
    async with api.client() as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal(2)
    assert api.times() == [0.0, 3.0]


async def test_another_client_of_the_same_account_waits_and_other_accounts_do_not(
    clock: VirtualClock,
) -> None:
    api = Api(clock)
    async with (
        api.client() as first,
        api.client() as second,  # same token, same API root: the same account
        api.client(OTHER_TOKEN) as other_token,
        api.client(base_url="https://api.adultwork.com") as other_root,
    ):
        with pytest.raises(RateLimitError):
            await first.phonechat.reschedule_made_booking(1, check_preconditions=False)
        await other_token.credit_history.get_current_credit_balance()
        await other_root.credit_history.get_current_credit_balance()
        assert clock.now() == 0.0  # neither waited
        await second.credit_history.get_current_credit_balance()
    assert api.times(OTHER_TOKEN) == [0.0]
    assert api.times()[-1] == 5.0


async def test_waiters_are_released_over_a_spread_never_all_at_once(clock: VirtualClock) -> None:
    api = Api(clock)
    async with api.client() as aw:
        with pytest.raises(RateLimitError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(20)))
    released = sorted(api.times()[1:])
    assert len(released) == 20
    assert released[0] == 5.0  # the first waiter goes when the gate opens...
    assert all(5.0 <= when <= 5.0 + RELEASE_WINDOW for when in released)
    assert len(set(released)) == 20  # ...and each of the others at a moment of its own
    assert released[-1] - released[0] > RELEASE_WINDOW / 2


async def test_the_release_moments_come_from_the_gates_random_source() -> None:
    async def release_times(seed: int) -> list[float]:
        clock = VirtualClock()
        gate = Gate(clock, rng=random.Random(seed))
        gate.close(2.0)
        times: list[float] = []

        async def waiter() -> None:
            await gate.wait()
            times.append(clock.now())

        await asyncio.gather(*(waiter() for _ in range(5)))
        return times

    assert await release_times(7) == await release_times(7)
    assert await release_times(7) != await release_times(8)
    assert min(await release_times(7)) == 2.0


async def test_waiters_go_in_the_order_they_came_and_keep_their_place_when_the_gate_closes_again() -> None:
    # Drawn afresh at every closure, an unlucky waiter could stay behind for ever (a batch's POST
    # then missed its deadline): the oldest goes first, whatever happened while it waited.
    clock = VirtualClock()
    gate = Gate(clock, rng=random.Random(3))
    gate.close(2.0)
    released: list[int] = []
    late: list[asyncio.Task[None]] = []

    async def waiter(number: int) -> None:
        await gate.wait()
        released.append(number)
        if number == 0:  # the first through meets another 429, and more requests come
            gate.close(1.0)
            late.extend(asyncio.ensure_future(waiter(n)) for n in range(10, 15))

    await asyncio.gather(*(waiter(n) for n in range(10)))
    await asyncio.gather(*late)
    assert released == list(range(15))
    assert gate.waiting == 0
    assert not gate._queue


async def test_a_request_that_comes_while_the_waiters_go_through_goes_after_them() -> None:
    clock = VirtualClock()
    gate = Gate(clock, rng=random.Random(1))
    gate.close(2.0)
    went: list[tuple[str, float]] = []

    async def request(name: str) -> None:
        await gate.wait()
        went.append((name, clock.now()))

    waiters = [asyncio.ensure_future(request(f"waiter {n}")) for n in range(5)]
    await clock.sleep(2.05)  # just after the opening: the first went, the others wait for their slot
    await request("newcomer")
    await asyncio.gather(*waiters)
    assert [name for name, _ in went] == [*(f"waiter {n}" for n in range(5)), "newcomer"]
    assert went[-1][1] == pytest.approx(2.0 + RELEASE_WINDOW)  # at the window's end


class EarlyClock(VirtualClock):
    """Wakes a sleeper a millisecond early, as an event loop may within its clock's resolution."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(max(0.0, seconds - 0.001))


async def test_a_request_that_comes_after_the_first_waiter_woke_early_goes_through_in_the_window() -> None:
    clock = EarlyClock()
    gate = Gate(clock)
    gate.close(1.0)
    await gate.wait()  # the only waiter: it goes when it wakes, a millisecond early
    assert gate.is_closed()  # so a request arriving now still finds the gate closed
    waited = await gate.wait()  # after the opening's order was taken: the last slot, not a crash
    assert 0 < waited <= RELEASE_WINDOW + 0.001
    assert not gate.is_closed()


async def test_a_gate_closed_again_holds_its_waiters_again() -> None:
    clock = VirtualClock()
    gate = Gate(clock, release_window=0.0)
    gate.close(2.0)
    waiting = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0)
    gate.close(5.0)  # a 429 to another request meanwhile
    await waiting
    assert clock.now() == 5.0


def test_a_closure_never_shortens_one_in_force() -> None:
    clock = VirtualClock()
    gate = Gate(clock)
    gate.close(10.0)
    gate.close(1.0)
    assert gate.opens_at == 10.0
    assert gate.is_closed()
    clock.advance(10.0)
    assert not gate.is_closed()


def test_the_account_is_the_api_root_and_the_tokens_identity_and_no_key_holds_a_token() -> None:
    clock = VirtualClock()
    root = SANDBOX_URL
    gate = account_gate(root, StaticToken(TOKEN), clock)
    assert account_gate(root, StaticToken(TOKEN), clock) is gate  # a fixed token: by its value
    assert account_gate(root.upper(), StaticToken(TOKEN), clock) is gate
    assert account_gate(root, StaticToken(OTHER_TOKEN), clock) is not gate
    assert account_gate("https://api.adultwork.com", StaticToken(TOKEN), clock) is not gate
    assert account_gate(root, StaticToken(TOKEN), VirtualClock()) is not gate  # another time base
    refreshing = RefreshingToken("app", "secret-1", "refresh-1", access_token=TOKEN)
    twin = RefreshingToken("app", "secret-1", "refresh-1", access_token=TOKEN)
    by_chain = account_gate(root, refreshing, clock)
    assert account_gate(root, refreshing, clock) is by_chain  # a refreshing token: by its chain
    assert account_gate(root, twin, clock) is not by_chain
    from aw_async._gate import _GATES

    for key in list(_GATES.keys()):
        assert TOKEN not in repr(key)
        assert "refresh-1" not in repr(key)


def test_a_gate_lives_only_as_long_as_a_client_that_uses_it() -> None:
    clock = VirtualClock()
    aw = AdultWorkClient(TOKEN, transport=MockTransport(lambda request: answer(1)), clock=clock)
    gate = weakref.ref(account_gate(SANDBOX_URL, StaticToken(TOKEN), clock))
    assert gate() is not None
    del aw
    gc.collect()
    assert gate() is None


async def test_max_rate_paces_the_clients_requests(clock: VirtualClock) -> None:
    api = Api(clock)
    async with api.client(max_rate=10) as aw:  # a burst of 10, then one each 0.1 s
        await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(60)))
    times = sorted(round(when, 9) for when in api.times())  # slots are sums of 0.1 s
    assert times[:10] == [0.0] * 10
    for second in range(1, 5):
        in_window = [when for when in times if second <= when < second + 1]
        assert len(in_window) == 10
    assert times[-1] == pytest.approx(5.0)  # no slower than the rate either


async def test_without_max_rate_nothing_is_paced(clock: VirtualClock) -> None:
    api = Api(clock)
    async with api.client() as aw:
        await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(60)))
    assert set(api.times()) == {0.0}
    assert clock.sleeps == []


async def test_a_pacer_gives_slots_in_turn() -> None:
    clock = VirtualClock()
    pacer = Pacer(4, clock, burst=2)
    waited = [await pacer.take() for _ in range(4)]
    assert waited == [False, False, True, True]
    assert clock.sleeps == [0.25, 0.25]


# --- the pace a gate learns from its 429s -------------------------------------------------------


class ThrottledApi:
    """A server in virtual time that serves ``rate`` requests a second after a burst of ``burst``,
    as a token bucket, and answers the rest with a 429 and a whole-second ``Retry-After`` (what Web
    API throttles do). A POST is answered with a new booking."""

    def __init__(self, clock: VirtualClock, rate: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = clock.now()
        self.served = 0
        self.refused = 0
        self.transport = MockTransport(self.handle)

    def handle(self, request: Request) -> Response:
        now = self.clock.now()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.refused += 1
            wait = math.ceil((1 - self.tokens) / self.rate)
            return error(429, "Too many requests.", **{"Retry-After": str(wait)})
        self.tokens -= 1
        self.served += 1
        return answer(past_booking(100_000 + self.served))


async def test_a_batch_that_meets_the_limit_learns_a_pace_just_under_it(clock: VirtualClock) -> None:
    api = ThrottledApi(clock, rate=50, burst=20)
    async with AdultWorkClient(TOKEN, transport=api.transport, clock=clock, journal="memory") as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(
            range(1, 1001), check_preconditions=False, concurrency=50
        )
    assert [o.error for o in outcomes] == [None] * 1000
    assert api.served == 1000  # each booking once
    ideal = api.served / api.rate
    # Gate alone, a batch ran at less than half the rate and a tenth of its requests met a 429.
    assert api.refused <= 0.05 * (api.served + api.refused)
    assert clock.now() <= 1.3 * ideal  # virtual time: what the pace costs, not what the machine does


async def test_a_429_after_a_few_answers_teaches_no_pace(clock: VirtualClock) -> None:
    api = Api(clock)
    async with api.client() as aw:
        for _ in range(LEAST_EVIDENCE - 1):
            await aw.credit_history.get_current_credit_balance()
        with pytest.raises(RateLimitError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        gate = aw._caller.transport.gate
        assert gate is not None
        assert gate.closures == 1
        assert gate.pace.rate is None  # a web backend's trickle: the gate alone holds it back


def test_the_learnt_pace_halves_the_rate_seen_grows_without_a_429_and_is_cut_by_the_next() -> None:
    clock = VirtualClock()
    pace = LearnedPace(clock)
    for _ in range(100):  # a hundred answers over a second
        pace.answered()
        clock.advance(0.01)
    pace.slow_down(opens_at=clock.now() + 1)
    assert pace.rate == pytest.approx(100 / 1.0 * 0.5, rel=0.02)  # halved: the burst flattered it
    learnt = pace.rate
    opened = pace.since
    assert pace.rate_at(opened - 0.5) == learnt  # it grows from the opening, not before
    assert pace.rate_at(opened + 10) == pytest.approx(learnt * 1.02**10)
    clock.advance(1 + 10)  # a 429 ten seconds after the opening: just over the limit
    pace.slow_down(opens_at=clock.now() + 1)
    assert pace.rate == pytest.approx(learnt * 1.02**10 * 0.9)
    clock.advance(1.5)  # another, half a second after the opening: far too fast
    settled = pace.rate
    pace.slow_down(opens_at=clock.now() + 1)
    assert pace.rate == pytest.approx(settled * 1.02**0.5 * 0.5)


# --- the sandbox's rate limit ---------------------------------------------------------------------


async def test_the_sandbox_answers_429_beyond_each_tokens_rate_as_web_api_does() -> None:
    async with SandboxServer() as sandbox:
        for token, user in ((TOKEN, 1), (OTHER_TOKEN, 2)):
            sandbox.add_token(token, user_id=user)
            sandbox.set_balance(user, Decimal(5))
        sandbox.limit_rate(0.01, burst=2)  # two at once, then one each 100 s
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, max_retries=0) as aw:
            await aw.credit_history.get_current_credit_balance()
            await aw.credit_history.get_current_credit_balance()
            with pytest.raises(RateLimitError) as caught:
                await aw.credit_history.get_current_credit_balance()
        async with AdultWorkClient(OTHER_TOKEN, base_url=sandbox.url) as other:
            assert await other.credit_history.get_current_credit_balance() == Decimal(5)
        assert sandbox.rate_limited == 1
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert caught.value.retry_after == int(caught.value.retry_after) >= 1  # whole seconds
    assert isinstance(caught.value.body, ErrorBody)
    assert "quota exceeded" in caught.value.message


def test_a_sandbox_rate_limit_must_be_positive() -> None:
    sandbox = SandboxServer()
    with pytest.raises(ValueError, match="per_second"):
        sandbox.limit_rate(0)
    with pytest.raises(ValueError, match="burst"):
        sandbox.limit_rate(1, burst=0)


# --- a batch under a rate limit -------------------------------------------------------------------


async def _rate_limited_sandbox(bookings: int) -> SandboxServer:
    sandbox = SandboxServer()
    await sandbox.start()
    sandbox.add_token(TOKEN, user_id=1)
    sandbox.set_balance(1, Decimal(1000))
    for booking_id in range(1, bookings + 1):
        sandbox.add_booking(past_booking(booking_id, credits="2"), client_user_id=1)
    return sandbox


async def test_a_batch_requeues_posts_refused_with_a_429_and_reschedules_every_booking_once(
    clock: VirtualClock,
) -> None:
    sandbox = await _rate_limited_sandbox(12)
    try:
        refusals = sandbox.faults.add("rate_limit", method="POST", retry_after="3", times=7)
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock, journal="memory") as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(range(1, 13), concurrency=4)
        assert refusals.hits == 7
        assert [o.error for o in outcomes] == [None] * 12  # the refused ones went again, and through
        assert all(sandbox.reschedule_count(n) == 1 for n in range(1, 13))  # each once, none twice
        posts = [r for r in sandbox.requests if r.method == "POST"]
        assert len(posts) == 12 + 7
        assert sum(clock.sleeps) >= 3  # the batch waited at the gate the 429s closed
    finally:
        await sandbox.close()


async def test_a_booking_refused_more_often_than_its_budget_fails_with_the_rate_limit_error(
    clock: VirtualClock,
) -> None:
    sandbox = await _rate_limited_sandbox(2)
    try:
        sandbox.faults.add("rate_limit", method="POST", retry_after="1", times=100)
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock, journal="memory") as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(
                [1, 2], check_preconditions=False, rate_limit_retries=3
            )
            entries = await aw.journal.entries()
        assert [type(o.error) for o in outcomes] == [RateLimitError, RateLimitError]
        assert [o.may_have_happened for o in outcomes] == [False, False]  # a 429 spent nothing
        posts = [r for r in sandbox.requests if r.method == "POST"]
        assert len(posts) == 2 * (1 + 3)  # the first try and three more, each
        assert sandbox.reschedule_count(1) == sandbox.reschedule_count(2) == 0
        assert {entry.state.name for entry in entries} == {"REFUSED"}  # a later run may send them
    finally:
        await sandbox.close()


async def test_without_a_budget_a_batch_fails_a_refused_booking_at_once(clock: VirtualClock) -> None:
    sandbox = await _rate_limited_sandbox(1)
    try:
        sandbox.faults.add("rate_limit", method="POST", retry_after="1")
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock, journal="memory") as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(
                [1], check_preconditions=False, rate_limit_retries=0
            )
        assert type(outcomes[0].error) is RateLimitError
        assert len([r for r in sandbox.requests if r.method == "POST"]) == 1
    finally:
        await sandbox.close()


async def test_a_batch_stops_at_an_authentication_failure_a_refresh_cannot_mend(
    clock: VirtualClock,
) -> None:
    sandbox = await _rate_limited_sandbox(6)
    try:
        sandbox.faults.add("answer", status=401, method="POST", when="before")
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock, journal="memory") as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(
                range(1, 7), check_preconditions=False, concurrency=1
            )
        first, *rest = outcomes
        assert isinstance(first.error, AuthenticationError)
        assert all(isinstance(o.error, NotStartedError) for o in rest)
        assert {id(o.error.stopped_by) for o in rest} == {id(first.error)}  # type: ignore[union-attr]
        assert len([r for r in sandbox.requests if r.method == "POST"]) == 1  # nothing more was sent
    finally:
        await sandbox.close()
