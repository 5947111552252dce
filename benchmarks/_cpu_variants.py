"""The clients that :mod:`.cpu` measures: the floor, the peers, a hand-written checked reschedule, and
the library's single call and batch.

Each variant is opened (its session, its client, its journal) and then run over a range of booking
ids: the opening and a warm-up are outside the measured span, so each figure is what a long-running
process pays per booking. Every per-booking variant runs the same way: ``concurrency`` tasks, each
awaiting one booking after another from a shared iterator (:func:`drive`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

#: Runs the variant over these booking ids.
Run = Callable[[range], Awaitable[None]]

DETAILS = "/v1/PhoneChat/MadeBookingDetails?BookingID="
BALANCE = "/v1/CreditHistory/GetCurrentCreditBalance"
RESCHEDULE = "/v1/PhoneChat/RescheduleMadeBooking"
MEDIA = {"json": "application/json", "xml": "application/xml"}


@attrs.frozen
class Variant:
    """One row of the table.

    Attributes:
        kind: ``floor``, ``json.loads``, ``pydantic``, ``httpx``, ``hand`` (the peers), ``single``
            or ``batch`` (the library's ``reschedule_made_booking`` and ``reschedule_made_bookings``).
        format: ``json`` or ``xml``.
        checks: the library's ``check_preconditions`` (the hand-written version always checks).
        journal: the library's journal: ``memory``, ``sqlite`` or ``postgres``; None for the peers.
    """

    kind: str
    format: str = "json"
    checks: bool = False
    journal: str | None = None

    @property
    def label(self) -> str:
        return {
            "floor": "raw aiohttp, POST, read the bytes (the floor)",
            "json.loads": "aiohttp + json.loads",
            "pydantic": "aiohttp + a pydantic v2 model",
            "httpx": "httpx + pydantic v2 (the common pick)",
            "hand": "by hand: aiohttp, 2 GETs, compare, POST, pydantic",
            "single": f"reschedule_made_booking, checks {'on' if self.checks else 'off'}",
            "batch": f"reschedule_made_bookings, checks {'on' if self.checks else 'off'}",
        }[self.kind]

    @property
    def is_library(self) -> bool:
        return self.kind in ("single", "batch")


async def drive(ids: Iterable[int], concurrency: int, one: Callable[[int], Awaitable[object]]) -> None:
    """``concurrency`` tasks, each awaiting ``one`` for the next id until there are none."""
    pending = iter(ids)

    async def worker() -> None:
        for booking_id in pending:
            await one(booking_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Failed(Exception):
    """A variant got an answer it should not have: its figures would mean nothing."""


@contextlib.asynccontextmanager
async def open_variant(
    variant: Variant, base: str, concurrency: int, journal: str | None, warm_up: range
) -> AsyncIterator[Run]:
    """The variant, warmed up over ``warm_up`` and ready to run; ``journal`` is what the client's
    ``journal=`` gets (a path, a ``postgresql://`` URL or ``"memory"``). Leaving it closes the
    client (and commits what its journal queued)."""
    opened: contextlib.AbstractAsyncContextManager[Run]
    if variant.is_library:
        opened = _library(variant, base, concurrency, journal or "memory", warm_up)
    elif variant.kind == "httpx":
        opened = _httpx(base, concurrency)
    else:
        opened = _aiohttp(variant, base, concurrency)
    async with opened as run:
        if not variant.is_library:
            await run(warm_up)
        yield run


@contextlib.asynccontextmanager
async def _aiohttp(variant: Variant, base: str, concurrency: int) -> AsyncIterator[Run]:
    import aiohttp

    headers = {"Authorization": "bearer benchmark", "Accept": MEDIA[variant.format]}
    post_headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
    post_url = base + RESCHEDULE
    decode = _decoder(variant.kind)
    async with aiohttp.ClientSession() as session:
        if variant.kind == "hand":
            one = _hand_written(session, base, headers)
        else:

            async def one(booking_id: int) -> object:
                body = f'{{"BookingID":{booking_id}}}'.encode()
                async with session.post(post_url, data=body, headers=post_headers) as response:
                    if response.status != 200:
                        raise Failed(f"HTTP {response.status}")
                    return decode(await response.read())

        yield lambda ids: drive(ids, concurrency, one)


def _decoder(kind: str) -> Callable[[bytes], object]:
    if kind == "json.loads":
        import json

        return json.loads
    if kind == "pydantic":
        import pydantic

        from .peers import pydantic_booking

        return pydantic_booking(pydantic).model_validate_json  # type: ignore[no-any-return]
    return lambda body: body


def _hand_written(session: Any, base: str, headers: dict[str, str]) -> Callable[[int], Awaitable[object]]:
    """A checked reschedule as one would write it by hand: the booking and the balance read
    concurrently and decoded with pydantic, the two prerequisites compared, the POST, its answer
    decoded. No journal: this is what the library's checked single call is compared with."""
    import pydantic

    from .peers import pydantic_booking

    booking_model = pydantic_booking(pydantic)
    balance_adapter = pydantic.TypeAdapter(Decimal)
    balance_url, post_url = base + BALANCE, base + RESCHEDULE

    async def get(url: str, decode: Callable[[bytes], Any]) -> Any:
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise Failed(f"HTTP {response.status}")
            return decode(await response.read())

    async def one(booking_id: int) -> object:
        booking, balance = await asyncio.gather(
            get(f"{base}{DETAILS}{booking_id}", booking_model.model_validate_json),
            get(balance_url, balance_adapter.validate_json),
        )
        session_date = booking.session_date
        if session_date is None:
            raise Failed(f"booking {booking_id} has no session date")
        if session_date.tzinfo is None:
            session_date = session_date.replace(tzinfo=UTC)
        if session_date >= datetime.now(UTC):
            raise Failed(f"booking {booking_id}'s session has not passed")
        if balance < booking.credits:
            raise Failed(f"booking {booking_id}: not enough credits")
        async with session.post(post_url, json={"BookingID": booking_id}, headers=headers) as response:
            if response.status != 200:
                raise Failed(f"HTTP {response.status}")
            return booking_model.model_validate_json(await response.read())

    return one


@contextlib.asynccontextmanager
async def _httpx(base: str, concurrency: int) -> AsyncIterator[Run]:
    import httpx
    import pydantic

    from .peers import pydantic_booking

    booking_model = pydantic_booking(pydantic)
    headers = {
        "Authorization": "bearer benchmark",
        "Accept": MEDIA["json"],
        "Content-Type": "application/json; charset=utf-8",
    }
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:

        async def one(booking_id: int) -> object:
            body = f'{{"BookingID":{booking_id}}}'.encode()
            response = await client.post(RESCHEDULE, content=body, headers=headers)
            if response.status_code != 200:
                raise Failed(f"HTTP {response.status_code}")
            return booking_model.model_validate_json(response.content)

        yield lambda ids: drive(ids, concurrency, one)


@contextlib.asynccontextmanager
async def _library(
    variant: Variant, base: str, concurrency: int, journal: str, warm_up: range
) -> AsyncIterator[Run]:
    from aw_async import AdultWorkClient
    from aw_async.journal import Key

    async with AdultWorkClient("benchmark", base_url=base, format=variant.format, journal=journal) as aw:
        phonechat = aw.phonechat
        # Open the journal (a file, a schema, a pool) before anything is measured.
        await aw.journal.get(Key(phonechat.api_root, 2**31 - 1))
        checks = variant.checks
        if variant.kind == "single":

            async def one(booking_id: int) -> object:
                return await phonechat.reschedule_made_booking(booking_id, check_preconditions=checks)

            run: Run = lambda ids: drive(ids, concurrency, one)  # noqa: E731
        else:

            async def run(ids: range) -> None:
                outcomes = await phonechat.reschedule_made_bookings(
                    ids, concurrency=concurrency, check_preconditions=checks
                )
                failed = [outcome for outcome in outcomes if not outcome.ok]
                if failed:
                    raise Failed(f"{len(failed)} bookings failed, e.g. {failed[0].error}")

        await run(warm_up)
        await aw.journal.flush()  # the warm-up's outcomes committed before the measured span
        yield run
