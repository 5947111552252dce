"""The retry policy, pure: what is retried, and after how long."""

from __future__ import annotations

import random

import pytest

from aw_async._retry import RetryPolicy, SendFailure

policy = RetryPolicy(max_retries=2, rng=random.Random(7))


@pytest.mark.parametrize(
    ("failure", "idempotent", "retried"),
    [
        (SendFailure.NOT_SENT, True, True),
        (SendFailure.NOT_SENT, False, True),  # never left: safe even for the reschedule POST
        (SendFailure.OUTCOME_UNKNOWN, True, True),
        (SendFailure.OUTCOME_UNKNOWN, False, False),  # may have arrived: never sent again
    ],
)
def test_failures(failure: SendFailure, idempotent: bool, retried: bool) -> None:
    wait = policy.after_failure(failure, idempotent=idempotent, retry=0)
    assert (wait is not None) is retried


@pytest.mark.parametrize(
    ("status", "idempotent", "retried"),
    [
        (429, True, True),
        (429, False, False),  # one call, one POST: not even after a 429
        (500, True, True),
        (500, False, False),
        (502, False, False),
        (503, True, True),
        (503, False, False),
        (504, True, True),
        (200, True, False),
        (400, True, False),
        (401, True, False),  # handled by the token refresh, not by retrying
        (404, True, False),
    ],
)
def test_statuses(status: int, idempotent: bool, retried: bool) -> None:
    wait = policy.after_status(status, idempotent=idempotent, retry=0, retry_after=None)
    assert (wait is not None) is retried


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert policy.after_status(429, idempotent=True, retry=0, retry_after=12.0) == 12.0
    assert policy.after_status(503, idempotent=True, retry=0, retry_after=3.0) == 3.0
    assert policy.after_status(429, idempotent=True, retry=0, retry_after=61.0) is None  # raise instead
    assert (
        RetryPolicy(max_retry_after=120).after_status(429, idempotent=True, retry=0, retry_after=61.0) == 61.0
    )


def test_tries_run_out() -> None:
    assert policy.after_failure(SendFailure.NOT_SENT, idempotent=True, retry=2) is None
    assert policy.after_status(429, idempotent=True, retry=2, retry_after=1.0) is None
    assert RetryPolicy(max_retries=0).after_failure(SendFailure.NOT_SENT, idempotent=True, retry=0) is None


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    jittery = RetryPolicy(backoff_base=0.5, backoff_max=8.0, rng=random.Random(1))
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        waits = [jittery.backoff(retry) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # the whole range is used...
        assert min(waits) < ceiling * 0.2  # ...from nearly nothing: full jitter


def test_a_negative_retry_count_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
