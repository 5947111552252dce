"""A batch under the vendor's limit: reschedules against a sandbox that throttles each token.

    python -m benchmarks.ratelimit [--bookings 2000] [--rate 50] [--burst 20] [--concurrency 50]
                                   [--max-rate R]

The sandbox (in this process, on loopback) answers each token's requests beyond ``--rate`` a second
(after a burst of ``--burst``) with a 429 and a whole-second ``Retry-After``, as ASP.NET Web API
throttles do. The client runs ``reschedule_made_bookings`` with checks on. By default it is told no
rate (the vendor documents none): the account's gate closes on every 429 and learns a pace from
them. ``--max-rate`` paces the client at a known rate as well.

Printed: bookings rescheduled (counted on the sandbox: exactly once each is the target), failed,
429 answers as a share of requests (target: at most 5 %), and the wall time against the ideal, the
requests the server served divided by its rate (target: at most 1.3x). A booking whose POST met a
429 is queued again by the batch and sent after the gate opens (``rate_limit_retries``); it fails
only when that budget is spent, and then it is printed as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from aw_async import AdultWorkClient
from aw_async.sandbox import SandboxServer, make_booking

TOKEN = "benchmark-ratelimit-token"
USER = 77
TARGETS = {"rescheduled_once": 1.0, "failed": 0, "share_429": 0.05, "wall_over_ideal": 1.3}


async def run(
    bookings: int, rate: float, burst: int, concurrency: int, max_rate: float | None
) -> dict[str, Any]:
    async with SandboxServer() as sandbox:
        sandbox.add_token(TOKEN, user_id=USER)
        sandbox.set_balance(USER, Decimal(bookings) * 10)
        for booking_id in range(1, bookings + 1):
            sandbox.add_booking(make_booking(booking_id, credits="5.00"), client_user_id=USER)
        sandbox.limit_rate(rate, burst=burst)
        started = time.perf_counter()
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, max_rate=max_rate) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(
                range(1, bookings + 1), concurrency=concurrency
            )
        wall = time.perf_counter() - started
        counts = Counter(sandbox.reschedule_count(booking_id) for booking_id in range(1, bookings + 1))
        requests = len(sandbox.requests)
        refused = sandbox.rate_limited
    errors = Counter(type(outcome.error).__name__ for outcome in outcomes if outcome.error is not None)
    ideal = (requests - refused) / rate
    return {
        "bookings": bookings,
        "max_rate": max_rate,
        "rescheduled_once": counts[1],
        "rescheduled_twice_or_more": sum(n for times, n in counts.items() if times > 1),
        "failed": sum(errors.values()),
        "errors": dict(errors),
        "requests": requests,
        "answered_429": refused,
        "share_429": round(refused / requests, 4) if requests else 0.0,
        "wall_s": round(wall, 1),
        "ideal_s": round(ideal, 1),
        "wall_over_ideal": round(wall / ideal, 2) if ideal else 0.0,
    }


def print_figures(figures: dict[str, Any], rate: float, burst: int, concurrency: int) -> None:
    pace = f"max_rate={figures['max_rate']:g}" if figures["max_rate"] else "no max_rate (the pace is learnt)"
    print(
        f"{figures['bookings']} reschedules, checks on, concurrency {concurrency}, sandbox limited to "
        f"{rate:g}/s (burst {burst}), {pace}"
    )
    once, total = figures["rescheduled_once"], figures["bookings"]
    rows = [
        ("rescheduled exactly once", f"{once} of {total}", once == total),
        ("rescheduled twice or more", str(figures["rescheduled_twice_or_more"]), True),
        ("failed", f"{figures['failed']} {figures['errors'] or ''}".strip(), figures["failed"] == 0),
        (
            "429 answers / requests",
            f"{figures['answered_429']} / {figures['requests']} = {figures['share_429']:.1%}",
            figures["share_429"] <= TARGETS["share_429"],
        ),
        (
            "wall time / ideal",
            f"{figures['wall_s']} s / {figures['ideal_s']} s = {figures['wall_over_ideal']}x",
            figures["wall_over_ideal"] <= TARGETS["wall_over_ideal"],
        ),
    ]
    for what, value, met in rows:
        print(f"  {what:<28}{value:<40}{'' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="the sandbox's limit, requests a second")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--max-rate", type=float, help="the client's own pace (default: none, learnt)")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.bookings, args.rate, args.burst, args.concurrency, args.max_rate))
    print_figures(figures, args.rate, args.burst, args.concurrency)
    met = (
        figures["rescheduled_once"] == figures["bookings"]
        and figures["failed"] == 0
        and figures["share_429"] <= TARGETS["share_429"]
        and figures["wall_over_ideal"] <= TARGETS["wall_over_ideal"]
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
