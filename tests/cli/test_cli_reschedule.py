"""``aw-async reschedule``, ``--dry-run``, ``reconcile`` and the journal commands, run in-process
against a sandbox on loopback."""

from __future__ import annotations

import io
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aw_async import AdultWorkClient
from aw_async.cli import _main
from aw_async.sandbox import make_booking

from .cli_support import Cli, ServedSandbox

_HOUR = timedelta(hours=1)


# --- rescheduling ----------------------------------------------------------------------------------


def test_reschedule_all_done_is_exit_0(cli: Cli, sandbox: ServedSandbox) -> None:
    ran = cli("reschedule", "101", "102", *sandbox.at())
    assert ran.code == 0
    assert ran.lines[-1] == "2 bookings: 2 rescheduled, 0 failed"
    assert sandbox.server.get_balance(1001) == Decimal("29.50")


def test_reschedule_some_failed_is_exit_1_and_json_says_why(cli: Cli, sandbox: ServedSandbox) -> None:
    demo = sandbox.demo
    order = [101, demo.upcoming, demo.expensive]
    # One at a time, in order: 101's credits are spent before 120's are checked.
    ran = cli("reschedule", *map(str, order), "--json", "--concurrency", "1", *sandbox.at())
    assert ran.code == 1
    outcomes = sorted(ran.objects(), key=lambda o: order.index(o["booking_id"]))
    assert [(o["booking_id"], o["ok"]) for o in outcomes] == [(101, True), (110, False), (120, False)]
    assert outcomes[0]["booking"]["status"] == "Pending"
    assert outcomes[1]["error"]["type"] == "SessionNotPassedError"
    assert outcomes[2]["error"] == {
        "type": "InsufficientCreditsError",
        "message": "booking 120 needs 75.00 credits but the balance available is 42.00",
        "required": "75.00",
        "balance": "42.00",
    }
    assert (
        ran.err.strip()
        == "3 bookings: 1 rescheduled, 2 failed (1 InsufficientCreditsError, 1 SessionNotPassedError)"
    )


