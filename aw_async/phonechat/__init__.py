"""PhoneChat: ``aw.phonechat``, a client's bookings from listing to rescheduling.

:class:`PhoneChatService` is one class, composed: the journal's rules around each reschedule
(:mod:`._guard`), the reconciliation of unknown outcomes (:mod:`._reconciler`), the batch
(:mod:`._batch`), the bounded listing reader (:mod:`._listing`), ``passed_bookings``
(:mod:`._passed`) and the documented prerequisites as pure checks (:mod:`._prerequisites`).
"""

from __future__ import annotations

from ._batch import RescheduleOutcome, Stage
from ._service import PASSED_STATUSES, PhoneChatService

__all__ = ["PASSED_STATUSES", "PhoneChatService", "RescheduleOutcome", "Stage"]
