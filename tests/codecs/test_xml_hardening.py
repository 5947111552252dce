"""Hostile XML: XXE, billion laughs, external DTDs. Refused before parsing, and harmless even if not."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from aw_async.codecs import XmlCodec
from aw_async.codecs._xml_parser import tree_parser
from aw_async.errors import DecodeError
from aw_async.models import ErrorBody, MadeBooking

codec = XmlCodec()
SECRET = "s3cr3t-contents-of-a-local-file"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP listener; any connection to it would mean the parser reached the network."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def xxe_file(path: Path) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE Error [<!ENTITY xxe SYSTEM "file://{path}">]>'
        "<Error><Message>&xxe;</Message></Error>"
    ).encode()


def xxe_network(port: int) -> bytes:
    return (
        f'<!DOCTYPE Error SYSTEM "http://127.0.0.1:{port}/evil.dtd"><Error><Message>x</Message></Error>'
    ).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><Error><Message>&lol9;</Message></Error>"
)


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Records every call of lxml's parser by the codec."""
    calls: list[bytes] = []
    real = etree.fromstring

    def recording(data: bytes, *args: object, **kwargs: object) -> object:
        calls.append(data)
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(etree, "fromstring", recording)
    return calls


def test_xxe_is_refused_before_parsing(secret_file: Path, parse_calls: list[bytes]) -> None:
    with pytest.raises(DecodeError, match="<!DOCTYPE") as caught:
        codec.decode(xxe_file(secret_file), ErrorBody)
    assert SECRET not in str(caught.value)
    assert parse_calls == []


def test_an_external_dtd_is_refused_before_any_connection(
    listener: socket.socket, parse_calls: list[bytes]
) -> None:
    with pytest.raises(DecodeError, match="<!DOCTYPE"):
        codec.decode(xxe_network(listener.getsockname()[1]), ErrorBody)
    assert parse_calls == []
    assert connections(listener) == 0


def test_billion_laughs_is_refused_before_parsing(parse_calls: list[bytes]) -> None:
    with pytest.raises(DecodeError, match="<!DOCTYPE"):
        codec.decode(BILLION_LAUGHS, ErrorBody)
    assert parse_calls == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"])
def test_a_doctype_is_found_in_any_encoding(
    encoding: str, secret_file: Path, parse_calls: list[bytes]
) -> None:
    text = xxe_file(secret_file).decode().replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    with pytest.raises(DecodeError, match="<!DOCTYPE"):
        codec.decode(text.encode(encoding), ErrorBody)
    assert parse_calls == []


def test_an_entity_declaration_outside_a_doctype_is_refused() -> None:
    with pytest.raises(DecodeError, match="<!ENTITY"):
        codec.decode(b'<Error><!ENTITY x "y"><Message>x</Message></Error>', ErrorBody)


# Defence in depth: even if the byte scan were bypassed, the parser itself reads no file, opens no
# connection and expands no entity.


def test_the_parser_reads_no_file(secret_file: Path) -> None:
    try:
        root = etree.fromstring(xxe_file(secret_file), tree_parser())
    except etree.XMLSyntaxError:
        return
    assert SECRET not in etree.tostring(root).decode()


def _parse_quietly(body: bytes, parser: etree.XMLParser) -> etree._Element | None:
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None


def test_the_parser_opens_no_connection(listener: socket.socket) -> None:
    body = xxe_network(listener.getsockname()[1])
    # Control: a permissive parser must reach the listener, or this libxml2 cannot fetch at all
    # (libxml2 2.13+ builds without HTTP by default) and the test would prove nothing.
    _parse_quietly(body, etree.XMLParser(load_dtd=True, no_network=False))
    if connections(listener) == 0:
        pytest.skip("this libxml2 has no network client, so no parser here can open a connection")
    _parse_quietly(body, tree_parser())
    assert connections(listener) == 0


def test_the_parser_expands_no_entity() -> None:
    body = b'<!DOCTYPE Error [<!ENTITY e "expanded">]><Error><Message>&e;</Message></Error>'
    permissive = _parse_quietly(body, etree.XMLParser(resolve_entities=True))
    assert permissive is not None  # the control: a permissive parser does expand it
    assert permissive.findtext("Message") == "expanded"
    root = _parse_quietly(body, tree_parser())
    assert root is None or "expanded" not in etree.tostring(root).decode()


def test_a_huge_text_node_within_the_limit_is_fine_and_over_it_refused() -> None:
    text = "x" * 1_000_000
    body = f"<Error><Message>{text}</Message></Error>".encode()
    assert codec.decode(body, ErrorBody).message == text
    with pytest.raises(DecodeError, match="exceeds the limit"):
        XmlCodec(max_body_bytes=len(body) - 1).decode(body, ErrorBody)


def test_the_default_limit_is_ten_mebibytes() -> None:
    assert codec.max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(DecodeError, match="exceeds the limit of 10485760 bytes"):
        codec.decode(b" " * (10 * 1024 * 1024 + 1), MadeBooking)
