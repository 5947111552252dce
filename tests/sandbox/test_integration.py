"""The client against the sandbox over real sockets, in both formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from aw_async import AdultWorkClient, BookingStatus
from aw_async._protocol import api_root
from aw_async.errors import (
    AlreadyRescheduledError,
    ApiError,
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    ServerError,
    SessionNotPassedError,
)
from aw_async.sandbox import SandboxServer
from aw_async.testing.pytest_plugin import SANDBOX_USER_ID

from ..scripted import past_booking

TOKEN = "integration-token"
USER = 42


def bookings(server: SandboxServer) -> None:
    server.add_booking(past_booking(1, credits="8.50"), client_user_id=USER)
    server.add_booking(past_booking(2, credits="30"), client_user_id=USER)
    server.add_booking(
        past_booking(3, session_date=datetime.now(UTC) + timedelta(minutes=30)), client_user_id=USER
    )


pytestmark = [
    pytest.mark.parametrize("format", ["json", "xml"]),
    pytest.mark.sandbox(token=TOKEN, user=USER, balance="20.00", seed=bookings),
]


async def test_the_full_reschedule_flow(sandbox: SandboxServer, format: str) -> None:
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        assert await aw.phonechat.made_booking_details(1) == sandbox.get_booking(1)
        assert await aw.credit_history.get_current_credit_balance() == Decimal("20.00")
        new = await aw.phonechat.reschedule_made_booking(1)
        assert new.status is BookingStatus.PENDING
        assert await aw.phonechat.made_booking_details(new.booking_id) == new
        assert await aw.credit_history.get_current_credit_balance() == Decimal("11.50")
    assert sandbox.rescheduled(1) == [new.booking_id]
    posts = [r for r in sandbox.requests if r.method == "POST"]
    assert len(posts) == 1


async def test_refusals_send_no_post(sandbox: SandboxServer, format: str) -> None:
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        with pytest.raises(InsufficientCreditsError):
            await aw.phonechat.reschedule_made_booking(2)
        with pytest.raises(SessionNotPassedError):
            await aw.phonechat.reschedule_made_booking(3)
        with pytest.raises(NotFoundError):
            await aw.phonechat.reschedule_made_booking(99)
    assert [r for r in sandbox.requests if r.method == "POST"] == []
    assert sandbox.get_balance(USER) == Decimal("20.00")


async def test_the_servers_own_refusals_carry_its_error_body(sandbox: SandboxServer, format: str) -> None:
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
        with pytest.raises(ApiError) as caught:
            await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert caught.value.status == 400
    assert caught.value.body is not None
    assert caught.value.body.model_state == {
        "request.BookingID": ["Insufficient credits: 30 needed, 20.00 available."]
    }
    assert "Insufficient credits" in str(caught.value)


async def test_tokens_and_scopes(sandbox: SandboxServer, format: str) -> None:
    sandbox.add_token("no-credits-scope", user_id=USER, scopes=["account_phonechat_bookings"])
    async with AdultWorkClient("wrong", base_url=sandbox.url, format=format) as aw:
        with pytest.raises(AuthenticationError, match="Authorization has been denied"):
            await aw.credit_history.get_current_credit_balance()
    async with AdultWorkClient("no-credits-scope", base_url=sandbox.url, format=format) as aw:
        with pytest.raises(PermissionDeniedError, match="account_credits_history"):
            await aw.phonechat.reschedule_made_booking(1)
    assert [r for r in sandbox.requests if r.method == "POST"] == []


async def test_a_5xx_html_page_and_a_lost_answer(sandbox: SandboxServer, format: str) -> None:
    sandbox.add_booking(attrs.evolve(sandbox.get_booking(1), booking_id=2), client_user_id=USER)  # type: ignore[arg-type]
    sandbox.faults.add("server_error", status=502, method="POST")
    sandbox.faults.add("reset", method="POST", when="after")
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format, journal="memory") as aw:
        with pytest.raises(ServerError, match="502 Bad Gateway"):
            await aw.phonechat.reschedule_made_booking(1)
        # The advice the README gives: calling again is safe, it reconciles first.
        with pytest.raises(OutcomeUnknownError, match="Calling again is safe: it reconciles first"):
            await aw.phonechat.reschedule_made_booking(2)
        # Calling again right away sends nothing: either may still be processed late.
        for booking_id in (1, 2):
            with pytest.raises(OutcomeUnknownError) as caught:
                await aw.phonechat.reschedule_made_booking(booking_id)
            assert caught.value.retry_after is not None
            assert caught.value.retry_after > 0
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 2  # one each, never re-sent
    assert len(sandbox.rescheduled(2)) == 1  # the second one did happen: hence "outcome unknown"


async def test_a_forced_call_reconciles_an_unknown_outcome_first_then_sends_again_as_its_error_said(
    sandbox: SandboxServer, format: str
) -> None:
    sandbox.faults.add("reset", method="POST", when="after")  # processed, the answer lost
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format, journal="memory") as aw:
        with pytest.raises(OutcomeUnknownError) as caught:
            await aw.phonechat.reschedule_made_booking(1, force=True)
        assert "Calling again unforced is safe: it reconciles first" in str(caught.value)
        assert "a forced call reconciles first too, but then sends it again" in str(caught.value)
        (lost,) = sandbox.rescheduled(1)
        # Forced again: the reconciliation learns the lost answer's booking, then force sends again.
        again = await aw.phonechat.reschedule_made_booking(1, force=True)
        assert again.booking_id != lost
        assert sandbox.rescheduled(1) == [lost, again.booking_id]
        assert await aw.journal.results_among(api_root(sandbox.url), [lost]) == {lost: 1}  # no chain
        with pytest.raises(AlreadyRescheduledError) as unforced:  # and unforced, nothing more
            await aw.phonechat.reschedule_made_booking(1)
        assert unforced.value.new_booking_id == again.booking_id
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 2


async def test_a_forced_call_sends_nothing_while_an_unknown_outcome_cannot_be_told(
    sandbox: SandboxServer, format: str
) -> None:
    # The POST never reached the server, but no answer says so: until the settle window has passed,
    # nobody can tell, and force does not guess either.
    sandbox.faults.add("reset", method="POST")
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format, journal="memory") as aw:
        with pytest.raises(OutcomeUnknownError):
            await aw.phonechat.reschedule_made_booking(1, force=True)
        with pytest.raises(OutcomeUnknownError) as caught:
            await aw.phonechat.reschedule_made_booking(1, force=True)
        assert caught.value.retry_after is not None
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1


async def test_a_batch_of_two_hundred_at_concurrency_fifty(format: str) -> None:
    await a_batch_at_concurrency_fifty(format, 200)


@pytest.mark.slow  # seconds in each format: two hundred, above, in the default run
async def test_a_batch_of_a_thousand_at_concurrency_fifty(format: str) -> None:
    await a_batch_at_concurrency_fifty(format, 1000)


async def a_batch_at_concurrency_fifty(format: str, count: int) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(TOKEN, user_id=USER)
        for booking_id in range(1, count + 1):
            sandbox.add_booking(past_booking(booking_id, credits="1.25"), client_user_id=USER)
        # Enough for all but ten of them: the last ten must be refused locally, with no POST.
        sandbox.set_balance(USER, Decimal("1.25") * (count - 10))
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, format=format) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(range(1, count + 1), concurrency=50)
        assert [o.booking_id for o in outcomes] == list(range(1, count + 1))
        done = [o for o in outcomes if o.ok]
        refused = [o for o in outcomes if not o.ok]
        assert len(done) == count - 10
        assert all(isinstance(o.error, InsufficientCreditsError) for o in refused)
        assert sandbox.get_balance(USER) == Decimal("0.00")
        assert all(len(sandbox.rescheduled(o.booking_id)) == 1 for o in done)
        assert all(sandbox.rescheduled(o.booking_id) == [] for o in refused)
        assert {o.booking.booking_id for o in done if o.booking} == {
            sandbox.rescheduled(o.booking_id)[0] for o in done
        }
        assert len(sandbox.requests) <= 2 * count + 1
        assert len([r for r in sandbox.requests if r.method == "POST"]) == count - 10


async def test_the_pytest_plugin_fixtures(
    aw_sandbox: SandboxServer, aw_client: AdultWorkClient, format: str
) -> None:
    aw_sandbox.set_balance(SANDBOX_USER_ID, Decimal(10))
    aw_sandbox.add_booking(past_booking(5, credits="4"), client_user_id=SANDBOX_USER_ID)
    new = await aw_client.phonechat.reschedule_made_booking(5)
    assert aw_sandbox.get_booking(new.booking_id) == new
    assert aw_sandbox.get_balance(SANDBOX_USER_ID) == Decimal(6)


async def test_a_refreshing_token_against_the_sandboxs_token_endpoint(format: str) -> None:
    from aw_async import RefreshingToken, TokenSet

    async with SandboxServer() as sandbox:
        sandbox.add_refresh_token(
            "first-refresh", client_id="bot", client_secret="s3cret", user_id=USER, expires_in=600
        )
        sandbox.set_balance(USER, Decimal(5))
        saved: list[TokenSet] = []
        token = RefreshingToken(
            "bot", "s3cret", "first-refresh", on_refresh=saved.append, token_url=sandbox.token_url
        )
        async with AdultWorkClient(token, base_url=sandbox.url, format=format) as aw:
            assert await aw.credit_history.get_current_credit_balance() == Decimal(5)
            # The server expires the access token early: the next call gets a 401, refreshes with the
            # rotated refresh token, and goes through.
            for grant in list(sandbox.state.tokens):
                sandbox.state.tokens[grant] = attrs.evolve(
                    sandbox.state.tokens[grant], expires_at=datetime.now(UTC)
                )
            assert await aw.credit_history.get_current_credit_balance() == Decimal(5)
        assert len(saved) == 2
        assert saved[0].refresh_token != saved[1].refresh_token
        assert list(sandbox.state.refresh_tokens) == [saved[1].refresh_token]  # the old ones are revoked
        # A refresh token that was already used is refused, as the real server does.
        stale = RefreshingToken("bot", "s3cret", "first-refresh", token_url=sandbox.token_url)
        async with AdultWorkClient(stale, base_url=sandbox.url, format=format) as aw:
            with pytest.raises(AuthenticationError) as caught:
                await aw.credit_history.get_current_credit_balance()
        assert caught.value.error == "refresh_token_has_expired"
