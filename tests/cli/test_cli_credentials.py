"""The command line's credentials (an access token, or refresh credentials whose rotated refresh token
is kept on disk), and a batch that cannot go on: run in-process against a sandbox on loopback."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from aw_async.models import MadeBooking

from .cli_support import Cli, ServedSandbox

CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH = "my-bot", "bot-secret-value", "first-refresh-token"


def refresh_token(served: ServedSandbox) -> None:
    served.server.add_refresh_token(
        FIRST_REFRESH, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user_id=served.demo.user_id
    )


pytestmark = pytest.mark.sandbox(seed=refresh_token)


@pytest.fixture
def saved(state_home: Path) -> Path:
    """The credentials file (it need not exist)."""
    return state_home / "aw-async" / "credentials"


def refresh_credentials(
    monkeypatch: pytest.MonkeyPatch, sandbox: ServedSandbox, token: str = FIRST_REFRESH
) -> None:
    monkeypatch.setenv("AW_REFRESH_TOKEN", token)
    monkeypatch.setenv("AW_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AW_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("AW_TOKEN_URL", sandbox.server.token_url)


def read_saved(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def the_only_live_refresh_token(sandbox: ServedSandbox) -> str:
    (live,) = sandbox.live_refresh_tokens()
    return live


def expire_the_token_after_the_first_reschedule(sandbox: ServedSandbox) -> None:
    done: list[MadeBooking] = []

    def expire(new: MadeBooking) -> None:
        if not done:
            sandbox.expire_every_access_token()
        done.append(new)

    sandbox.after_each_reschedule(expire)


BATCH = ("101", "102", "103", "104", "105")


# --- a batch that cannot go on -----------------------------------------------------------------------


def test_a_batch_whose_static_token_expires_midway_stops_and_says_why_once(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    expire_the_token_after_the_first_reschedule(sandbox)
    ran = cli("reschedule", *BATCH, "--concurrency", "1", *sandbox.at())
    assert ran.code == 1
    assert ran.lines[0].startswith("101: rescheduled as booking ")
    assert ran.lines[1].startswith("102: FAILED: 401: Authorization has been denied for this request.")
    assert len(ran.lines) == 3  # nothing about 103, 104 and 105 but the count
    summary = ran.lines[2]
    assert summary.startswith(
        "2 bookings: 1 rescheduled, 1 failed (1 AuthenticationError); 3 bookings not started: 401:"
    )
    assert summary.count("not started") == 1
    assert sandbox.paths().count("RescheduleMadeBooking") == 1
    assert [sandbox.server.reschedule_count(int(n)) for n in BATCH] == [1, 0, 0, 0, 0]


def test_with_json_each_booking_not_started_has_its_object_and_its_cause(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    expire_the_token_after_the_first_reschedule(sandbox)
    ran = cli("reschedule", *BATCH, "--concurrency", "1", "--json", *sandbox.at())
    assert ran.code == 1
    outcomes = {o["booking_id"]: o for o in ran.objects()}
    assert sorted(outcomes) == [101, 102, 103, 104, 105]
    for booking_id in (103, 104, 105):
        outcome = outcomes[booking_id]
        assert (outcome["ok"], outcome["rescheduled"], outcome["stage"]) == (False, False, "not_started")
        assert outcome["error"]["type"] == "NotStartedError"
        assert outcome["error"]["stopped_by"]["type"] == "AuthenticationError"
    assert ran.err.count("not started") == 1


def test_with_refresh_credentials_the_same_batch_completes_and_the_rotated_token_is_on_disk(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    expire_the_token_after_the_first_reschedule(sandbox)
    ran = cli("reschedule", *BATCH, "--concurrency", "1", "--base-url", sandbox.url)
    assert ran.code == 0, ran.err
    assert ran.lines[-1] == "5 bookings: 5 rescheduled, 0 failed"
    assert sandbox.paths().count("token") == 2  # before the first request, and after the 401
    assert read_saved(saved)["AW_REFRESH_TOKEN"] == the_only_live_refresh_token(sandbox)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert os.listdir(saved.parent) == [
        "credentials",
        *sorted(n for n in os.listdir(saved.parent) if n.startswith("journal")),
    ]
    assert CLIENT_SECRET not in saved.read_text()  # it came from the environment: it stays there


def test_a_rotated_refresh_token_is_on_disk_before_its_access_token_is_used(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    issued: dict[str, str] = {}  # access token: the refresh token issued with it
    seen: list[tuple[str, str | None]] = []  # (refresh token issued with the access token used, on disk)
    state = sandbox.server.state
    refresh, grant_for = state.refresh, state.grant_for

    def refreshing(form: dict[str, str]) -> dict[str, Any]:
        document = refresh(form)
        issued[str(document["access_token"])] = str(document["refresh_token"])
        return document

    def granting(token: str) -> Any:
        if token in issued:
            seen.append(
                (issued[token], read_saved(saved).get("AW_REFRESH_TOKEN") if saved.exists() else None)
            )
        return grant_for(token)

    state.refresh = refreshing  # type: ignore[method-assign]
    state.grant_for = granting  # type: ignore[method-assign]
    refresh_credentials(monkeypatch, sandbox)
    expire_the_token_after_the_first_reschedule(sandbox)
    assert cli("reschedule", *BATCH, "--concurrency", "1", "--base-url", sandbox.url).code == 0
    assert len({used for used, _ in seen}) == 2
    assert all(used == on_disk for used, on_disk in seen)


def test_the_balance_that_cannot_be_read_stops_the_batch_before_any_post(
    cli: Cli, sandbox: ServedSandbox
) -> None:
    sandbox.server.faults.add(
        "server_error", path="GetCurrentCreditBalance", status=503, retry_after="0", times=3
    )
    ran = cli("reschedule", *BATCH, *sandbox.at())
    assert ran.code == 1
    assert ran.out == (
        "5 bookings not started: the balance could not be read: 503: 503 Service Unavailable "
        f"(GET {sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance) (ServerError)\n"
    )
    assert sandbox.paths() == ["GetCurrentCreditBalance"] * 3  # the first try and its two retries
    assert sandbox.server.get_balance(sandbox.demo.user_id) == sandbox.demo.balance


def test_a_token_refused_from_the_start_is_one_line(cli: Cli, sandbox: ServedSandbox) -> None:
    ran = cli("reschedule", *BATCH, *sandbox.at(token="not-a-token"))
    assert ran.code == 1
    assert ran.out.startswith("5 bookings not started: the balance could not be read: 401:")
    assert len(ran.lines) == 1


# --- where the token comes from ----------------------------------------------------------------------


def test_each_run_uses_the_refresh_token_the_last_one_saved(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)  # and left in the environment, as a user would
    for _ in range(3):
        assert cli("balance", "--base-url", sandbox.url) == (0, "50.00 credits\n", "")
        assert read_saved(saved)["AW_REFRESH_TOKEN"] == the_only_live_refresh_token(sandbox)
    assert FIRST_REFRESH not in sandbox.live_refresh_tokens()


def test_a_new_refresh_token_in_the_environment_wins_over_the_saved_one(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    assert cli("balance", "--base-url", sandbox.url).code == 0
    sandbox.server.add_refresh_token(
        "logged-in-again", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user_id=sandbox.demo.user_id
    )
    monkeypatch.setenv("AW_REFRESH_TOKEN", "logged-in-again")
    assert cli("balance", "--base-url", sandbox.url).code == 0
    assert "logged-in-again" not in sandbox.live_refresh_tokens()  # it was the one used (and spent)
    assert read_saved(saved)["AW_REFRESH_TOKEN"] in sandbox.live_refresh_tokens()


def test_credentials_can_come_from_the_file_alone(cli: Cli, sandbox: ServedSandbox, saved: Path) -> None:
    saved.parent.mkdir(parents=True)
    saved.write_text(
        f"# written by hand\nAW_REFRESH_TOKEN={FIRST_REFRESH}\nAW_CLIENT_ID={CLIENT_ID}\n"
        f"AW_CLIENT_SECRET={CLIENT_SECRET}\nAW_TOKEN_URL={sandbox.server.token_url}\n"
    )
    saved.chmod(0o600)
    assert cli("balance", "--base-url", sandbox.url) == (0, "50.00 credits\n", "")
    kept = read_saved(saved)
    assert kept["AW_REFRESH_TOKEN"] == the_only_live_refresh_token(sandbox)
    assert (kept["AW_CLIENT_ID"], kept["AW_CLIENT_SECRET"]) == (CLIENT_ID, CLIENT_SECRET)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_a_credentials_file_open_to_others_is_refused(cli: Cli, sandbox: ServedSandbox, saved: Path) -> None:
    saved.parent.mkdir(parents=True)
    saved.write_text(
        f"AW_REFRESH_TOKEN={FIRST_REFRESH}\nAW_CLIENT_ID={CLIENT_ID}\nAW_CLIENT_SECRET={CLIENT_SECRET}\n"
    )
    saved.chmod(0o644)
    ran = cli("balance", "--base-url", sandbox.url)
    assert ran.code == 2
    assert f"is open to others (mode 0644): chmod 600 {saved}" in ran.err
    assert FIRST_REFRESH not in ran.err
    assert sandbox.server.requests == []


def test_an_access_token_wins_over_refresh_credentials(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    assert cli("balance", *sandbox.at()).code == 0
    monkeypatch.setenv("AW_ACCESS_TOKEN", sandbox.demo.token)
    assert cli("balance", "--base-url", sandbox.url).code == 0
    assert "token" not in sandbox.paths()
    assert not saved.exists()


def test_a_refused_refresh_token_fails_the_command_and_names_no_secret(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.server.revoke_token(FIRST_REFRESH)
    refresh_credentials(monkeypatch, sandbox)
    ran = cli("reschedule", "101", "--base-url", sandbox.url)
    assert ran.code == 1
    assert "refresh_token_has_expired" in ran.out
    assert "AuthenticationError" in ran.out
    for secret in (FIRST_REFRESH, CLIENT_SECRET):
        assert secret not in ran.out + ran.err


def test_a_temporary_file_a_crash_left_open_to_others_does_not_make_the_saved_one_so(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    left_behind = saved.parent / f".credentials.{os.getpid()}.new"  # a crashed run with this pid
    left_behind.parent.mkdir(parents=True)
    left_behind.write_text("AW_REFRESH_TOKEN=from-a-run-that-crashed\n")
    left_behind.chmod(0o644)
    assert cli("balance", "--base-url", sandbox.url).code == 0
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert not left_behind.exists()
    assert cli("balance", "--base-url", sandbox.url).code == 0  # the next run may read it


def test_credentials_that_cannot_be_saved_fail_the_command_in_its_own_words(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch, saved: Path
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    # Where the new file is written before it replaces the old one (this process's, as the command
    # runs in it): a folder there makes the write fail, whoever runs the tests (even root).
    (saved.parent / f".credentials.{os.getpid()}.new").mkdir(parents=True)
    ran = cli("balance", "--base-url", sandbox.url)
    assert ran.code == 1
    assert ran.err.startswith(
        f"error: the refreshed credentials could not be saved (the credentials file {saved} could not be "
        "written: Is a directory); the refresh token they replace no longer works"
    )
    assert ran.err.rstrip().endswith("log in again and set AW_REFRESH_TOKEN (TokenNotSavedError)")
    assert "on_refresh" not in ran.err
    for secret in (FIRST_REFRESH, CLIENT_SECRET, *sandbox.live_refresh_tokens()):
        assert secret not in ran.out + ran.err
    assert "GetCurrentCreditBalance" not in sandbox.paths()  # the new access token was never used


def test_a_plain_http_token_endpoint_elsewhere_is_refused_by_its_name(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh_credentials(monkeypatch, sandbox)
    monkeypatch.setenv("AW_TOKEN_URL", "http://auth.example.com/OAuth/token")
    ran = cli("balance", "--base-url", sandbox.url)
    assert ran.code == 2
    assert ran.err.startswith("error: AW_TOKEN_URL 'http://auth.example.com/OAuth/token' is plain http")
    assert "--allow-insecure-http" in ran.err
    assert sandbox.server.requests == []
