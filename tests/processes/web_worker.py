"""The README's web example ("In a web backend") as a worker process of its own, for the tests that
run several of them against one PostgreSQL journal:
``python -m tests.processes.web_worker PORT TOKEN BASE_URL JOURNAL [TIMEOUT]``.

It runs the README's own code: its ``<!-- example: web -->`` block, executed as tests/docs/test_readme.py
executes it, and served on 127.0.0.1:PORT (0: any free port). The example's client takes the default
journal, so JOURNAL (a path or a URL; ``-``: leave the environment as it is) reaches it as
``AW_ASYNC_JOURNAL``. A TIMEOUT replaces the example's
``timeout=10`` (the only change: the name ``AdultWorkClient`` the example's code looks up when the
app starts is rebound to the same class with that timeout), for the tests whose clicks wait for a
stopped worker as long as the timeout (the client's ``wait_elsewhere``).

Prints ``listening PORT HOSTNAME PID`` once it serves (the host name and PID as the process sees
them: in a UTS and PID namespace of its own, its own name and PID 1). SIGTERM closes it cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web

from ..readme_examples import example


def readme_web_example() -> dict[str, Any]:
    """What the README's web example defines (``make_app`` among it)."""
    return example("web")


def with_timeout(example: dict[str, Any], timeout: float) -> None:
    """Make the example's clients use ``timeout`` instead of the example's own."""
    readme_client = example["AdultWorkClient"]

    def client(*args: Any, **kwargs: Any) -> Any:
        return readme_client(*args, **{**kwargs, "timeout": timeout})

    example["AdultWorkClient"] = client  # looked up when the app starts, after this


async def serve(port: int, token: str, base_url: str, client_timeout: float | None) -> None:
    example = readme_web_example()
    if client_timeout is not None:
        with_timeout(example, client_timeout)
    app = example["make_app"](token, base_url=base_url)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        bound = runner.addresses[0][1]
        print(f"listening {bound} {socket.gethostname()} {os.getpid()}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    port, token, base_url, journal, *rest = sys.argv[1:]
    if journal != "-":
        os.environ["AW_ASYNC_JOURNAL"] = journal
    asyncio.run(serve(int(port), token, base_url, float(rest[0]) if rest else None))
