"""The ``aw-async`` command line (also ``python -m aw_async``).

Commands: ``demo``, ``sandbox``, ``booking ID``, ``bookings``, ``balance``, ``reschedule ID...``,
``cancel ID --reason R``. Each takes ``--format json|xml`` and ``--base-url``; the token comes from
``--token`` or ``AW_ACCESS_TOKEN``.

Exit codes: 0 when everything was done, 1 when something failed (an API error, a booking of a batch),
2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ._cli_demo import run_demo
from ._cli_format import booking_line, error_line, money, plural, to_json
from ._cli_reschedule import default_journal_path, dry_run, reconcile, reschedule
from ._client import SANDBOX_URL, AdultWorkClient, Format, InsecureUrlError
from ._prerequisites import ORDERS
from ._version import __version__
from .errors import AdultWorkError
from .sandbox import SandboxServer, seed_demo

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``aw-async``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=["json", "xml"], help="the body format to ask for (default json)")
    common.add_argument(
        "--base-url",
        default=os.environ.get("AW_BASE_URL") or SANDBOX_URL,
        help=f"the API's root URL (default: the AW_BASE_URL variable, else {SANDBOX_URL})",
    )
    common.add_argument("--token", help="the access token (default: the AW_ACCESS_TOKEN variable)")
    common.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per try of a request (default 30)"
    )
    common.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// --base-url to another machine",
    )

    parser = argparse.ArgumentParser(
        prog="aw-async",
        description="An asyncio client for the AdultWork.com REST API: PhoneChat reschedules.",
        epilog="Exit codes: 0 all done, 1 something failed, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"aw-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser(
        "demo", parents=[common], help="walk the whole job against an in-process sandbox (JSON, then XML)"
    )
    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="serve a sandbox with sample data until Ctrl-C"
    )
    sandbox.add_argument(
        "--port", type=int, default=8080, help="the port to listen on (default 8080; 0: any free one)"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")

    booking = commands.add_parser("booking", parents=[common], help="show a booking you made")
    booking.add_argument("booking_id", type=int, metavar="ID")
    booking.add_argument(
        "--as-user", type=int, metavar="USER_ID", help="as a group manager, a member's booking"
    )
    booking.add_argument("--json", action="store_true", help="print JSON")

    bookings = commands.add_parser("bookings", parents=[common], help="list the bookings you made")
    bookings.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="only bookings created on or after this day: YYYY-MM-DD, or a span ago (7d, 24h)",
    )
    bookings.add_argument(
        "--order", choices=ORDERS, default="date-desc", help="the order (default date-desc)"
    )
    bookings.add_argument(
        "--as-user", type=int, metavar="USER_ID", help="as a group manager, a member's bookings"
    )
    bookings.add_argument("--json", action="store_true", help="print JSON")

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a booking you made")
    cancel.add_argument("booking_id", type=int, metavar="ID")
    cancel.add_argument("--reason", required=True, help="why (the server requires one)")
    cancel.add_argument("--no-check", action="store_true", help="skip the prerequisite check (POST only)")
    cancel.add_argument("--json", action="store_true", help="print JSON")

    balance = commands.add_parser("balance", parents=[common], help="show your credit balance")
    balance.add_argument("--json", action="store_true", help="print JSON")

    journal = argparse.ArgumentParser(add_help=False)
    where = journal.add_mutually_exclusive_group()
    where.add_argument(
        "--journal",
        type=Path,
        metavar="PATH",
        help=f"the journal of reschedules (default {default_journal_path()})",
    )
    where.add_argument(
        "--no-journal", action="store_true", help="keep no journal on disk (this run's memory only)"
    )

    reschedule = commands.add_parser(
        "reschedule", parents=[common, journal], help="reschedule bookings whose session passed, once each"
    )
    reschedule.add_argument("booking_ids", type=_booking_id, nargs="*", metavar="ID")
    reschedule.add_argument(
        "--from-file", type=Path, metavar="F", help="more ids, one per line ('-' for stdin)"
    )
    reschedule.add_argument(
        "--passed-since",
        type=_span,
        metavar="SPAN",
        help="also every booking whose session passed within SPAN (24h, 7d) and is not rescheduled",
    )
    reschedule.add_argument(
        "--dry-run", action="store_true", help="with --passed-since: show them and what they would spend"
    )
    reschedule.add_argument(
        "--concurrency", type=int, default=8, help="bookings in flight at once (default 8)"
    )
    reschedule.add_argument(
        "--no-check", action="store_true", help="skip the prerequisite checks (POST only)"
    )
    reschedule.add_argument(
        "--force", action="store_true", help="reschedule even bookings the journal says are rescheduled"
    )
    reschedule.add_argument("--json", action="store_true", help="print one JSON object a line")

    reconcile = commands.add_parser(
        "reconcile",
        parents=[common, journal],
        help="learn from your bookings whether reschedules whose outcome is unknown happened",
    )
    reconcile.add_argument("booking_ids", type=_booking_id, nargs="+", metavar="ID")
    reconcile.add_argument(
        "--since", type=_moment, metavar="WHEN", help="when the attempt was made (default: the journal's)"
    )
    reconcile.add_argument("--json", action="store_true", help="print one JSON object a line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aw-async`` with ``argv`` (default: the process's arguments); return the exit code."""
    for stream in (sys.stdout, sys.stderr):
        # Text from a server may hold what the terminal's encoding cannot (a lone surrogate): it is
        # shown escaped, never allowed to hide an outcome behind an encoding error.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            formats = [Format(args.format)] if args.format else [Format.JSON, Format.XML]
            return asyncio.run(run_demo(formats, print))
        if args.command == "sandbox":
            try:
                return asyncio.run(_serve_sandbox(args.host, args.port, args.token))
            except KeyboardInterrupt:  # the way to stop it
                print("sandbox stopped")
                return EXIT_OK
            except OSError as exc:  # the port is taken, the address is not this machine's...
                print(
                    f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
                )
                if exc.errno == errno.EADDRINUSE:
                    print("  another program listens there: pass --port 0 for any free port", file=sys.stderr)
                return EXIT_FAILED
        token = args.token or os.environ.get("AW_ACCESS_TOKEN")
        if not token:
            parser.error("an access token is needed: pass --token or set AW_ACCESS_TOKEN")
        if args.command == "reschedule":
            ids = list(args.booking_ids) + (_read_ids(args.from_file, parser) if args.from_file else [])
            args.ids = ids
            if not ids and args.passed_since is None:
                parser.error("reschedule needs booking ids (arguments, --from-file or --passed-since)")
            if args.dry_run and args.passed_since is None:
                parser.error("--dry-run goes with --passed-since")
            if args.concurrency < 1:
                parser.error("--concurrency must be at least 1")
        return asyncio.run(_call(args, token))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


