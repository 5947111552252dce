"""The CreditHistory service: the user's credit balance."""

from __future__ import annotations

from decimal import Decimal

from ._caller import Caller
from ._endpoints import GET_CURRENT_CREDIT_BALANCE
from ._params import NoParameters

__all__ = ["CreditHistoryService"]


class CreditHistoryService:
    """``aw.credit_history``: CreditHistory operations."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    async def get_current_credit_balance(self) -> Decimal:
        """The logged-in user's credit balance (GetCurrentCreditBalance), exact.

        Raises:
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        return await self._caller.call(GET_CURRENT_CREDIT_BALANCE, NoParameters())
