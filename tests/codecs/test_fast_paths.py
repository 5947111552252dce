"""What a maintainer needs from the fast paths beyond their values (those are held to the general
path's by tests/codecs/test_json_fast.py and tests/codecs/test_xml_fast.py): generated code that
tracebacks and ``inspect`` can show, declines that are logged and counted, a switch that turns them
off, one reader table, and a build that fails loudly when the table has no row for a member's type."""

from __future__ import annotations

import ast
import doctest
import inspect
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import aw_async.codecs
from aw_async.codecs import JsonCodec, XmlCodec, _json_fast, _xml_fast, fast_path_declines
from aw_async.codecs._fast import served_contracts, switch_setting
from aw_async.codecs._readers import READERS, TypeReaders, read_optional_datetime
from aw_async.errors import DecodeError
from aw_async.models import MadeBooking, MadeBookingsPage, PhoneChatMethod

from ..conftest import fixture_bytes

JSON, XML = JsonCodec(), XmlCodec()
CODECS = Path(aw_async.codecs.__file__).parent


@pytest.fixture(autouse=True)
def no_declines_counted_yet() -> Iterator[None]:
    fast_path_declines(reset=True)
    yield
    fast_path_declines(reset=True)


def every_builder() -> Iterator[Callable[..., Any]]:
    """The generated builders of both fast paths: roots, nested objects and list items."""
    for _, fast in _json_fast.fast_models().values():
        yield fast.build
    for program in _xml_fast.fast_xml_models().values():
        yield program.build
        yield from _nested_builders(program.build)
    for program in _xml_fast.fast_xml_models().values():
        for _, slot in program.segments:
            if slot is not None:  # a list's items: their program is compiled per prefix spelling
                _, build = _xml_fast._item_program(slot.item, slot.default, "d4p1" if slot.declared else None)
                yield build
                yield from _nested_builders(build)


