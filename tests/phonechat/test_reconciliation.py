"""The reconciliation's rules as a pure function (docs/api.md, "Reconciling an unknown outcome"):
windows under every admissible zone offset, daylight saving read both ways, the session's distance
from the creation, twins weighed together, and "did not happen" only with proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aw_async.journal import AttemptState, JournalEntry, Key, Terms
from aw_async.journal._reconciliation import (
    ANY_OFFSET,
    DidNotHappen,
    Happened,
    InFlight,
    Undecided,
    admissible_offsets,
    created_within,
    looks_rescheduled,
    reconcile,
    window,
)
from aw_async.models import BookingStatus, CallMethod, MadeBooking, PhoneChatBookingUser

ROOT = "https://api.example"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SETTLE = 120.0


def booking(
    booking_id: int, created: datetime, *, session_after: timedelta = timedelta(minutes=7), **terms: Any
) -> MadeBooking:
    """A booking with the default terms unless told, created at ``created`` (naive: server time)."""
    fields = {"user_id": 500, "duration": 15, "credits": "8.00", "comments": "weekly", **terms}
    return MadeBooking(
        booking_id=booking_id,
        duration=fields["duration"],
        credits=Decimal(fields["credits"]),
        status=BookingStatus.PENDING,
        method=CallMethod.CLIENT_CALLS,
        comments=fields["comments"],
        create_date=created,
        session_date=created + session_after,
        candidate=PhoneChatBookingUser(
            user_id=fields["user_id"],
            nickname="P",
            total=0,
            positive=0,
            neutral=0,
            negative=0,
            ratings=0,
            disputes=0,
        ),
    )


TERMS = Terms.of(booking(1, T0))


def attempt(
    booking_id: int,
    started: datetime = T0,
    *,
    age: float = 1000.0,
    settle: float = SETTLE,
    terms: Terms | None = TERMS,
    alive: bool | None = None,
    server_started: datetime | None = None,
) -> JournalEntry:
    """An unknown attempt (in flight with a live owner when ``alive``)."""
    return JournalEntry(
        api_root=ROOT,
        booking_id=booking_id,
        state=AttemptState.IN_FLIGHT if alive is not None else AttemptState.UNKNOWN,
        attempt=1,
        started_at=started,
        updated_at=started,
        settle_seconds=settle,
        age=age,
        owner="x" if alive is not None else None,
        owner_alive=alive,
        server_started_at=server_started,
        terms=terms,
    )


def key(booking_id: int) -> Key:
    return Key(ROOT, booking_id)


def utc_naive(moment: datetime, offset_minutes: int = 0) -> datetime:
    """``moment`` as a server with that offset writes it: naive, local."""
    return (moment + timedelta(minutes=offset_minutes)).replace(tzinfo=None)


LEARNED_LONDON_WINTER = admissible_offsets(0)


# --- one attempt ---------------------------------------------------------------------------------


def test_a_single_match_inside_the_window_is_the_reschedule() -> None:
    new = booking(20, utc_naive(T0 + timedelta(seconds=3)))
    verdicts = reconcile([attempt(10)], [new], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): Happened(new)}


def test_nothing_in_a_complete_listing_after_the_settle_window_is_proof() -> None:
    verdicts = reconcile([attempt(10)], [], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): DidNotHappen()}


def test_nothing_before_the_settle_window_proves_nothing_and_says_when_to_look_again() -> None:
    verdicts = reconcile([attempt(10, age=30.0)], [], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): Undecided((), 90.0)}  # a POST whose answer was lost may land late


def test_an_incomplete_listing_proves_nothing() -> None:
    verdicts = reconcile([attempt(10)], [], complete=False, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): Undecided((), None)}


def test_two_matches_for_one_attempt_are_named_not_guessed() -> None:
    first = booking(20, utc_naive(T0 + timedelta(seconds=3)))
    second = booking(21, utc_naive(T0 + timedelta(seconds=9)))
    verdicts = reconcile([attempt(10)], [first, second], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): Undecided((20, 21), None)}


def test_a_later_booking_with_the_same_terms_is_not_the_reschedule() -> None:
    # Finding 8: the user booked the same performer, same terms, for tomorrow. It is neither inside
    # the window nor shaped like a reschedule (its session is a day after its creation).
    tomorrow = booking(30, utc_naive(T0 + timedelta(hours=2)), session_after=timedelta(days=1))
    hours_later = booking(31, utc_naive(T0 + timedelta(hours=2)))
    for listing in ([tomorrow], [hours_later]):
        assert reconcile([attempt(10)], listing, complete=True, offsets=LEARNED_LONDON_WINTER) == {
            key(10): DidNotHappen()
        }


def test_a_booking_made_before_the_attempt_is_not_its_reschedule() -> None:
    earlier = booking(9, utc_naive(T0 - timedelta(hours=3)))  # the learned offset allows an hour either way
    assert reconcile([attempt(10)], [earlier], complete=True, offsets=LEARNED_LONDON_WINTER) == {
        key(10): DidNotHappen()
    }


def test_a_booking_another_attempt_recorded_as_its_reschedule_is_not_a_candidate() -> None:
    new = booking(20, utc_naive(T0 + timedelta(seconds=3)))
    verdicts = reconcile(
        [attempt(10)], [new], complete=True, offsets=LEARNED_LONDON_WINTER, recorded=frozenset({20})
    )
    assert verdicts == {key(10): DidNotHappen()}


def test_other_terms_are_not_a_match() -> None:
    for other in ({"credits": "9.00"}, {"user_id": 501}, {"duration": 20}, {"comments": "other"}):
        new = booking(20, utc_naive(T0 + timedelta(seconds=3)), **other)
        assert reconcile([attempt(10)], [new], complete=True, offsets=LEARNED_LONDON_WINTER) == {
            key(10): DidNotHappen()
        }


def test_the_same_price_written_differently_is_the_same_terms() -> None:
    new = booking(20, utc_naive(T0 + timedelta(seconds=3)), credits="8")
    assert reconcile([attempt(10)], [new], complete=True, offsets=LEARNED_LONDON_WINTER) == {
        key(10): Happened(new)
    }


def test_an_owner_alive_with_its_attempt_in_flight_is_left_to_its_owner() -> None:
    verdicts = reconcile([attempt(10, alive=True)], [], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(10): InFlight(T0)}


# --- clocks and zones ----------------------------------------------------------------------------


def test_until_the_offset_is_learned_any_offset_from_minus_14_to_plus_14_hours_counts() -> None:
    # Finding 7: the server runs on UTC while the client thinks London (or any zone at all).
    for offset in (-14 * 60, -5 * 60, 0, 60, 13 * 60 + 45, 14 * 60):
        new = booking(20, utc_naive(T0 + timedelta(seconds=3), offset))
        assert reconcile([attempt(10)], [new], complete=True, offsets=ANY_OFFSET) == {key(10): Happened(new)}


def test_a_learned_offset_allows_an_hour_either_way() -> None:
    offsets = admissible_offsets(60)
    for offset, found in ((0, True), (60, True), (120, True), (180, False), (-60, False)):
        new = booking(20, utc_naive(T0 + timedelta(seconds=3), offset))
        assert created_within(new, window(attempt(10)), offsets) is found, offset


def test_a_naive_time_in_the_repeated_hour_counts_under_either_reading() -> None:
    # Finding 6: London, 2026-10-25: 01:00-02:00 local happens twice (BST, then GMT). An attempt at
    # 01:20 UTC (the second 01:20 local... and the first was 00:20 UTC): its reschedule's naive
    # CreateDate 01:21 read as the earlier instant (00:21 UTC) is before the attempt.
    started = datetime(2026, 10, 25, 1, 20, tzinfo=UTC)
    new = booking(20, datetime(2026, 10, 25, 1, 21))  # local GMT = UTC here: the later reading
    entry = attempt(10, started)
    for offsets in (ANY_OFFSET, admissible_offsets(60), admissible_offsets(0)):
        assert reconcile([entry], [new], complete=True, offsets=offsets) == {key(10): Happened(new)}


def test_the_session_gap_may_straddle_a_daylight_saving_change() -> None:
    created = datetime(2026, 10, 25, 1, 58)
    assert looks_rescheduled(booking(20, created, session_after=timedelta(minutes=7)))
    assert looks_rescheduled(booking(20, created, session_after=timedelta(minutes=7) - timedelta(hours=1)))
    assert not looks_rescheduled(booking(20, created, session_after=timedelta(minutes=40)))
    assert not looks_rescheduled(booking(20, created, session_after=timedelta(days=1)))


def test_a_host_clock_that_was_wrong_at_the_claim_is_covered_by_the_servers_clock() -> None:
    # The host's clock was an hour behind when it claimed; the server's Date was right.
    entry = attempt(10, T0 - timedelta(hours=1), server_started=T0)
    new = booking(20, utc_naive(T0 + timedelta(seconds=3)))
    assert reconcile([entry], [new], complete=True, offsets=LEARNED_LONDON_WINTER) == {key(10): Happened(new)}


def test_an_aware_create_date_is_an_exact_instant() -> None:
    inside = attrs.evolve(booking(20, T0 + timedelta(seconds=3)), session_date=T0 + timedelta(minutes=8))
    outside = attrs.evolve(inside, booking_id=21, create_date=T0 - timedelta(hours=3), session_date=T0)
    assert created_within(inside, window(attempt(10)), ANY_OFFSET)
    assert not created_within(outside, window(attempt(10)), ANY_OFFSET)


# --- twins ---------------------------------------------------------------------------------------


def test_as_many_candidates_as_twin_attempts_means_each_was_rescheduled_in_time_order() -> None:
    # Finding 5: sixteen weekly bookings with one performer, every answer lost, every POST processed.
    attempts = [attempt(100 + n, T0 + timedelta(seconds=n)) for n in range(16)]
    made = [booking(200 + n, utc_naive(T0 + timedelta(seconds=n, milliseconds=500))) for n in range(16)]
    verdicts = reconcile(attempts, list(reversed(made)), complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(100 + n): Happened(made[n]) for n in range(16)}


def test_fewer_candidates_than_twins_with_overlapping_windows_is_undecided_for_the_user() -> None:
    attempts = [attempt(100 + n, T0 + timedelta(seconds=n)) for n in range(3)]
    made = [booking(200, utc_naive(T0 + timedelta(seconds=1)))]
    verdicts = reconcile(attempts, made, complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(100 + n): Undecided((200,), None) for n in range(3)}


def test_twins_whose_windows_do_not_overlap_are_told_apart() -> None:
    # The first attempt's POST was processed; the second, a day later, was not: not "into 200".
    first, second = attempt(100, T0), attempt(101, T0 + timedelta(days=1))
    made = booking(200, utc_naive(T0 + timedelta(seconds=2)))
    verdicts = reconcile([first, second], [made], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(100): Happened(made), key(101): DidNotHappen()}


def test_a_forced_pairing_is_proven_even_among_twins() -> None:
    # 100's window holds 200 and 201; 101's holds only 201: the only matching is 101-201, 100-200.
    first = attempt(100, T0)
    second = attempt(101, T0 + timedelta(minutes=30))
    early = booking(200, utc_naive(T0 + timedelta(seconds=2)))
    shared = booking(201, utc_naive(T0 + timedelta(minutes=31)))
    entries = [attrs.evolve(first, settle_seconds=3600.0), second]
    verdicts = reconcile(entries, [early, shared], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(100): Happened(early), key(101): Happened(shared)}


def test_a_twin_in_flight_elsewhere_keeps_a_shared_candidate_undecided_until_it_lands() -> None:
    mine, theirs = attempt(100), attempt(101, alive=True)
    made = booking(200, utc_naive(T0 + timedelta(seconds=2)))
    verdicts = reconcile([mine, theirs], [made], complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts[key(101)] == InFlight(T0)
    assert isinstance(verdicts[key(100)], Undecided)
    assert verdicts[key(100)].retry_after is not None  # type: ignore[union-attr]  # waiting will tell


def test_more_candidates_than_attempts_concludes_nothing_but_empty_windows() -> None:
    # Something else made bookings with these terms: no pairing can be trusted.
    mine, later = attempt(100), attempt(101, T0 + timedelta(days=1))
    made = [booking(200 + n, utc_naive(T0 + timedelta(seconds=n))) for n in range(3)]
    verdicts = reconcile([mine, later], made, complete=True, offsets=LEARNED_LONDON_WINTER)
    assert verdicts == {key(100): Undecided((200, 201, 202), None), key(101): DidNotHappen()}


def test_an_attempt_without_terms_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="no terms"):
        reconcile([attempt(10, terms=None)], [], complete=True, offsets=ANY_OFFSET)


# --- properties ----------------------------------------------------------------------------------

offsets_in_minutes = st.integers(-14 * 4, 14 * 4).map(lambda quarters: quarters * 15)


@given(
    processed=st.lists(st.booleans(), min_size=1, max_size=8),
    offset=offsets_in_minutes,
    learned=st.booleans(),
    spacing=st.integers(0, 600),
)
def test_a_verdict_is_never_wrong(processed: list[bool], offset: int, learned: bool, spacing: int) -> None:
    """Twins, each POST processed or not: whatever is concluded is true, and a group processed in
    full is always proven rescheduled."""
    attempts = [attempt(100 + n, T0 + timedelta(seconds=n * spacing)) for n in range(len(processed))]
    made = {
        100 + n: booking(200 + n, utc_naive(T0 + timedelta(seconds=n * spacing + 1), offset))
        for n, happened in enumerate(processed)
        if happened
    }
    offsets = admissible_offsets(offset) if learned else ANY_OFFSET
    verdicts = reconcile(attempts, list(made.values()), complete=True, offsets=offsets)
    happened_into = {
        verdict.booking.booking_id for verdict in verdicts.values() if isinstance(verdict, Happened)
    }
    assert happened_into <= {b.booking_id for b in made.values()}
    for entry in attempts:
        verdict = verdicts[entry.key]
        if isinstance(verdict, DidNotHappen):
            assert entry.booking_id not in made
        if isinstance(verdict, Happened):
            assert entry.booking_id in made
    if all(processed):
        assert all(isinstance(v, Happened) for v in verdicts.values())
    assert len(happened_into) == sum(isinstance(v, Happened) for v in verdicts.values())  # one each
