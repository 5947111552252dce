"""The data contracts: how each model is named on the wire, in JSON and in DataContract XML.

This is the one place where ``booking_id`` becomes ``BookingID``. Both codecs and both directions
(decode and encode) read these tables; the models themselves know nothing of the wire.

A contract lists its members in the model's declaration order, which is Json.NET's order, and in
DataContractSerializer's order: base-class members first, then ordinal by name (docs/wire.md, "XML").

Some shapes are not documented by the vendor and are inferred (docs/api.md, "What is inferred"):
the MadeBookings envelope, UserBookingRequirements and PhoneChatMethod. Their names and their
namespace live in :data:`INFERRED` below, one line each, so that a correction is a one-line change;
an XML reader matches their root by nothing and their members by local name in whatever namespace
the document gives them.
"""

from __future__ import annotations

import enum
import types
import typing
from datetime import datetime
from typing import Any

import attrs

from .._params import (
    CancelMadeBookingRequest,
    CreateBookingRequest,
    MadeBookingDetailsQuery,
    MadeBookingsQuery,
    NoParameters,
    RescheduleMadeBookingRequest,
    UserBookingRequirementsQuery,
)
from ..models import (
    ErrorBody,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatBookingUser,
    PhoneChatMethod,
    UserBookingRequirements,
)

__all__ = [
    "BOOKINGS_NS",
    "CONTRACTS",
    "INFERRED",
    "MADE_NS",
    "PHONECHAT_NS",
    "PROFILE_NS",
    "SERIALIZATION_NS",
    "XSI_NS",
    "Contract",
    "Kind",
    "Member",
    "contract_for",
]

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: Primitive roots such as ``<decimal>`` (docs/wire.md, "Primitive roots").
SERIALIZATION_NS = "http://schemas.microsoft.com/2003/10/Serialization/"
_DATACONTRACT = "http://schemas.datacontract.org/2004/07/"
MADE_NS = _DATACONTRACT + "API.Models.PhoneChat.Bookings.Made"
BOOKINGS_NS = _DATACONTRACT + "API.Models.PhoneChat.Bookings"
PROFILE_NS = _DATACONTRACT + "API.Models.Profile"
PHONECHAT_NS = _DATACONTRACT + "API.Models.PhoneChat"


@attrs.frozen
class Inferred:
    """The wire names of a shape the vendor does not document (docs/api.md, "What is inferred")."""

    name: str
    namespace: str
    members: dict[str, str] = attrs.field(factory=dict)
    """attribute -> wire name, where the usual PascalCase rule is not the inference."""


#: Every inferred name, in one place: correct one here and both codecs follow.
INFERRED: dict[type, Inferred] = {
    MadeBookingsPage: Inferred("MadeBookingsPage", PHONECHAT_NS),
    UserBookingRequirements: Inferred(
        "UserBookingRequirements", PHONECHAT_NS, {"phone_chat_ppm": "PhoneChatPPM"}
    ),
    PhoneChatMethod: Inferred("PhoneChatMethod", PHONECHAT_NS),
}


class Kind(enum.Enum):
    """What a member holds, which decides how the XML codec reads and writes it."""

    SCALAR = "scalar"
    OBJECT = "object"  # a nested contract
    LIST = "list"  # a collection of a nested contract's items
    MAP = "map"  # HttpError's ModelState: one child element per key


@attrs.frozen
class Member:
    """One data member of a contract."""

    attribute: str
    wire: str
    namespace: str
    kind: Kind
    model: type | None
    """The nested model, for :attr:`Kind.OBJECT` members; the item's, for :attr:`Kind.LIST`."""
    inherited: bool
    """Declared on a base class, which DataContractSerializer writes first."""
    minutes: bool = False
    """A request datetime: server-local, written ``YYYY-MM-DD HH:MM`` (docs/api.md)."""

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
    inferred: bool = False
    """An undocumented shape: a reader depends on neither its root's name nor its namespace."""
    bare_list: str | None = None
    """The list member a bare list answer (``[...]``, ``ArrayOfMadeBooking``) fills, as one page."""
    bare_list_defaults: dict[str, Any] = attrs.field(factory=dict, eq=False)
    """The other members of a page a bare list stands for (page 1 of 1)."""

    by_attribute: dict[str, Member] = attrs.field(init=False, eq=False, repr=False)
    by_clark: dict[str, Member] = attrs.field(init=False, eq=False, repr=False)
    xml_order: tuple[Member, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "by_attribute", {m.attribute: m for m in self.members})
        object.__setattr__(self, "by_clark", {m.clark: m for m in self.members})
        order = sorted(self.members, key=lambda m: (not m.inherited, m.wire))
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
        if typing.get_origin(arg) is tuple:
            return Kind.LIST, typing.get_args(arg)[0]
    return Kind.SCALAR, None


def _contract(
    model: type,
    *,
    namespace: str,
    name: str | None = None,
    renames: dict[str, str] | None = None,
    inherited: tuple[str, ...] = (),
    inherited_namespace: str = "",
    request: bool = False,
    bare_list: str | None = None,
    bare_list_defaults: dict[str, Any] | None = None,
) -> Contract:
    inferred = INFERRED.get(model)
    renames = {**(inferred.members if inferred else {}), **(renames or {})}
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
                minutes=request and field.type in (datetime, datetime | None),
            )
        )
    return Contract(
        model=model,
        name=name or (inferred.name if inferred else model.__name__),
        namespace=namespace,
        members=tuple(members),
        inferred=inferred is not None,
        bare_list=bare_list,
        bare_list_defaults=bare_list_defaults or {},
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
        # ASP.NET's HttpError: its names, and its members' kinds, are here like any model's; its
        # layout is not a data contract's, and each codec reads and writes it with hooks of its own
        # (docs/api.md, "Error bodies").
        _contract(ErrorBody, namespace="", name="Error", renames={"inner": "InnerException"}),
        _contract(
            MadeBookingsPage,
            namespace=INFERRED[MadeBookingsPage].namespace,
            bare_list="bookings",
            bare_list_defaults={"page_count": 1, "page_number": 1},
        ),
        _contract(UserBookingRequirements, namespace=INFERRED[UserBookingRequirements].namespace),
        _contract(PhoneChatMethod, namespace=INFERRED[PhoneChatMethod].namespace),
        # Requests: JSON bodies and query strings, never XML (docs/api.md, "Hosts, versions, headers").
        *(
            _contract(request, namespace=PHONECHAT_NS, request=True)
            for request in (
                NoParameters,
                MadeBookingDetailsQuery,
                MadeBookingsQuery,
                UserBookingRequirementsQuery,
                RescheduleMadeBookingRequest,
                CancelMadeBookingRequest,
                CreateBookingRequest,
            )
        ),
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
