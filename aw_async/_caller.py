"""One API call, end to end: token, request, transport, 401 handling, response.

The services call :meth:`Caller.call` with an endpoint declaration and its parameters; everything
between that and a typed result (or a typed error) happens here and in the layers below.

:meth:`Caller.call` is also the boundary every call crosses on its way out: the layers below map
what they foresee (the transport, the network's failures; the protocol, the server's answers),
and whatever else still comes up (a bug, a plugged-in codec's own exception) is mapped here to an
:class:`~aw_async.errors.AdultWorkError`, with secrets scrubbed from the whole chain. A request
that changes state and may have left is reported as :class:`~aw_async.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._endpoints import Endpoint
from ._protocol import RequestSettings, build_request, decipher_response
from ._redact import redact, scrub_exception, stand_in
from ._server_clock import ServerClock
from ._tokens import TokenProvider
from ._transport import Transport
from .codecs._base import CodecSet
from .errors import AdultWorkError, OutcomeUnknownError, UnexpectedError
from .journal import AttemptState, outcome_of

__all__ = ["Caller"]

R = TypeVar("R")


class Caller:
    """Calls endpoints with one client's settings, token, transport and codecs."""

    def __init__(
        self, *, transport: Transport, token: TokenProvider, settings: RequestSettings, codecs: CodecSet
    ) -> None:
        self.transport = transport
        self.token = token
        self.settings = settings
        self.codecs = codecs
        #: The server's clock, as its answers' ``Date`` headers show it.
        self.server_clock = ServerClock()

    async def call(
        self,
        endpoint: Endpoint[R],
        params: object,
        *,
        as_user: int | None = None,
        not_after: float | None = None,
    ) -> R:
        """Call ``endpoint`` with ``params`` (its request model) and return its typed answer.

        A 401 gets one more try after the token provider replaces the refused token (a 401 means
        the request was not processed, so this holds for RescheduleMadeBooking too). ``not_after``
        (a reading of the elapsed clock) is the latest a try may leave: past it, nothing is sent.

        Raises:
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        secrets: tuple[str, ...] = ()
        sent = False
        unexpected: Exception | None = None
        try:
            send = self.transport.send
            token = await self.token.access_token(send)
            request = build_request(
                endpoint, params, settings=self.settings, token=token, as_user=as_user, not_after=not_after
            )
            secrets = request.secrets
            sent = True
            response = await send(request)
            if response.status == 401 and await self.token.replace_rejected(token, send):
                token = await self.token.access_token(send)
                request = build_request(
                    endpoint,
                    params,
                    settings=self.settings,
                    token=token,
                    as_user=as_user,
                    not_after=not_after,
                )
                secrets = request.secrets
                response = await send(request)
            self.server_clock.observe(response.headers.get("Date"))
            return decipher_response(endpoint, request, response, self.codecs, acting_for=as_user)
        except AdultWorkError as exc:
            scrub_exception(exc, (*secrets, *self._known_secrets()))
            raise
        except Exception as exc:  # CancelledError is a BaseException: never caught here
            unexpected = exc
        raise self._unexpected(endpoint, unexpected, (*secrets, *self._known_secrets()), sent=sent)

    def _known_secrets(self) -> tuple[str, ...]:
        return (*self.token.secrets(), *((self.settings.api_key,) if self.settings.api_key else ()))

    @staticmethod
    def _unexpected(
        endpoint: Endpoint[Any], exc: Exception, secrets: tuple[str, ...], *, sent: bool
    ) -> AdultWorkError:
        what = redact(f"{type(exc).__name__}: {exc}", secrets)
        if outcome_of(exc, post_may_have_left=sent and not endpoint.idempotent) is AttemptState.UNKNOWN:
            error: AdultWorkError = OutcomeUnknownError(
                f"{endpoint.name} may have reached the server, and then an unexpected error came up"
                f" ({what}); it was not sent again: check its effect before retrying"
            )
        else:
            error = UnexpectedError(f"{endpoint.name} failed unexpectedly: {what}")
        error.__cause__ = stand_in(exc, secrets)
        return error
