"""A hostile HTTP server on loopback: it answers every request with whatever bytes a test gives it
(a malformed status line, an 8 KiB header, a bad chunk size, a gzip bomb), and records what came in."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import Self

import attrs


@attrs.define
class Received:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Received], bytes]


class HostileServer:
    """Serves raw answers: ``answer(received) -> bytes`` is written as is, then the connection closes."""

    def __init__(self, answer: Answer | bytes) -> None:
        self.answer: Answer = answer if callable(answer) else (lambda _: answer)
        self.received: list[Received] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    def count(self, method: str) -> int:
        return sum(1 for r in self.received if r.method == method)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(method, target, headers, body)
            self.received.append(received)
            writer.write(self.answer(received))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def response(
    status_line: bytes = b"HTTP/1.1 200 OK",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> bytes:
    """The bytes of an answer; ``Content-Length`` is added unless the headers have one."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if content_length and not any(
        name.lower() in ("content-length", "transfer-encoding") for name, _ in items
    ):
        items.append(("Content-Length", str(len(body))))
    items.append(("Connection", "close"))
    head = b"\r\n".join([status_line, *(f"{n}: {v}".encode("latin-1", "replace") for n, v in items)])
    return head + b"\r\n\r\n" + body


def compression_bomb(encoding: str, mebibytes: int) -> bytes:
    """``mebibytes`` MiB of ``0`` digits, compressed (``gzip`` or ``deflate``, zlib's format) to a few
    hundred KiB, in a quarter of a second instead of the seconds compressing them takes: one
    mebibyte is compressed, and repeated. After a full flush a block is byte-aligned and refers to
    nothing before it, so each repetition's bytes are the same; the trailer's checksum and length
    are those of the whole."""
    chunk = b"0" * 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[: -8 if encoding == "gzip" else -4]  # the last block, less the trailer
    crc, adler = 0, 1
    for _ in range(mebibytes):
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    if encoding == "gzip":
        trailer = struct.pack("<II", crc, mebibytes * 2**20 % 2**32)
    else:
        trailer = struct.pack(">I", adler)
    return first + again * (mebibytes - 1) + end + trailer
