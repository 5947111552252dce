"""The command line's arguments: their types (ids, spans, times, files of ids), each refused with a
message that says what was expected (argparse turns it into a usage error, exit 2), and the rules
between options that argparse cannot say."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ..journal._open import is_database_url
from ..phonechat._prerequisites import MAX_ID
from ._format import plural

__all__ = [
    "booking_id",
    "check_reschedule",
    "id_problem",
    "journal_of",
    "moment",
    "parse_span",
    "read_ids",
    "refuse_unused",
    "seconds",
    "since",
    "span",
]


def id_problem(text: str) -> str | None:
    """Why ``text`` is not an id, or None. ASCII digits only: ``int()`` would also take
    ``０``-style digits, ``1_000`` and spaces."""
    if not (text.isascii() and text.isdigit()):
        return f"{text!r} is not a booking id (ASCII digits only)"
    if len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        return f"{text!r} is not a booking id (1 to {MAX_ID})"
    return None


def booking_id(text: str) -> int:
    """An id argument (a booking's, a user's)."""
    problem = id_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return int(text)


def span(text: str) -> timedelta:
    """``--passed-since``: a span of time."""
    try:
        return parse_span(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span like 24h, 7d or 90m") from None


def seconds(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def moment(text: str) -> datetime:
    """``--since`` of ``reconcile``: a time (naive: the server's local time)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2026-11-30T09:15") from None


def since(text: str) -> date:
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


def read_ids(path: Path, parser: argparse.ArgumentParser) -> list[int]:
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
        problem = id_problem(line)
        if problem is None:
            ids.append(int(line))
        else:
            problems.append(f"  line {number}: {problem}")
    if problems:
        shown = problems[:20] + ([f"  ... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        parser.error(f"--from-file {path}: {plural(len(problems), 'bad line')}:\n" + "\n".join(shown))
    return ids


# --- rules between options ---------------------------------------------------------------------


def check_reschedule(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The rules of ``reschedule``'s options that argparse cannot say."""
    if not args.booking_ids and not args.from_file and args.passed_since is None:
        parser.error("reschedule needs booking ids (arguments, --from-file or --passed-since)")
    if args.include_reschedules and args.passed_since is None:
        parser.error("--include-reschedules goes with --passed-since")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.max_rate is not None and not (math.isfinite(args.max_rate) and args.max_rate > 0):
        parser.error("--max-rate must be a positive number of requests a second")


def refuse_unused(
    parser: argparse.ArgumentParser, args: argparse.Namespace, used: set[str], because: str
) -> None:
    """A usage error for an option this command would ignore: a user who passes ``--token`` to a
    command that cannot use it should learn so, not believe it was used."""
    given = {
        "--format": args.format,
        "--base-url": args.base_url,
        "--token": args.token,
        "--timeout": args.timeout,
        "--allow-insecure-http": args.allow_insecure_http,
    }
    ignored = [name for name, value in given.items() if value not in (None, False) and name not in used]
    if ignored:
        command = " ".join(filter(None, (args.command, getattr(args, "journal_command", None))))
        parser.error(f"{command} {because}: {' and '.join(ignored)} would be ignored")


def journal_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | Path | None:
    """What ``--journal`` or ``--no-journal`` ask for, as the client takes it (None: the default).

    A value given is a file, or a database URL: never the library's ``"memory"`` (a file of that
    name is what a user who types it means; ``--no-journal`` is the way to say the other, with its
    warning), nor a URL of another kind taken for a file name."""
    if getattr(args, "no_journal", False):
        return "memory"
    text: str | None = args.journal
    if text is None or is_database_url(text):
        return text
    if not text.strip() or "://" in text:
        parser.error(f"--journal {text!r}: a file, or a postgresql:// URL")
    return Path(text)
