"""The ``aw-async`` command line (also ``python -m aw_async``): the parser, and one function per command.

Commands: ``demo``, ``sandbox``, ``booking ID``, ``bookings``, ``balance``, ``reschedule ID...``,
``reconcile ID...``, ``cancel ID --reason R``, ``journal list`` and ``journal resolve ID``. Each
takes ``--format json|xml`` and ``--base-url`` (or ``AW_BASE_URL``); the credentials come from
``--token`` or the environment or the credentials file (:mod:`._credentials`).

Exit codes: 0 when everything was done, 1 when something failed (an API error, a booking of a batch),
2 for a usage error, 130 and 143 for a batch stopped by SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from .._client import SANDBOX_URL, AdultWorkClient, Format
from .._version import __version__
from ..errors import AdultWorkError, InsecureUrlError
from ..journal import AttemptState, default_journal_path
from ..phonechat._prerequisites import ORDERS
from ._arguments import (
    booking_id,
    check_reschedule,
    journal_of,
    moment,
    parse_span,
    read_ids,
    refuse_unused,
    seconds,
    since,
    span,
)
from ._credentials import CredentialsError, credentials_path, token_from
from ._demo import run_demo, serve_sandbox
from ._dry_run import dry_run
from ._exit import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ._format import Rerun, booking_line, error_line, money, plural, to_json
from ._journal import list_journal, resolve_in_journal
from ._reschedule import reconcile, reschedule

__all__ = ["build_parser", "main", "parse_span"]

DEFAULT_TIMEOUT = 30.0
#: The environment variable (or option) each URL a client checks comes from, in this command line's words.
_URL_NAMES = {"base_url": "--base-url", "token_url": "AW_TOKEN_URL"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``aw-async``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=["json", "xml"], help="the body format to ask for (default json)")
    common.add_argument(
        "--base-url", help=f"the API's root URL (default: the AW_BASE_URL variable, else {SANDBOX_URL})"
    )
    common.add_argument(
        "--token",
        help="the access token (default: AW_ACCESS_TOKEN; or AW_REFRESH_TOKEN with AW_CLIENT_ID and "
        "AW_CLIENT_SECRET, and AW_TOKEN_URL if not the vendor's, in the environment or in "
        f"{credentials_path()})",
    )
    common.add_argument(
        "--timeout", type=seconds, metavar="SECONDS", help="seconds per try of a request (default 30)"
    )
    common.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// --base-url to another machine",
    )
    journal = _journal_options(forgettable=True)
    journal_file = _journal_options(forgettable=False)

    parser = argparse.ArgumentParser(
        prog="aw-async",
        description="An asyncio client for the AdultWork.com REST API: PhoneChat bookings, rescheduled once.",
        epilog="Exit codes: 0 all done, 1 something failed, 2 usage error, 130/143 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"aw-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", parents=[common], help="walk the whole job against an in-process sandbox"
    )
    demo.set_defaults(run=_demo)
    sandbox = commands.add_parser(
        "sandbox", parents=[common], help="serve a sandbox with sample data until Ctrl-C"
    )
    sandbox.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0: any free one)")
    sandbox.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    sandbox.set_defaults(run=_sandbox)

    booking = commands.add_parser("booking", parents=[common], help="show a booking you made")
    booking.add_argument("booking_id", type=booking_id, metavar="ID")
    booking.add_argument(
        "--as-user", type=booking_id, metavar="USER_ID", help="as a group manager, a member's"
    )
    booking.add_argument("--json", action="store_true", help="print JSON")
    booking.set_defaults(command_with_client=_show_booking)

    bookings = commands.add_parser("bookings", parents=[common], help="list the bookings you made")
    bookings.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="created on or after: YYYY-MM-DD, or a span ago (7d, 24h)",
    )
    bookings.add_argument(
        "--order", choices=ORDERS, default="date-desc", help="the order (default date-desc)"
    )
    bookings.add_argument(
        "--as-user", type=booking_id, metavar="USER_ID", help="as a group manager, a member's"
    )
    bookings.add_argument("--json", action="store_true", help="print JSON")
    bookings.set_defaults(command_with_client=_list_bookings)

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a booking you made")
    cancel.add_argument("booking_id", type=booking_id, metavar="ID")
    cancel.add_argument("--reason", required=True, help="why (the server requires one)")
    cancel.add_argument("--no-check", action="store_true", help="skip the prerequisite check (POST only)")
    cancel.add_argument("--json", action="store_true", help="print JSON")
    cancel.set_defaults(command_with_client=_cancel)

    balance = commands.add_parser("balance", parents=[common], help="show your credit balance")
    balance.add_argument("--json", action="store_true", help="print JSON")
    balance.set_defaults(command_with_client=_balance)

    rescheduling = commands.add_parser(
        "reschedule", parents=[common, journal], help="reschedule bookings whose session passed, once each"
    )
    rescheduling.add_argument("booking_ids", type=booking_id, nargs="*", metavar="ID")
    rescheduling.add_argument("--from-file", type=Path, metavar="F", help="more ids, one a line ('-': stdin)")
    rescheduling.add_argument(
        "--passed-since",
        type=span,
        metavar="SPAN",
        help="also every booking whose session passed within SPAN (24h, 7d) and is not rescheduled",
    )
    rescheduling.add_argument(
        "--include-reschedules",
        action="store_true",
        help="with --passed-since: also bookings that are themselves reschedules (by default one missed "
        "session is rescheduled once, never in a chain)",
    )
    rescheduling.add_argument(
        "--dry-run", action="store_true", help="show what would be rescheduled and spent; send nothing"
    )
    rescheduling.add_argument(
        "--concurrency", type=int, default=8, help="bookings in flight at once (default 8)"
    )
    rescheduling.add_argument(
        "--max-rate",
        type=float,
        metavar="R",
        help="at most R requests a second (the vendor documents no limit; without R, a pace is learnt)",
    )
    rescheduling.add_argument(
        "--no-check", action="store_true", help="skip the prerequisite checks (POST only)"
    )
    rescheduling.add_argument(
        "--force",
        action="store_true",
        help="reschedule even bookings the journal says are rescheduled (an unknown outcome is "
        "reconciled first, then sent again even if it went through)",
    )
    rescheduling.add_argument("--json", action="store_true", help="print one JSON object a line")
    rescheduling.set_defaults(command_with_client=_reschedule, needs_journal=True)

    reconciling = commands.add_parser(
        "reconcile",
        parents=[common, journal],
        help="learn from your bookings whether reschedules whose outcome is unknown happened",
    )
    reconciling.add_argument("booking_ids", type=booking_id, nargs="+", metavar="ID")
    reconciling.add_argument(
        "--since", type=moment, metavar="WHEN", help="when the attempt was made (default: the journal's)"
    )
    reconciling.add_argument("--json", action="store_true", help="print one JSON object a line")
    reconciling.set_defaults(command_with_client=_reconcile, needs_journal=True)

    journal_commands = commands.add_parser("journal", help="what the journal holds for the API root")
    what = journal_commands.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    listing = what.add_parser(
        "list", parents=[common, journal_file], help="the journal's entries for --base-url"
    )
    listing.add_argument(
        "--state", choices=[state.value.replace("_", "-") for state in AttemptState], help="only this state"
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object a line")
    listing.set_defaults(command_with_client=_list_journal, needs_journal=True, needs_no_token=True)
    resolving = what.add_parser(
        "resolve",
        parents=[common, journal_file],
        help="record your own answer for an unknown or ambiguous outcome",
    )
    resolving.add_argument("booking_id", type=booking_id, metavar="ID")
    answer = resolving.add_mutually_exclusive_group(required=True)
    answer.add_argument("--rescheduled-into", type=booking_id, metavar="N", help="it was rescheduled into N")
    answer.add_argument("--not-rescheduled", action="store_true", help="it was not rescheduled")
    resolving.set_defaults(command_with_client=_resolve, needs_journal=True, needs_no_token=True)
    return parser


def _journal_options(*, forgettable: bool) -> argparse.ArgumentParser:
    """``--journal`` (and ``--no-journal`` where a journal in memory means something: not for the
    commands that show or change the journal itself)."""
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_mutually_exclusive_group()
    where.add_argument(
        "--journal",
        metavar="PATH|URL",
        help=f"the journal of reschedules: a file, or a postgresql:// URL (default {default_journal_path()})",
    )
    if forgettable:
        where.add_argument(
            "--no-journal",
            action="store_true",
            help="keep the journal in memory for this run only: this drops the protection against "
            "rescheduling a booking twice across runs, processes and hosts",
        )
    return options


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
        if hasattr(args, "run"):
            code: int = args.run(parser, args)
            return code
        if args.command == "reschedule":
            check_reschedule(parser, args)
        if getattr(args, "needs_no_token", False):
            refuse_unused(parser, args, {"--base-url", "--allow-insecure-http"}, "sends no request")
        return asyncio.run(_with_client(parser, args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


async def _with_client(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    journal = journal_of(parser, args) if getattr(args, "needs_journal", False) else None
    try:
        token = (
            "-"  # journal commands read and write the journal only: no request is ever sent
            if getattr(args, "needs_no_token", False)
            else token_from(args.token or os.environ.get("AW_ACCESS_TOKEN"), os.environ)
        )
    except CredentialsError as exc:
        parser.error(str(exc))
    ids: list[int] = list(getattr(args, "booking_ids", []))
    if getattr(args, "from_file", None):
        ids += read_ids(args.from_file, parser)
    pacing = {"max_rate": args.max_rate} if getattr(args, "max_rate", None) else {}
    try:
        client = AdultWorkClient(
            token,
            base_url=args.base_url or os.environ.get("AW_BASE_URL") or SANDBOX_URL,
            format=args.format or "json",
            timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
            allow_insecure_http=args.allow_insecure_http,
            journal=journal,
            **pacing,
        )
    except InsecureUrlError as exc:  # worded for this command line, not for the Python API
        what = _URL_NAMES.get(exc.what, exc.what)
        plain = InsecureUrlError(what, exc.url, exc.host, override="--allow-insecure-http")
        print(f"error: {plain}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as exc:  # a bad --base-url or the like
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        async with client as aw:
            command: Callable[[AdultWorkClient, argparse.Namespace, list[int]], Awaitable[int]]
            command = args.command_with_client
            return await command(aw, args, ids)
    except AdultWorkError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


# --- the commands that need no client ------------------------------------------------------------


def _demo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    refuse_unused(parser, args, {"--format"}, "runs against a sandbox of its own")
    formats = [Format(args.format)] if args.format else [Format.JSON, Format.XML]
    return asyncio.run(run_demo(formats, print))


def _sandbox(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    refuse_unused(parser, args, {"--token", "--format"}, "serves on --host and --port")
    try:
        return asyncio.run(serve_sandbox(args.host, args.port, args.token, args.format))
    except KeyboardInterrupt:  # the way to stop it
        print("sandbox stopped")
        return EXIT_OK
    except OSError as exc:  # the port is taken, the address is not this machine's...
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        if exc.errno == errno.EADDRINUSE:
            print("  another program listens there: pass --port 0 for any free port", file=sys.stderr)
        return EXIT_FAILED


# --- the commands that talk to the API ---------------------------------------------------------


async def _show_booking(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    booking = await aw.phonechat.made_booking_details(args.booking_id, as_user=args.as_user)
    print(to_json(booking) if args.json else booking_line(booking))
    return EXIT_OK


async def _list_bookings(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
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


async def _cancel(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    cancelled = await aw.phonechat.cancel_made_booking(
        args.booking_id, args.reason, check_preconditions=not args.no_check
    )
    print(to_json(cancelled) if args.json else f"cancelled {booking_line(cancelled)}")
    return EXIT_OK


async def _balance(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    credits = await aw.credit_history.get_current_credit_balance()
    print(to_json({"balance": credits}) if args.json else f"{money(credits)} credits")
    return EXIT_OK


async def _reschedule(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    if args.dry_run:
        return await dry_run(
            aw,
            ids,
            passed_since=args.passed_since,
            include_reschedules=args.include_reschedules,
            force=args.force,
            as_json=args.json,
        )
    found = []
    if args.passed_since is not None:
        found = [
            b
            async for b in aw.phonechat.passed_bookings(
                since=args.passed_since, include_reschedules=args.include_reschedules
            )
        ]
        if not ids and not found:
            print(
                "no booking whose session passed in that span is waiting to be rescheduled",
                file=sys.stderr if args.json else sys.stdout,  # stdout holds JSON lines only
            )
            return EXIT_OK
    return await reschedule(
        aw,
        [*ids, *found],
        concurrency=args.concurrency,
        check_preconditions=not args.no_check,
        force=args.force,
        as_json=args.json,
        rerun=Rerun.UNRECORDED if args.no_journal else Rerun.FORCED if args.force else Rerun.RECONCILES,
    )


async def _reconcile(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    return await reconcile(aw, ids, since=args.since, as_json=args.json)


async def _list_journal(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    state = AttemptState(args.state.replace("-", "_")) if args.state else None
    return await list_journal(aw, state=state, as_json=args.json)


async def _resolve(aw: AdultWorkClient, args: argparse.Namespace, ids: list[int]) -> int:
    return await resolve_in_journal(aw, args.booking_id, rescheduled_into=args.rescheduled_into)
