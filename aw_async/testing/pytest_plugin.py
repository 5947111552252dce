"""pytest fixtures for testing code that uses aw_async, against the sandbox (a ``pytest11`` plugin).

- ``aw_sandbox``: a running :class:`~aw_async.sandbox.SandboxServer` that accepts the token
  :data:`SANDBOX_TOKEN` for user :data:`SANDBOX_USER_ID`, with every scope; seed it with bookings
  (:func:`~aw_async.sandbox.make_booking`) and a balance in your test.
- ``aw_client``: an :class:`~aw_async.AdultWorkClient` bound to ``aw_sandbox`` with that token.

Both are async fixtures: they need pytest-asyncio, and work in its default (strict) mode, where an
async test is marked ``@pytest.mark.asyncio``. Without pytest-asyncio (not installed, or disabled
with ``-p no:asyncio``), asking for either fails with a message that says so, instead of pytest's
"fixture not found".

pytest loads this plugin in every run wherever aw-async is installed, so it imports nothing of the
library's until a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from .._client import AdultWorkClient
    from ..sandbox import SandboxServer

__all__ = ["SANDBOX_TOKEN", "SANDBOX_USER_ID"]

#: The access token ``aw_sandbox`` accepts.
SANDBOX_TOKEN = "aw-sandbox-token"
#: The user that token belongs to.
SANDBOX_USER_ID = 1

_NEEDS = (
    "the aw_sandbox and aw_client fixtures are async and need pytest-asyncio: "
    "pip install pytest-asyncio, and mark the test @pytest.mark.asyncio (or set asyncio_mode = auto)"
)


class _WithoutAsyncio:
    """What the fixtures are when pytest-asyncio is missing: a clear failure."""

    @pytest.fixture
    def aw_sandbox(self) -> NoReturn:
        pytest.fail(_NEEDS, pytrace=False)

    @pytest.fixture
    def aw_client(self) -> NoReturn:
        pytest.fail(_NEEDS, pytrace=False)


def _with_asyncio() -> Any:
    import pytest_asyncio

    class WithAsyncio:
        @pytest_asyncio.fixture
        async def aw_sandbox(self) -> AsyncIterator[SandboxServer]:
            """A running SandboxServer that accepts SANDBOX_TOKEN for SANDBOX_USER_ID."""
            from ..sandbox import SandboxServer

            async with SandboxServer() as sandbox:
                sandbox.add_token(SANDBOX_TOKEN, user_id=SANDBOX_USER_ID)
                yield sandbox

        @pytest_asyncio.fixture
        async def aw_client(self, aw_sandbox: SandboxServer) -> AsyncIterator[AdultWorkClient]:
            """An AdultWorkClient bound to aw_sandbox with SANDBOX_TOKEN."""
            from .._client import AdultWorkClient

            # A journal of the test's own: a test never writes into the user's journal.
            async with AdultWorkClient(SANDBOX_TOKEN, base_url=aw_sandbox.url, journal="memory") as client:
                yield client

    return WithAsyncio()


def pytest_configure(config: pytest.Config) -> None:
    """Register the fixtures that fit: pytest-asyncio may be installed but disabled (``-p no:asyncio``)."""
    active = config.pluginmanager.has_plugin("asyncio")
    try:
        fixtures = _with_asyncio() if active else _WithoutAsyncio()
    except ImportError:
        fixtures = _WithoutAsyncio()
    config.pluginmanager.register(fixtures, "aw_async-sandbox-fixtures")
