"""When to try a request again, and how long to wait first. Pure: the transport asks, this answers.

The rules (after urllib3's ``Retry`` and stripe's client):

- the request never left (no connection could be made): retry, whatever the method;
- 429, 5xx, a timeout, a lost connection: retry only an idempotent request, a 429 after
  ``Retry-After`` (a ``Retry-After`` longer than ``max_retry_after`` is not waited out: the 429 is
  raised instead). A request that changes state (RescheduleMadeBooking, CreateBooking) is never
  sent again once it may have reached a server, not even after a 429: a server's word that it did
  nothing is not proof, and the journal records the refusal, so calling again later is safe;
- waits grow exponentially with full jitter (``random(0, min(cap, base * 2**attempt))``), so that a
  batch that failed together does not retry together.
"""

from __future__ import annotations

import enum
import random

import attrs

__all__ = ["RetryPolicy", "SendFailure"]


class SendFailure(enum.Enum):
    """How a try went wrong, as far as retrying is concerned."""

    NOT_SENT = "the request never reached the server"
    OUTCOME_UNKNOWN = "the request may have reached the server; no answer came"


@attrs.frozen
class RetryPolicy:
    """How many times to retry, and how long to wait.

    Attributes:
        max_retries: retries after the first try (so ``max_retries + 1`` tries at most).
        backoff_base, backoff_max: the exponential backoff's first step and ceiling, in seconds.
        max_retry_after: the longest ``Retry-After`` honoured, in seconds.
    """

    max_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based), with full jitter."""
        return self.rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**retry))

    def after_failure(self, failure: SendFailure, *, idempotent: bool, retry: int) -> float | None:
        """The wait before trying again after ``failure``, or None to give up."""
        if retry >= self.max_retries:
            return None
        if failure is SendFailure.NOT_SENT or idempotent:
            return self.backoff(retry)
        return None

    def after_status(
        self, status: int, *, idempotent: bool, retry: int, retry_after: float | None
    ) -> float | None:
        """The wait before trying again after an answer with ``status``, or None to keep it."""
        if retry >= self.max_retries:
            return None
        if status == 429 and idempotent:
            if retry_after is None:
                return self.backoff(retry)
            return retry_after if retry_after <= self.max_retry_after else None
        if status >= 500 and idempotent:
            if retry_after is not None and retry_after <= self.max_retry_after:
                return retry_after  # a 503 may say when to come back
            return self.backoff(retry)
        return None
