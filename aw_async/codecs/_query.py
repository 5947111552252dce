"""Query strings from request declarations, and back: the GET side of typed requests.

A GET's parameters are a request model (``MadeBookingsQuery``) whose contract names them, exactly
as a POST's JSON body is: :func:`encode_query` writes the wire names and text values (dates as
``YYYY-MM-DD``, request datetimes as ``YYYY-MM-DD HH:MM``, enums by value), leaving out None.
:func:`decode_query` reads them back into the model with the typing step for text, the one the
XML codec uses (a query value is text, like an XML element's), so the sandbox reads what the client
writes by the same declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ..errors import EncodeError
from ._contracts import contract_for
from ._scalars import InvalidValue, format_minutes, scalar_text
from ._structure import TEXT_STRUCTURER

__all__ = ["decode_query", "encode_query"]

T = TypeVar("T")


def encode_query(request: object) -> dict[str, str]:
    """The query parameters of a request model, by wire name; None members are left out.

    Raises:
        EncodeError: a value a query cannot carry.
    """
    contract = contract_for(type(request))
    params: dict[str, str] = {}
    for member in contract.members:
        value = getattr(request, member.attribute)
        if value is None:
            continue
        try:
            params[member.wire] = format_minutes(value) if member.minutes else scalar_text(value)
        except InvalidValue as exc:
            raise EncodeError(f"{member.wire}: {exc}") from exc
    return params


def decode_query(params: Mapping[str, str], into: type[T]) -> T:
    """The request model a query string carries; parameter names are matched case-insensitively,
    as ASP.NET's model binding matches them.

    Raises:
        DecodeError: a parameter is missing, or not of its member's form.
    """
    by_lower = {name.lower(): value for name, value in params.items()}
    values = {
        member.wire: by_lower[member.wire.lower()]
        for member in contract_for(into).members
        if member.wire.lower() in by_lower
    }
    return TEXT_STRUCTURER(values, into)  # the typing step for text, as the XML codec's
