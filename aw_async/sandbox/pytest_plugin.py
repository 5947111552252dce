"""pytest fixtures for testing code that uses aw_async, against the sandbox (a ``pytest11`` plugin).

- ``aw_sandbox``: a running :class:`~aw_async.sandbox.SandboxServer` that accepts the token
  :data:`SANDBOX_TOKEN` for user :data:`SANDBOX_USER_ID`, with every scope; seed it with bookings
  and a balance in your test.
- ``aw_client``: an :class:`~aw_async.AdultWorkClient` bound to ``aw_sandbox`` with that token.

Both are async fixtures and need pytest-asyncio; without it this plugin registers nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._client import AdultWorkClient
from ._server import SandboxServer

__all__ = ["SANDBOX_TOKEN", "SANDBOX_USER_ID"]

#: The access token ``aw_sandbox`` accepts.
SANDBOX_TOKEN = "aw-sandbox-token"
#: The user that token belongs to.
SANDBOX_USER_ID = 1

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures need pytest-asyncio to run at all
    _have_pytest_asyncio = False
else:
    _have_pytest_asyncio = True

if _have_pytest_asyncio:

    @pytest_asyncio.fixture
    async def aw_sandbox() -> AsyncIterator[SandboxServer]:
        """A running SandboxServer that accepts SANDBOX_TOKEN for SANDBOX_USER_ID."""
        async with SandboxServer() as sandbox:
            sandbox.add_token(SANDBOX_TOKEN, user_id=SANDBOX_USER_ID)
            yield sandbox

    @pytest_asyncio.fixture
    async def aw_client(aw_sandbox: SandboxServer) -> AsyncIterator[AdultWorkClient]:
        """An AdultWorkClient bound to aw_sandbox with SANDBOX_TOKEN."""
        async with AdultWorkClient(SANDBOX_TOKEN, base_url=aw_sandbox.url) as client:
            yield client
