"""Test doubles for code that uses aw_async: an in-memory transport and a virtual clock.

>>> from aw_async import AdultWorkClient                                  # doctest: +SKIP
>>> from aw_async.testing import MockTransport, Response, VirtualClock
>>> def handler(request):
...     return Response(200, {"Content-Type": "application/json"}, b"12.50")
>>> clock = VirtualClock()
>>> async with AdultWorkClient("token", transport=MockTransport(handler), clock=clock) as aw:
...     await aw.credit_history.get_current_credit_balance()
Decimal('12.50')

Why two objects and not one: *where a request goes* and *how time passes* are separate things. The
transport (httpx's ``MockTransport``, in about as many lines) replaces only the network: a handler
from a :class:`Request` to a :class:`Response` stands in for one try, and everything the client does
around a try (retries, the account's gate, pacing, tokens, errors) runs as in production. The clock
replaces only time: every wait the client makes goes through the clock it is given, so a
:class:`VirtualClock` records each wait in :attr:`VirtualClock.sleeps` and lets it pass at once, and
it works as well with the real aiohttp transport against :class:`aw_async.sandbox.SandboxServer`.
Neither is reached through a global, so nothing needs patching.

Importing this package is cheap: no ``aiohttp.web``, no sandbox.
"""

from __future__ import annotations

from .._protocol import Request, Response
from .._retry import Failure
from .._transport import ExchangeError
from ._clock import VirtualClock
from ._mock import MockTransport

__all__ = ["ExchangeError", "Failure", "MockTransport", "Request", "Response", "VirtualClock"]
