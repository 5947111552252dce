"""The peers' equivalents of MadeBooking, for the decode comparison (installed by the ``bench`` extra).

Each peer gets the same work: the seed's booking with its wire names, exact decimals, datetimes,
optional members and the nested Candidate (in its two XML namespaces). A peer that is not installed is
skipped.

No ``from __future__ import annotations`` here: the peers read annotations at runtime, and classes
defined inside functions cannot be resolved from strings.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aw_async.codecs._contracts import BOOKINGS_NS, MADE_NS, PROFILE_NS

__all__ = ["json_peers", "pydantic_booking", "xml_peers"]

_CANDIDATE_FIELDS = (
    "UserID",
    "Nickname",
    "PhoneNumber",
    "SkypeName",
    "Total",
    "Positive",
    "Neutral",
    "Negative",
    "Ratings",
    "Disputes",
)


def _snake(wire: str) -> str:
    out = ""
    for index, char in enumerate(wire.replace("ID", "Id")):
        out += ("_" if char.isupper() and index else "") + char.lower()
    return out


def json_peers(document: bytes) -> dict[str, Callable[[], object]]:
    """name -> one decode of ``document`` into a typed booking."""
    peers: dict[str, Callable[[], object]] = {}
    try:
        import orjson
    except ImportError:
        pass
    else:
        peers["orjson.loads (untyped)"] = lambda: orjson.loads(document)
    try:
        import msgspec
    except ImportError:
        pass
    else:
        peers["msgspec (typed)"] = _msgspec(msgspec, document)
    try:
        import pydantic
    except ImportError:
        pass
    else:
        peers["pydantic v2 (typed)"] = _pydantic(pydantic, document)
    return peers


def _msgspec(msgspec: Any, document: bytes) -> Callable[[], object]:
    class Candidate(
        msgspec.Struct,
        frozen=True,
        rename={"user_id": "UserID", **{_snake(n): n for n in _CANDIDATE_FIELDS if n != "UserID"}},
    ):
        user_id: int
        nickname: str
        phone_number: str | None = None
        skype_name: str | None = None
        total: int = 0
        positive: int = 0
        neutral: int = 0
        negative: int = 0
        ratings: int = 0
        disputes: int = 0

    class Booking(msgspec.Struct, frozen=True, rename="pascal"):
        booking_id: int = msgspec.field(name="BookingID")
        duration: int = 0
        credits: Decimal = Decimal(0)
        status: str = ""
        method: int = 0
        phone_number: str | None = None
        skype_name: str | None = None
        create_date: dt.datetime | None = None
        session_date: dt.datetime | None = None
        accept_by: dt.datetime | None = None
        accepted_date: dt.datetime | None = None
        confirmed_date: dt.datetime | None = None
        cancelled_date: dt.datetime | None = None
        cancelled_reason: str | None = None
        cancelled_by: str | None = None
        rejected_reason: str | None = None
        last_updated: dt.datetime | None = None
        comments: str | None = None
        action_client: str | None = None
        candidate: Candidate | None = None

    decoder = msgspec.json.Decoder(Booking)
    return lambda: decoder.decode(document)


def _pydantic(pydantic: Any, document: bytes) -> Callable[[], object]:
    booking = pydantic_booking(pydantic)
    return lambda: booking.model_validate_json(document)


def pydantic_booking(pydantic: Any) -> Any:
    """A pydantic v2 model of MadeBooking, as a user of pydantic would write it (wire aliases)."""
    config = pydantic.ConfigDict(
        frozen=True,
        alias_generator=lambda name: "".join(
            "ID" if part == "id" else part.capitalize() for part in name.split("_")
        ),
    )

    class Candidate(pydantic.BaseModel):
        model_config = config
        user_id: int
        nickname: str
        phone_number: str | None = None
        skype_name: str | None = None
        total: int
        positive: int
        neutral: int
        negative: int
        ratings: int
        disputes: int

    class Booking(pydantic.BaseModel):
        model_config = config
        booking_id: int
        duration: int
        credits: Decimal
        status: str
        method: int
        phone_number: str | None = None
        skype_name: str | None = None
        create_date: dt.datetime | None = None
        session_date: dt.datetime | None = None
        accept_by: dt.datetime | None = None
        accepted_date: dt.datetime | None = None
        confirmed_date: dt.datetime | None = None
        cancelled_date: dt.datetime | None = None
        cancelled_reason: str | None = None
        cancelled_by: str | None = None
        rejected_reason: str | None = None
        last_updated: dt.datetime | None = None
        comments: str | None = None
        action_client: str | None = None
        candidate: Candidate | None = None

    return Booking


def xml_peers(document: bytes) -> dict[str, Callable[[], object]]:
    """name -> one decode of the XML ``document``."""
    peers: dict[str, Callable[[], object]] = {}
    try:
        import xmltodict
    except ImportError:
        pass
    else:
        peers["xmltodict (untyped)"] = lambda: xmltodict.parse(document, process_namespaces=True)
    try:
        from xsdata.formats.dataclass.parsers import XmlParser
    except ImportError:
        pass
    else:
        parser = XmlParser()
        booking_class = _xsdata_classes()
        peers["xsdata (typed)"] = lambda: parser.from_bytes(document, booking_class)
    return peers


def _element(name: str, namespace: str, default: Any = None) -> Any:
    metadata = {"name": name, "type": "Element", "namespace": namespace, "nillable": True}
    return dataclasses.field(default=default, metadata=metadata)


def _xsdata_classes() -> type:
    from xsdata.models.datatype import XmlDateTime  # xsdata reads xs:dateTime only into its own type

    @dataclasses.dataclass(frozen=True)
    class Candidate:
        class Meta:
            namespace = BOOKINGS_NS

        disputes: int | None = _element("Disputes", PROFILE_NS)
        negative: int | None = _element("Negative", PROFILE_NS)
        neutral: int | None = _element("Neutral", PROFILE_NS)
        positive: int | None = _element("Positive", PROFILE_NS)
        ratings: int | None = _element("Ratings", PROFILE_NS)
        total: int | None = _element("Total", PROFILE_NS)
        nickname: str | None = _element("Nickname", BOOKINGS_NS)
        phone_number: str | None = _element("PhoneNumber", BOOKINGS_NS)
        skype_name: str | None = _element("SkypeName", BOOKINGS_NS)
        user_id: int | None = _element("UserID", BOOKINGS_NS)

    fields = [
        ("accept_by", dt.datetime),
        ("accepted_date", dt.datetime),
        ("action_client", str),
        ("booking_id", int),
        ("cancelled_by", str),
        ("cancelled_date", dt.datetime),
        ("cancelled_reason", str),
        ("comments", str),
        ("confirmed_date", dt.datetime),
        ("create_date", dt.datetime),
        ("credits", Decimal),
        ("duration", int),
        ("last_updated", dt.datetime),
        ("method", int),
        ("phone_number", str),
        ("rejected_reason", str),
        ("session_date", dt.datetime),
        ("skype_name", str),
        ("status", str),
    ]
    wire = {
        name: "".join("ID" if p == "id" else p.capitalize() for p in name.split("_")) for name, _ in fields
    }
    kinds = {name: XmlDateTime if kind is dt.datetime else kind for name, kind in fields}
    namespace: dict[str, Any] = {"__annotations__": {name: kind | None for name, kind in kinds.items()}}
    for name, _ in fields:
        namespace[name] = _element(wire[name], MADE_NS)
    namespace["__annotations__"]["candidate"] = Candidate | None
    namespace["candidate"] = _element("Candidate", MADE_NS)
    meta = type("Meta", (), {"name": "MadeBooking", "namespace": MADE_NS})
    namespace["Meta"] = meta
    return dataclasses.dataclass(frozen=True)(type("MadeBooking", (), namespace))
