"""``aw-async demo`` (the whole job against an in-process sandbox, in JSON and then in XML) and
``aw-async sandbox`` (a sandbox with the same data, served until Ctrl-C)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._client import AdultWorkClient, Format
from ..errors import AlreadyRescheduledError, PreconditionError
from ..sandbox import SandboxServer, seed_demo
from ._format import Rerun, booking_line, error_line, summary_line

__all__ = ["SANDBOX_REFRESH", "run_demo", "serve_sandbox"]

#: The application and the first refresh token ``aw-async sandbox`` accepts (a refresh replaces it).
SANDBOX_REFRESH = ("sandbox-client", "sandbox-client-secret", "sandbox-refresh-token")


async def run_demo(formats: list[Format], say: Callable[[str], None]) -> int:
    """Walk the job once per format; 0 when every step behaved as documented."""
    for format in formats:
        async with SandboxServer() as sandbox:
            demo = seed_demo(sandbox)
            say(f"\n== {format.value.upper()} == sandbox at {sandbox.url}, user {demo.user_id}")
            # A journal of its own: the demo leaves nothing in your journal.
            async with AdultWorkClient(
                demo.token, base_url=sandbox.url, format=format, journal="memory"
            ) as aw:
                first = demo.passed[0]
                say(f"1. details   {booking_line(await aw.phonechat.made_booking_details(first))}")
                member, member_booking = demo.member_booking
                booking = await aw.phonechat.made_booking_details(member_booking, as_user=member)
                say(f"   as group manager of {member}: {booking_line(booking)}")
                say(f"2. balance   {await aw.credit_history.get_current_credit_balance()} credits")
                for refused in (demo.upcoming, demo.expensive):
                    try:
                        await aw.phonechat.reschedule_made_booking(refused)
                    except PreconditionError as exc:
                        say(f"3. refused   {error_line(exc)}; no POST was sent")
                    else:
                        say(f"3. UNEXPECTED: booking {refused} was rescheduled")
                        return 1
                new = await aw.phonechat.reschedule_made_booking(first)
                say(f"4. done      {first} became {booking_line(new)}")
                batch = list(demo.passed[1:])
                outcomes = await aw.phonechat.reschedule_made_bookings(batch, concurrency=2)
                summary = summary_line(outcomes, rerun=Rerun.UNRECORDED)  # its journal is in memory
                say(f"5. batch     {' '.join(map(str, batch))}: {summary}")
                balance = await aw.credit_history.get_current_credit_balance()
                agrees = sandbox.get_balance(demo.user_id)
                say(f"   balance   {balance} credits left (the sandbox agrees: {agrees})")
                if not all(outcome.ok for outcome in outcomes):
                    return 1
                try:  # a second click, a re-run: the journal remembers what the server does not
                    await aw.phonechat.reschedule_made_booking(first)
                except AlreadyRescheduledError as exc:
                    say(
                        f"6. again     {first} was already rescheduled into {exc.new_booking_id}; "
                        "nothing was sent"
                    )
                else:
                    say(f"6. UNEXPECTED: booking {first} was rescheduled twice")
                    return 1
    say("\nEverything behaved as documented.")
    return 0


async def serve_sandbox(host: str, port: int, token: str | None, format: str | None = None) -> int:
    """Serve a sandbox seeded with :func:`seed_demo` and refresh credentials, until cancelled
    (Ctrl-C); print how to use it first. ``format``: what it answers a request that asks for no
    format it serves (JSON unless told), and what the commands it suggests ask for."""
    async with SandboxServer(host=host, port=port) as sandbox:
        if format is not None:
            sandbox.default_format = format
        asking = f" --format {format}" if format is not None else ""
        demo = seed_demo(sandbox, token=token) if token else seed_demo(sandbox)
        passed = " ".join(map(str, demo.passed))
        print(f"Sandbox serving on {sandbox.url} (Ctrl-C to stop)", flush=True)
        print(f"  token     {demo.token}  (user {demo.user_id}, {demo.balance} credits)")
        print(f"  bookings  {passed} can be rescheduled; {demo.upcoming} is still to come;")
        print(f"            {demo.expensive} costs more than the balance")
        # Refresh credentials too, so that the way a real account is used can be tried here.
        client_id, client_secret, refresh_token = SANDBOX_REFRESH
        sandbox.add_refresh_token(
            refresh_token, client_id=client_id, client_secret=client_secret, user_id=demo.user_id
        )
        print(
            f"  refresh   AW_REFRESH_TOKEN={refresh_token} AW_CLIENT_ID={client_id} "
            f"AW_CLIENT_SECRET={client_secret} AW_TOKEN_URL={sandbox.token_url}"
        )
        print("Try:")
        print(f"  export AW_ACCESS_TOKEN={demo.token}")
        print(f"  aw-async balance --base-url {sandbox.url}{asking}")
        print(f"  aw-async reschedule {passed} {demo.upcoming} --base-url {sandbox.url}{asking}", flush=True)
        await asyncio.Event().wait()  # until Ctrl-C
    return 0
