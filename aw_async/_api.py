"""One API call, end to end: token, request, transport, 401 handling, response.

The services call :meth:`Api.call` with an endpoint declaration and its parameters; everything
between that and a typed result (or a typed error) happens here and in the layers below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ._endpoints import Endpoint
from ._protocol import RequestSettings, build_request, decipher_response
from ._tokens import TokenProvider
from ._transport import Transport
from .codecs import CodecSet

__all__ = ["Api"]

R = TypeVar("R")


class Api:
    """Calls endpoints with one client's settings, token, transport and codecs."""

    def __init__(
        self, *, transport: Transport, token: TokenProvider, settings: RequestSettings, codecs: CodecSet
    ) -> None:
        self.transport = transport
        self.token = token
        self.settings = settings
        self.codecs = codecs

    async def call(
        self, endpoint: Endpoint[R], params: Mapping[str, int | str], *, as_user: int | None = None
    ) -> R:
        """Call ``endpoint`` and return its typed answer.

        A 401 gets one more try after the token provider replaces the refused token (a 401 means
        the request was not processed, so this holds for RescheduleMadeBooking too).

        Raises:
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        send = self.transport.send
        token = await self.token.access_token(send)
        request = build_request(endpoint, params, settings=self.settings, token=token, as_user=as_user)
        response = await send(request)
        if response.status == 401 and await self.token.replace_rejected(token, send):
            token = await self.token.access_token(send)
            request = build_request(endpoint, params, settings=self.settings, token=token, as_user=as_user)
            response = await send(request)
        return decipher_response(endpoint, request, response, self.codecs)