def _nested_builders(build: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    for name, value in build.__globals__.items():
        if name.startswith("build_"):
            yield value
            yield from _nested_builders(value)


def _a_booking() -> MadeBooking:
    return JSON.decode(fixture_bytes("made_booking.json"), MadeBooking)


def test_every_builder_has_a_file_name_of_its_own_and_inspect_reads_its_source() -> None:
    # One each: models with a list of the same items (two hold PhoneChatMethods) share its builder.
    builders = list({id(build): build for build in every_builder()}.values())
    names = [build.__code__.co_filename for build in builders]
    assert len(set(names)) == len(names), names
    # Every served model's builders, roots, list items and nested objects alike (derived, not
    # counted: a new model must not fail this test).
    titles = {name.removeprefix("<aw_async generated ").split(" #")[0] for name in names}
    for contract in served_contracts():
        assert {
            f"JSON builder of {contract.model.__name__}",
            f"XML builder of {contract.model.__name__}",
        } <= titles
    assert any(title.endswith(" in a list") for title in titles)
    assert any(", its " in title for title in titles)
    for build in builders:
        assert build.__code__.co_filename.startswith("<aw_async generated ")
        assert inspect.getsource(build) == build.__source__  # type: ignore[attr-defined]


def test_the_builders_use_the_members_names() -> None:
    json_source = _json_fast.fast_models()[MadeBooking][1].build.__source__  # type: ignore[attr-defined]
    xml_source = _xml_fast.fast_xml_models()[MadeBooking].build.__source__  # type: ignore[attr-defined]
    for source in (json_source, xml_source):
        assert "set_booking_id(made, " in source
        assert "read_create_date(create_date)" in source
        assert "g[" not in source


def test_the_xml_expressions_name_every_group_they_capture() -> None:
    for program in _xml_fast.fast_xml_models().values():
        for expression, _ in program.segments:
            assert expression.groups == len(expression.groupindex) > 0
    booking = _xml_fast.fast_xml_models()[MadeBooking].segments[0][0]
    assert {"credits", "credits_nil", "candidate__user_id"} <= set(booking.groupindex)


def test_a_traceback_through_a_builder_shows_the_line_that_failed() -> None:
    decoder, fast = _json_fast.fast_models()[MadeBooking]
    wire = decoder.decode(fixture_bytes("made_booking.json").replace(b"2018-01-25T", b"2018-02-30T", 1))
    with pytest.raises(ValueError, match="impossible datetime") as caught:
        fast.build(wire)
    shown = "".join(traceback.format_exception(caught.value))
    assert "<aw_async generated JSON builder of MadeBooking #" in shown
    assert "read_create_date(create_date)" in shown  # the source line, not only its number


def test_the_usual_answers_take_the_fast_paths_and_decline_nothing() -> None:
    page = MadeBookingsPage(page_count=3, page_number=1, bookings=(_a_booking(),) * 100)
    for codec in (JSON, XML):
        for value in (_a_booking(), page, PhoneChatMethod(method=2, description="Skype")):
            assert codec.decode(codec.encode(value), type(value)) == value
    for codec, sample in ((JSON, "made_booking.json"), (XML, "made_booking.xml")):  # the vendor's samples
        assert codec.decode(fixture_bytes(sample), MadeBooking).booking_id == 2
    assert fast_path_declines() == {"json": {}, "xml": {}}


def test_a_decline_is_counted_by_reason_and_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    commented = XML.encode(_a_booking()).replace(b"<Comments", b"<!-- a note --><Comments", 1)
    caplog.set_level(logging.DEBUG, logger="aw_async")
    assert XML.decode(commented, MadeBooking) == _a_booking()  # the general path reads it
    assert XML.decode(commented, MadeBooking) == _a_booking()
    assert JSON.decode(b"8.50", Decimal) == Decimal("8.50")
    assert fast_path_declines() == {
        "json": {"not a model the fast path serves": 1},
        "xml": {"not the server's usual layout": 2},
    }
    assert "XML fast path declined MadeBooking: not the server's usual layout" in caplog.messages
    assert "JSON fast path declined Decimal: not a model the fast path serves" in caplog.messages
    assert all("a note" not in message for message in caplog.messages)  # never the body's content


def test_reading_the_counts_with_reset_sets_them_back_to_zero() -> None:
    with pytest.raises(DecodeError):
        JSON.decode(b'{"BookingID": "one"}', MadeBooking)
    assert fast_path_declines(reset=True)["json"] == {
        "a member msgspec does not type as the contract does": 1
    }
    assert fast_path_declines() == {"json": {}, "xml": {}}


def test_an_unforeseen_error_in_a_fast_path_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoder, _ = _json_fast.fast_models()[PhoneChatMethod]

    def broken(wire: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(
        _json_fast.fast_models(), PhoneChatMethod, (decoder, type("F", (), {"build": broken}))
    )
    caplog.set_level(logging.DEBUG, logger="aw_async")
    assert JSON.decode(b'{"Method":2}', PhoneChatMethod) == PhoneChatMethod(method=2)  # the general path
    assert fast_path_declines()["json"] == {"unexpected ZeroDivisionError": 1}
    (record,) = [r for r in caplog.records if "unexpected" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


_SWITCHED_OFF = """
import json, sys
from aw_async.codecs import JsonCodec, XmlCodec, fast_path_declines
from aw_async.codecs import _fast, _json_fast, _xml_fast
from aw_async import models

cases = json.loads(sys.stdin.read())
values = []
for format_name, hex_body, model in cases:
    codec = JsonCodec() if format_name == "json" else XmlCodec()
    values.append(repr(codec.decode(bytes.fromhex(hex_body), getattr(models, model))))
print(json.dumps({
    "values": values,
    "declines": fast_path_declines(),
    "on": _fast.FAST_PATHS_ON,
    "compiled": [_json_fast._decoders is not None, _xml_fast._programs is not None],
}))
"""


@pytest.mark.parametrize("setting", ["0", "off"])
def test_the_environment_switch_sends_every_decode_through_the_general_path(setting: str) -> None:
    page = MadeBookingsPage(page_count=3, page_number=1, bookings=(_a_booking(),) * 3)
    documents = [
        *(("json", JSON.encode(value), type(value)) for value in (_a_booking(), page)),
        *(("xml", XML.encode(value), type(value)) for value in (_a_booking(), page)),
        ("json", fixture_bytes("made_booking.json"), MadeBooking),
        ("xml", fixture_bytes("made_booking.xml"), MadeBooking),
    ]
    cases = [(f, body.hex(), model.__name__) for f, body, model in documents]
    environment = {**os.environ, "AW_ASYNC_FAST_PATHS": setting}
    ran = subprocess.run(
        [sys.executable, "-c", _SWITCHED_OFF],
        input=json.dumps(cases),
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(ran.stdout)
    here = [repr((JSON if f == "json" else XML).decode(body, model)) for f, body, model in documents]
    assert report["values"] == here  # the general path gives what the fast paths give here
    assert report["on"] is False
    assert report["compiled"] == [False, False]  # no fast path was even built
    reason = "switched off by AW_ASYNC_FAST_PATHS"
    assert report["declines"] == {"json": {reason: 3}, "xml": {reason: 3}}
    assert fast_path_declines() == {"json": {}, "xml": {}}  # here, they served all six


@pytest.mark.parametrize(
    ("setting", "on"),
    [(None, True), ("1", True), ("", True), ("0", False), ("false", False), (" OFF ", False), ("No", False)],
)
def test_the_fast_paths_are_on_unless_the_switch_says_off(setting: str | None, on: bool) -> None:
    assert switch_setting(setting) is on


def test_a_member_type_with_no_row_in_the_reader_table_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(READERS, datetime | None)
    with pytest.raises(KeyError):
        _json_fast._compile()
    with pytest.raises(KeyError):
        _xml_fast._compile()


def test_a_type_the_json_fast_path_cannot_read_fails_its_build_with_a_pointer_to_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(READERS, datetime | None, TypeReaders(read_optional_datetime, read_optional_datetime))
    with pytest.raises(TypeError, match=r"MadeBooking\.create_date .*codecs/_readers\.py"):
        _json_fast._compile()


def _imports(module: str) -> dict[str, set[str]]:
    """What ``codecs/<module>.py`` imports from its sibling modules: module -> names."""
    tree = ast.parse((CODECS / f"{module}.py").read_text())
    found: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return found


def test_the_general_xml_path_takes_its_parser_from_the_parser_module_not_the_fast_path() -> None:
    assert _imports("_xml")["_xml_fast"] == {"fast_decode"}  # the codec offers a body to it, no more
    assert "_xml_parser" in _imports("_xml")
    assert "_xml_parser" in _imports("_xml_fast")
    assert "_xml" not in _imports("_query")  # query strings are typed as text, without the XML codec


def test_the_package_docstring_examples_hold() -> None:
    assert doctest.testmod(aw_async.codecs).failed == 0
