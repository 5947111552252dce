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

Importing this package is cheap: its names are loaded on first use (PEP 562), and none of them
brings in ``aiohttp.web`` or the sandbox. Its pytest plugin (:mod:`.pytest_plugin`) gives the
``aw_sandbox`` and ``aw_client`` fixtures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._protocol import Request, Response
    from .._retry import SendFailure
    from .._transport import ExchangeError
    from ._clock import VirtualClock
    from ._mock import MockTransport

_HOMES = {
    "Request": ".._protocol",
    "Response": ".._protocol",
    "SendFailure": ".._retry",
    "ExchangeError": ".._transport",
    "VirtualClock": "._clock",
    "MockTransport": "._mock",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aw_async.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


__all__ = ["ExchangeError", "MockTransport", "Request", "Response", "SendFailure", "VirtualClock"]