#: Booking ids are .NET ``int``s: 1 to 2**31 - 1.
_MAX_ID = 2**31 - 1


def _id_problem(text: str) -> str | None:
    """Why ``text`` is not a booking id, or None. ASCII digits only: ``int()`` would also take
    ``０``-style digits, ``1_000`` and spaces."""
    if not (text.isascii() and text.isdigit()):
        return f"{text!r} is not a booking id (ASCII digits only)"
    if len(text) > 10 or not 1 <= int(text) <= _MAX_ID:
        return f"{text!r} is not a booking id (1 to {_MAX_ID})"
    return None


def _booking_id(text: str) -> int:
    problem = _id_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return int(text)


def _span(text: str) -> timedelta:
    try:
        return parse_span(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span like 24h, 7d or 90m") from None


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-11-30T09:15") from None


def _read_ids(path: Path, parser: argparse.ArgumentParser) -> list[int]:
    """The ids of a file, one a line (``#`` starts a comment); every bad line is reported at once."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"--from-file {path}: {exc.strerror if isinstance(exc, OSError) else exc}")
    ids, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        problem = _id_problem(line)
        if problem is None:
            ids.append(int(line))
        else:
            problems.append(f"  line {number}: {problem}")
    if problems:
        shown = problems[:20] + ([f"  ... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        parser.error(f"--from-file {path}: {plural(len(problems), 'bad line')}:\n" + "\n".join(shown))
    return ids


async def _call(args: argparse.Namespace, token: str) -> int:
    journal: Path | None = None
    if args.command in ("reschedule", "reconcile") and not args.no_journal:
        journal = args.journal or default_journal_path()
    try:
        client = AdultWorkClient(
            token,
            base_url=args.base_url,
            format=args.format or "json",
            timeout=args.timeout,
            allow_insecure_http=args.allow_insecure_http,
            journal=journal,
        )
    except InsecureUrlError as exc:  # worded for this command line, not for the Python API
        plain = InsecureUrlError("--base-url", exc.url, exc.host, override="--allow-insecure-http")
        print(f"error: {plain}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # a bad --base-url or the like
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        async with client as aw:
            if args.command == "booking":
                booking = await aw.phonechat.made_booking_details(args.booking_id, as_user=args.as_user)
                print(to_json(booking) if args.json else booking_line(booking))
                return EXIT_OK
            if args.command == "bookings":
                return await _list_bookings(aw, args)
            if args.command == "cancel":
                cancelled = await aw.phonechat.cancel_made_booking(
                    args.booking_id, args.reason, check_preconditions=not args.no_check
                )
                print(to_json(cancelled) if args.json else f"cancelled {booking_line(cancelled)}")
                return EXIT_OK
            if args.command == "balance":
                credits = await aw.credit_history.get_current_credit_balance()
                print(to_json({"balance": credits}) if args.json else f"{money(credits)} credits")
                return EXIT_OK
            if args.command == "reconcile":
                return await reconcile(aw, args.booking_ids, args)
            return await _reschedule(aw, args)
    except AdultWorkError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the journal's folder or file cannot be written
        print(f"error: journal {journal}: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _list_bookings(aw: AdultWorkClient, args: argparse.Namespace) -> int:
    listing = aw.phonechat.made_bookings(start_date=args.since, order_by=args.order, as_user=args.as_user)
    if args.json:  # one document: a list
        print(to_json([booking async for booking in listing]))
        return EXIT_OK
    count = 0
    async for booking in listing:  # each line as its page arrives
        print(booking_line(booking), flush=True)
        count += 1
    print(plural(count, "booking"))
    return EXIT_OK


def _since(text: str) -> date:
    """``--since``: a day (``2026-11-01``) or a span ago (``7d``, ``24h``, ``90m``)."""
    try:
        return date.fromisoformat(text) if "-" in text else (datetime.now(UTC) - parse_span(text)).date()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a day (YYYY-MM-DD) nor a span (7d, 24h)"
        ) from exc


def parse_span(text: str) -> timedelta:
    """``7d``, ``24h``, ``90m``, ``30s``: a span of time.

    Raises:
        ValueError: not a whole number followed by one of d, h, m, s.
    """
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not (number.isascii() and number.isdigit()) or len(number) > 6:
        raise ValueError(f"not a span: {text!r}")
    return timedelta(**{units[unit]: int(number)})


async def _reschedule(aw: AdultWorkClient, args: argparse.Namespace) -> int:
    ids: list[int] = args.ids
    if args.passed_since is not None:
        if args.dry_run:
            return await dry_run(aw, ids, args)
        ids = ids + [b.booking_id async for b in aw.phonechat.passed_bookings(since=args.passed_since)]
        if not ids:
            print("no booking whose session passed in that span is waiting to be rescheduled")
            return EXIT_OK
    return await reschedule(aw, ids, args)


async def _serve_sandbox(host: str, port: int, token: str | None) -> int:
    async with SandboxServer(host=host, port=port) as sandbox:
        demo = seed_demo(sandbox, token=token) if token else seed_demo(sandbox)
        passed = " ".join(map(str, demo.passed))
        print(f"Sandbox serving on {sandbox.url} (Ctrl-C to stop)", flush=True)
        print(f"  token     {demo.token}  (user {demo.user_id}, {demo.balance} credits)")
        print(f"  bookings  {passed} can be rescheduled; {demo.upcoming} is still to come;")
        print(f"            {demo.expensive} costs more than the balance")
        print("Try:")
        print(f"  export AW_ACCESS_TOKEN={demo.token}")
        print(f"  aw-async balance --base-url {sandbox.url}")
        print(f"  aw-async reschedule {passed} {demo.upcoming} --base-url {sandbox.url}", flush=True)
        await asyncio.Event().wait()  # until Ctrl-C
    return EXIT_OK
