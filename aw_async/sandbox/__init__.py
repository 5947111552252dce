"""An emulator of the AdultWork API, served over real HTTP on loopback.

``SandboxServer`` serves every operation the library declares (aw_async/_endpoints.py), with their
group-manager variants and the OAuth token endpoint, in JSON and DataContract XML, with the
documented rules, Web API's error bodies, token and scope checks, a rate limit and faults on demand;
an operation it does not emulate answers 501. Installing aw-async also gives pytest the fixtures
``aw_sandbox`` and ``aw_client`` (see :mod:`aw_async.testing.pytest_plugin`).
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
