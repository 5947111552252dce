"""TLS is verified by default; plain http to another machine is refused unless allowed."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from aw_async import AdultWorkClient, RefreshingToken
from aw_async.errors import TransportError
from aw_async.testing import VirtualClock

from ..cli.cli_support import Cli


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = (
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        ["openssl", *command.split(), "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return cert, key


@pytest.fixture
async def https_server(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    """An HTTPS server on loopback with a self-signed certificate no client should trust."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"12.00", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
    assert hits == []  # no request ever got through the failed handshake


async def test_an_untrusted_certificate_is_refused_and_not_retried(
    https_server: str, clock: VirtualClock
) -> None:
    async with AdultWorkClient("token", base_url=https_server, clock=clock) as aw:
        with pytest.raises(TransportError, match="certificate verify failed"):
            await aw.credit_history.get_current_credit_balance()
    assert clock.sleeps == []  # not retried: no wait before a second try


@pytest.mark.parametrize(
    "base_url",
    ["http://api.adultwork.com", "http://10.0.0.5:8080", "http://example.com/v1", "http://[2001:db8::1]:80"],
)
def test_plain_http_to_another_machine_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match=r"plain http .* in clear"):
        AdultWorkClient("token", base_url=base_url)
    AdultWorkClient("token", base_url=base_url, allow_insecure_http=True)  # when the caller says so


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",
        "http://127.3.2.1",
        "http://localhost:9000",
        "http://[::1]:8080",
        "https://example.com",
    ],
)
def test_loopback_and_https_are_fine(base_url: str) -> None:
    AdultWorkClient("token", base_url=base_url)


def test_the_token_endpoint_is_held_to_the_same_rule() -> None:
    token = RefreshingToken("app", "secret", "refresh", token_url="http://auth.example.com/OAuth/token")
    with pytest.raises(ValueError, match="token_url"):
        AdultWorkClient(token, base_url="https://api.adultwork.com")
    AdultWorkClient(token, base_url="https://api.adultwork.com", allow_insecure_http=True)


def test_the_cli_refuses_too(capsys: pytest.CaptureFixture[str]) -> None:
    done = Cli(capsys)("balance", "--token", "t", "--base-url", "http://api.example.com")
    assert done.code == 2
    assert "in clear" in done.err