def test_reschedule_from_a_file_and_from_stdin(
    cli: Cli, sandbox: ServedSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# bookings from last night\n101\n\n102  # the long one\n101\n")
    ran = cli("reschedule", "--from-file", str(ids), "103", *sandbox.at())
    assert ran.code == 0
    assert ran.lines[-1] == "3 bookings: 3 rescheduled, 0 failed"
    monkeypatch.setattr(sys, "stdin", io.StringIO("104\n105\n"))
    ran = cli("reschedule", "--from-file", "-", *sandbox.at())
    assert ran.lines[-1] == "2 bookings: 2 rescheduled, 0 failed"


def test_reschedule_without_checks_sends_posts_only(cli: Cli, sandbox: ServedSandbox) -> None:
    upcoming = str(sandbox.demo.upcoming)
    ran = cli("reschedule", "101", upcoming, "--no-check", "--concurrency", "1", *sandbox.at())
    assert ran.code == 1  # the server itself refuses the upcoming one
    assert {r.method for r in sandbox.server.requests} == {"POST"}


class Terminal(io.TextIOWrapper):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_progress_line_on_a_terminal(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = io.BytesIO()
    terminal = Terminal(shown, encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", terminal)
    ran = cli("reschedule", *map(str, sandbox.demo.passed), *sandbox.at())
    terminal.flush()
    assert ran.code == 0
    assert b"\r5/5 done, 0 failed" in shown.getvalue()


def test_a_rerun_with_the_same_journal_finds_everything_done_and_succeeds(
    cli: Cli, sandbox: ServedSandbox, tmp_path: Path
) -> None:
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    ids = ["101", "102"]
    assert cli("reschedule", *ids, *journal, *sandbox.at()).code == 0
    ran = cli("reschedule", *ids, *journal, *sandbox.at())
    assert ran.code == 0
    assert ran.lines[-1] == "2 bookings: 0 rescheduled, 2 already rescheduled, 0 failed"
    assert "101: already rescheduled into booking" in ran.out
    assert [sandbox.server.reschedule_count(int(i)) for i in ids] == [1, 1]
    assert (tmp_path / "journal.sqlite3").exists()


def test_a_journal_can_be_a_postgresql_url(cli: Cli, sandbox: ServedSandbox, postgres_dsn: str) -> None:
    journal = ["--journal", postgres_dsn]
    assert cli("reschedule", "101", *journal, *sandbox.at()).code == 0
    ran = cli("reschedule", "101", *journal, *sandbox.at())
    assert ran.lines[-1] == "1 booking: 0 rescheduled, 1 already rescheduled, 0 failed"
    listed = cli("journal", "list", "--json", "--base-url", sandbox.url, *journal).objects()
    assert [(e["booking_id"], e["state"]) for e in listed] == [(101, "rescheduled")]
    assert sandbox.server.reschedule_count(101) == 1


def test_a_journal_named_memory_is_a_file_like_any_other(
    cli: Cli, sandbox: ServedSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli("reschedule", "101", "--journal", "memory", *sandbox.at()).code == 0
    assert sandbox.server.reschedule_count(101) == 1
    assert (tmp_path / "memory").is_file()


def test_no_journal_says_it_drops_the_protection_and_does(cli: Cli, sandbox: ServedSandbox) -> None:
    help_text = " ".join(cli("reschedule", "--help").out.split())
    assert "--no-journal keep the journal in memory for this run only: this drops the protection" in help_text
    for _ in range(2):
        assert cli("reschedule", "101", "--no-journal", *sandbox.at()).code == 0
    assert sandbox.server.reschedule_count(101) == 2  # what the journal is there to prevent
    assert cli("reschedule", "102", *sandbox.at()).code == 0  # the default journal...
    assert cli("reschedule", "102", *sandbox.at()).code == 0
    assert sandbox.server.reschedule_count(102) == 1  # ...prevents it


def test_max_rate_paces_the_client(cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class Recorded(AdultWorkClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(_main, "AdultWorkClient", Recorded)
    assert cli("reschedule", "101", "--max-rate", "50", *sandbox.at()).code == 0
    assert cli("reschedule", "102", *sandbox.at()).code == 0
    assert [kwargs.get("max_rate") for kwargs in made] == [50.0, None]


# --- --dry-run -------------------------------------------------------------------------------------


def test_a_dry_run_with_ids_says_what_would_happen_to_each_and_sends_nothing(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    assert cli("reschedule", "101", *sandbox.at()).code == 0
    posts = sandbox.paths().count("RescheduleMadeBooking")
    ran = cli("reschedule", "--dry-run", "101", "102", "110", "120", "999", "103", *sandbox.at())
    assert ran.code == 0, ran.err
    assert ran.lines[0].startswith("would not reschedule 101: already rescheduled into booking 202")
    assert ran.lines[1].startswith("would reschedule booking 102: Confirmed, 15 min for 12.50 credits")
    assert ran.lines[2].startswith("would not reschedule 110: booking 110 cannot be rescheduled yet")
    assert ran.lines[2].endswith("(SessionNotPassedError)")
    assert ran.lines[3].startswith("would reschedule booking 120: Confirmed, 15 min for 75.00 credits")
    assert ran.lines[3].endswith("(the balance would not cover it)")
    assert ran.lines[4].startswith("would not reschedule 999: 404")
    assert ran.lines[5].startswith("would reschedule booking 103:")
    assert ran.lines[6] == (
        "2 bookings would spend 17.50 of the 42.00 credits; the balance would not cover 1 booking: 120; "
        "3 bookings would not be rescheduled. No reschedule was sent."
    )
    assert sandbox.paths().count("RescheduleMadeBooking") == posts
    assert sandbox.server.get_balance(1001) == Decimal("42.00")


def test_a_dry_run_with_force_counts_what_the_journal_says_is_done(cli: Cli, sandbox: ServedSandbox) -> None:
    assert cli("reschedule", "101", *sandbox.at()).code == 0
    ran = cli("reschedule", "--dry-run", "--force", "101", *sandbox.at())
    assert ran.lines[0].startswith("would reschedule booking 101:")


def test_a_dry_run_with_passed_since_and_ids_takes_each_booking_once(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    ran = cli("reschedule", "--dry-run", "--passed-since", "24h", "101", "110", "--json", *sandbox.at())
    assert ran.code == 0, ran.err
    lines = {line["booking_id"]: line for line in ran.objects()}
    assert sorted(lines) == [101, 102, 103, 104, 105, 110, 120]
    assert lines[120]["covered"] is False
    assert lines[120]["error"]["type"] == "InsufficientCreditsError"
    assert lines[101] == {
        "booking_id": 101,
        "would_reschedule": True,
        "credits": "8.00",
        "covered": True,
        "error": None,
    }
    assert lines[110]["would_reschedule"] is False
    assert lines[110]["error"]["type"] == "SessionNotPassedError"
    assert "the balance would not cover 1 booking: 120" in ran.err
    assert "RescheduleMadeBooking" not in sandbox.paths()


def test_passed_since_skips_reschedules_unless_asked_for_them(cli: Cli, sandbox: ServedSandbox) -> None:
    for booking_id, hours in ((500, 30), (501, 26)):  # 501 was made as 500's reschedule
        booking = make_booking(booking_id, credits="1", session_date=-hours * _HOUR)
        sandbox.server.add_booking(booking, client_user_id=sandbox.demo.user_id)
    ran = cli("journal", "resolve", "500", "--rescheduled-into", "501", "--base-url", sandbox.url)
    assert ran.code == 0, ran.err

    def offered(*more: str) -> list[int]:
        ran = cli("reschedule", "--dry-run", "--passed-since", "2d", "--json", *more, *sandbox.at())
        return sorted(line["booking_id"] for line in ran.objects())

    assert offered() == [101, 102, 103, 104, 105, 120]
    assert offered("--include-reschedules") == [101, 102, 103, 104, 105, 120, 501]
    ran = cli("reschedule", "--passed-since", "2d", "--include-reschedules", "--json", *sandbox.at())
    assert 501 in {line["booking_id"] for line in ran.objects() if line["ok"]}
    assert sandbox.server.reschedule_count(500) == 0


def test_passed_since_that_finds_nothing_says_so_and_keeps_json_output_clean(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    nothing = "no booking whose session passed in that span is waiting to be rescheduled\n"
    assert cli("reschedule", "--passed-since", "1m", *sandbox.at()) == (0, nothing, "")
    assert cli("reschedule", "--passed-since", "1m", "--json", *sandbox.at()) == (0, "", nothing)


ADVICE = {
    (): "1 may have gone through: running this again is safe (it reconciles them first), or ask now: "
    "aw-async reconcile 101",
    # Forced, a re-run reconciles first too, then sends again even if the first went through.
    ("--force",): "1 may have gone through: running this again without --force is safe (it reconciles "
    "them first); with --force it reconciles them too, then sends them again even if they went "
    "through; or ask now: aw-async reconcile 101",
}


@pytest.mark.parametrize("first_run", list(ADVICE), ids=["plain", "forced"])
def test_a_lost_answer_is_reconciled_by_running_the_same_command_again(
    cli: Cli, sandbox: ServedSandbox, first_run: tuple[str, ...]
) -> None:
    # What the summary promises: the re-run (without --force) sends nothing until it knows, then
    # says what happened; and it is said in the command line's words, never the library's.
    sandbox.server.faults.add("reset", method="POST", when="after")  # processed, the answer lost
    lost = cli("reschedule", "101", *first_run, *sandbox.at())
    assert lost.code == 1
    assert lost.lines[-1].endswith(ADVICE[first_run])
    assert "force=True" not in lost.out + lost.err
    sandbox.server.faults.clear()
    again = cli("reschedule", "101", "--json", *sandbox.at())
    assert again.code == 0
    (outcome,) = again.objects()
    (new,) = sandbox.server.rescheduled(101)  # the booking the lost answer would have named
    assert (outcome["rescheduled"], outcome["new_booking_id"]) == (True, new)  # learnt, not sent again
    assert sandbox.server.reschedule_count(101) == 1


def test_with_no_journal_a_lost_answer_is_not_promised_a_reconciling_re_run(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    sandbox.server.faults.add("reset", method="POST", when="after")
    ran = cli("reschedule", "101", "--no-journal", *sandbox.at())
    assert ran.code == 1
    assert ran.lines[-1].endswith(
        "1 may have gone through, and no journal kept a record of it: check your bookings before "
        "trying again: 101"
    )
    # Nor the booking's own line, nor the JSON a program reads (no retry_after to wait for either).
    assert "running this again would send it again" in ran.lines[0]
    assert "safe" not in ran.out
    sandbox.server.faults.add("reset", method="POST", when="after")
    as_json = cli("reschedule", "102", "--no-journal", "--json", *sandbox.at())
    (outcome,) = as_json.objects()
    assert outcome["may_have_happened"] is True
    assert "running this again would send it again" in outcome["error"]["message"]
    assert outcome["error"]["retry_after"] is None


# --- the journal -----------------------------------------------------------------------------------


def test_journal_list_and_resolve_decide_an_outcome_nothing_else_can(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    url = ["--base-url", sandbox.url]  # the journal commands need no token: they send nothing
    sandbox.server.faults.add("reset", method="POST", when="after")  # processed, the answer lost
    ran = cli("reschedule", "101", "102", "--concurrency", "1", *sandbox.at())
    assert ran.code == 1
    assert ran.lines[-1].endswith(  # the advice the error gives and the README repeats
        "1 may have gone through: running this again is safe (it reconciles them first), "
        "or ask now: aw-async reconcile 101"
    )
    (unknown,) = cli("journal", "list", "--state", "unknown", "--json", *url).objects()
    assert set(unknown) == {
        "booking_id",
        "state",
        "attempt",
        "started_at",
        "updated_at",
        "new_booking_id",
        "decided_by",
        "owner",
        "retry_after",
        "readable",
    }
    assert (unknown["booking_id"], unknown["state"], unknown["attempt"]) == (101, "unknown", 1)
    listed = cli("journal", "list", *url)
    assert listed.lines[0].startswith("101: UNKNOWN: a reconciliation can tell in")
    assert listed.lines[1].startswith("102: rescheduled into ")
    assert listed.lines[2].startswith("2 entries for ")
    (new_id,) = sandbox.server.rescheduled(101)

    assert cli("journal", "resolve", "101", "--rescheduled-into", str(new_id), *url) == (
        0,
        f"101: recorded as rescheduled into {new_id}\n",
        "",
    )
    assert [
        e["booking_id"] for e in cli("journal", "list", "--state", "rescheduled", "--json", *url).objects()
    ] == [
        101,
        102,
    ]
    assert (
        cli("journal", "list", "--state", "in-flight", *url)
        .lines[0]
        .startswith(f"0 entries for {sandbox.url}")
    )
    ran = cli("reschedule", "101", *sandbox.at())
    assert ran.code == 0
    assert ran.lines[0] == f"101: already rescheduled into booking {new_id}; nothing sent"
    assert sandbox.server.reschedule_count(101) == 1


def test_resolving_as_not_rescheduled_lets_the_next_run_send(cli: Cli, sandbox: ServedSandbox) -> None:
    url = ["--base-url", sandbox.url]
    sandbox.server.faults.add("reset", method="POST", when="before")  # lost before it was processed
    assert cli("reschedule", "103", *sandbox.at()).code == 1
    assert cli("reschedule", "103", *sandbox.at()).code == 1  # unknown, and too soon to tell
    assert (
        cli("journal", "resolve", "103", "--not-rescheduled", *url).out
        == "103: recorded as not rescheduled\n"
    )
    (entry,) = cli("journal", "list", "--state", "refused", "--json", *url).objects()
    assert (entry["booking_id"], entry["decided_by"]) == (103, "user")
    assert cli("journal", "list", *url).lines[-1].startswith("1 entry for ")
    assert cli("reschedule", "103", *sandbox.at()).code == 0
    assert sandbox.server.reschedule_count(103) == 1


def test_reconcile_without_an_attempt_asks_for_since(cli: Cli, sandbox: ServedSandbox) -> None:
    ran = cli("reconcile", "104", *sandbox.at())
    assert ran.code == 1
    assert (
        ran.out
        == "104: UNRESOLVED: --since: the journal has no attempt of booking 104: say when it was made\n"
    )
    ran = cli("reconcile", "104", "--since", "2026-01-01T00:00", *sandbox.at())
    assert (ran.code, ran.out) == (0, "104: not rescheduled\n")
