"""The data contracts: how each model is named on the wire, in JSON and in DataContract XML.

This is the one place where ``booking_id`` becomes ``BookingID``. Both codecs and both directions
(decode and encode) read these tables; the models themselves know nothing of the wire.

A contract lists its members in the model's declaration order, which is Json.NET's order, and in
DataContractSerializer's order: base-class members first, then ordinal by name (WIRE.md, "XML").
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attrs

from ..models import ErrorBody, MadeBooking, PhoneChatBookingUser

__all__ = [
    "BOOKINGS_NS",
    "CONTRACTS",
    "MADE_NS",
    "PROFILE_NS",
    "SERIALIZATION_NS",
    "XSI_NS",
    "Contract",
    "Kind",
    "Member",
    "contract_for",
]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: Primitive roots such as ``<decimal>`` (WIRE.md, "Primitive roots").
SERIALIZATION_NS = "http://schemas.microsoft.com/2003/10/Serialization/"
_DATACONTRACT = "http://schemas.datacontract.org/2004/07/"
MADE_NS = _DATACONTRACT + "API.Models.PhoneChat.Bookings.Made"
BOOKINGS_NS = _DATACONTRACT + "API.Models.PhoneChat.Bookings"
PROFILE_NS = _DATACONTRACT + "API.Models.Profile"


class Kind(enum.Enum):
    """What a member holds, which decides how the XML codec reads and writes it."""

    SCALAR = "scalar"
    OBJECT = "object"  # a nested contract
    MAP = "map"  # HttpError's ModelState: one child element per key


@attrs.frozen
class Member:
    """One data member of a contract."""

    attribute: str
    wire: str
    namespace: str
    kind: Kind
    model: type | None
    """The nested model, for :attr:`Kind.OBJECT` members."""
    inherited: bool
    """Declared on a base class, which DataContractSerializer writes first."""

    @property
    def clark(self) -> str:
        """The element's name in lxml's ``{namespace}local`` notation."""
        return f"{{{self.namespace}}}{self.wire}" if self.namespace else self.wire


@attrs.frozen
class Contract:
    """How one model appears on the wire."""

    model: type
    name: str
    namespace: str
    members: tuple[Member, ...]
    http_error: bool = False
    """ASP.NET's ``HttpError`` is a dictionary, not a data contract (API.md, "Error bodies"): it
    writes only the keys it has, in insertion order, an empty element stands for null, and
    ``ModelState`` is a map whose keys are element names."""

    by_attribute: dict[str, Member] = attrs.field(init=False, eq=False, repr=False)
    by_clark: dict[str, Member] = attrs.field(init=False, eq=False, repr=False)
    xml_order: tuple[Member, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "by_attribute", {m.attribute: m for m in self.members})
        object.__setattr__(self, "by_clark", {m.clark: m for m in self.members})
        order = (
            self.members if self.http_error else sorted(self.members, key=lambda m: (not m.inherited, m.wire))
        )
        object.__setattr__(self, "xml_order", tuple(order))

    @property
    def clark(self) -> str:
        """The root element's name in lxml's ``{namespace}local`` notation."""
        return f"{{{self.namespace}}}{self.name}" if self.namespace else self.name


def _wire_name(attribute: str) -> str:
    """``booking_id`` -> ``BookingID``: PascalCase, with ``ID`` in capitals as the API spells it."""
    return "".join("ID" if part == "id" else part.capitalize() for part in attribute.split("_"))


def _kind_of(annotation: Any) -> tuple[Kind, type | None]:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for arg in args:
        if attrs.has(arg):
            return Kind.OBJECT, arg
        if typing.get_origin(arg) is dict:
            return Kind.MAP, None
    return Kind.SCALAR, None


def _contract(
    model: type,
    *,
    namespace: str,
    renames: dict[str, str] | None = None,
    inherited: tuple[str, ...] = (),
    inherited_namespace: str = "",
    http_error: bool = False,
) -> Contract:
    renames = renames or {}
    members = []
    for field in attrs.fields(attrs.resolve_types(model)):
        kind, nested = _kind_of(field.type)
        is_inherited = field.name in inherited
        members.append(
            Member(
                attribute=field.name,
                wire=renames.get(field.name, _wire_name(field.name)),
                namespace=inherited_namespace if is_inherited else namespace,
                kind=kind,
                model=nested,
                inherited=is_inherited,
            )
        )
    return Contract(
        model=model,
        name=model.__name__ if not http_error else "Error",
        namespace=namespace,
        members=tuple(members),
        http_error=http_error,
    )


CONTRACTS: dict[type, Contract] = {
    contract.model: contract
    for contract in (
        # The seed's Candidate: its feedback counters come from a base class in API.Models.Profile.
        _contract(
            PhoneChatBookingUser,
            namespace=BOOKINGS_NS,
            inherited=("total", "positive", "neutral", "negative", "ratings", "disputes"),
            inherited_namespace=PROFILE_NS,
        ),
        _contract(MadeBooking, namespace=MADE_NS),
        _contract(ErrorBody, namespace="", renames={"inner": "InnerException"}, http_error=True),
    )
}


def contract_for(model: type) -> Contract:
    """The contract of a model class.

    Raises:
        TypeError: ``model`` is not one of the package's models.
    """
    try:
        return CONTRACTS[model]
    except KeyError:
        raise TypeError(f"{model!r} is not a model aw_async can decode or encode") from None
