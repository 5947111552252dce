"""An emulator of the AdultWork API, served over real HTTP on loopback.

``SandboxServer`` emulates RescheduleMadeBooking, MadeBookingDetails (with its group-manager
variant) and GetCurrentCreditBalance, in JSON and DataContract XML, with Web API's error bodies,
token and scope checks, and faults injected on demand. Installing aw-async also gives pytest the
fixtures ``aw_sandbox`` and ``aw_client`` (see :mod:`aw_async.sandbox.pytest_plugin`).
"""

from __future__ import annotations

from ._demo import DemoData, make_booking, seed_demo
from ._faults import Fault, Faults
from ._server import SandboxServer, SeenRequest
from ._state import ALL_SCOPES

__all__ = [
    "ALL_SCOPES",
    "DemoData",
    "Fault",
    "Faults",
    "SandboxServer",
    "SeenRequest",
    "make_booking",
    "seed_demo",
]
