"""The README's web backend in a process of its own, as a deployment runs it (one of several
workers): ``python -m tests.web_worker PORT TOKEN BASE_URL``. Its journal is whatever the example
uses (no ``journal=`` argument: the default, from ``AW_ASYNC_JOURNAL`` or the state folder). Prints
``serving`` once it listens."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from .readme_examples import example


async def main(port: int, token: str, base_url: str) -> None:
    app = example("web")["make_app"](token, base_url=base_url)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("serving", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
