"""``SandboxServer``: the API's endpoints over real HTTP on loopback, for tests and first steps.

It routes by the library's own endpoint declarations (case-insensitively, as Web API does), checks
tokens and scopes, reads each request by its endpoint's request declaration (the query string of a
GET, the JSON body of a POST: the same contracts the client writes them with), dispatches through a
table of handlers keyed by declaration (:mod:`._handlers`; no handler, or no declaration: 501),
answers in JSON or DataContract XML as ``Accept`` asks (UTF-16 when ``Accept-Charset`` asks),
encodes with the library's own codecs, and writes Web API's ``HttpError`` bodies. Faults are
injected on demand (:mod:`._faults`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

import attrs
from aiohttp import web

from .._endpoints import ENDPOINTS, Endpoint
from ..codecs import JsonCodec, XmlCodec
from ..codecs._query import decode_query
from ..errors import DecodeError
from ..models import ErrorBody, MadeBooking, UserBookingRequirements
from ._faults import Faults, RateLimit, answer_instead, answer_partly
from ._handlers import HANDLERS
from ._state import ALL_SCOPES, RefreshGrant, SandboxRefusal, SandboxState, TokenGrant

__all__ = ["SandboxServer", "SeenRequest"]

_CODECS: dict[str, JsonCodec | XmlCodec] = {"json": JsonCodec(), "xml": XmlCodec()}
#: The format of each media type an ``Accept`` may name: the codecs' own, and wildcards.
_MEDIA_FORMATS = {
    **{media_type: format for format, codec in _CODECS.items() for media_type in codec.media_types},
    "*/*": "json",
    "application/*": "json",
    "text/*": "json",
}
#: The media type of each format's answers when ``Accept`` names none of its own.
_DEFAULT_MEDIA = {format: codec.media_types[0] for format, codec in _CODECS.items()}
_DENIED = "Authorization has been denied for this request."
_ANSWERS_INSTEAD = ("rate_limit", "server_error", "answer", "reset")  # faults that replace the answer


@attrs.frozen
class SeenRequest:
    """A request the sandbox received (for tests that count what reached the server)."""

    method: str
    path: str
    query: str


def _negotiate(accept: str | None, default: str) -> tuple[str, str]:
    """(format, media type) for an ``Accept`` header: the supported type of highest quality; the
    ``default`` format when nothing supported is asked for, as Web API's first formatter does."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept or "").split(",")):
        media_type, *params = (part.strip() for part in item.split(";"))
        media_type = media_type.lower()
        if media_type not in _MEDIA_FORMATS:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > (best[0], -best[1])):
            best = (quality, position, media_type)
    if best is None or best[2].endswith("*"):
        return default, _DEFAULT_MEDIA[default]
    return _MEDIA_FORMATS[best[2]], best[2]


def _wants_utf16(accept_charset: str | None) -> bool:
    first = (accept_charset or "").split(",")[0].split(";")[0].strip().lower()
    return first in ("utf-16", "utf-16le")


class SandboxServer:
    """An emulator of the AdultWork API on a loopback port.

    >>> async with SandboxServer() as sandbox:                               # doctest: +SKIP
    ...     sandbox.add_token("t", user_id=1)
    ...     async with AdultWorkClient("t", base_url=sandbox.url) as aw: ...

    It starts empty; seed it with :meth:`add_token`, :meth:`set_balance` and :meth:`add_booking`.

    Attributes:
        url: the base URL to pass as ``base_url`` (set once started).
        faults: faults to inject (:class:`~aw_async.sandbox.Faults`).
        requests: every request received, in order.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, server_timezone: str = "Europe/London"
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(ZoneInfo(server_timezone))
        self.faults = Faults()
        self.requests: list[SeenRequest] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._late: set[asyncio.Future[None]] = set()  # requests to be processed later (a "late" fault)
        self._rate_limit: RateLimit | None = None
        #: The format of an answer to a request whose ``Accept`` names none the sandbox serves
        #: (``"json"``, as Web API's first formatter; or ``"xml"``).
        self.default_format = "json"

    # --- seeding and inspecting -------------------------------------------------------------------

    def add_token(
        self,
        token: str,
        *,
        user_id: int,
        scopes: Iterable[str] = ALL_SCOPES,
        group_members: Iterable[int] = (),
    ) -> None:
        """Accept ``token`` as ``user_id``'s, with ``scopes``, managing ``group_members``."""
        self.state.add_token(token, user_id=user_id, scopes=scopes, group_members=group_members)

    def add_refresh_token(
        self,
        refresh_token: str,
        *,
        client_id: str,
        client_secret: str,
        user_id: int,
        scopes: Iterable[str] = ALL_SCOPES,
        group_members: Iterable[int] = (),
        expires_in: int = 1200,
    ) -> None:
        """Accept ``refresh_token`` at :attr:`token_url` from the application ``client_id``.

        Each refresh revokes it and gives a new refresh token, and an access token that lives
        ``expires_in`` seconds (the real server's is 20 minutes: docs/api.md, "Access tokens")."""
        grant = TokenGrant(user_id, frozenset(scopes), frozenset(group_members))
        self.state.refresh_tokens[refresh_token] = RefreshGrant(client_id, client_secret, grant, expires_in)

    def expire_token(self, token: str) -> None:
        """Make an access token expire now: the next request with it gets a 401, and a
        :class:`~aw_async.RefreshingToken` refreshes."""
        grant = self.state.tokens[token]
        self.state.tokens[token] = attrs.evolve(grant, expires_at=datetime.now(UTC))

    def revoke_token(self, token: str) -> None:
        """Forget an access token, or a refresh token: it is refused from now on."""
        self.state.tokens.pop(token, None)
        self.state.refresh_tokens.pop(token, None)

    @property
    def token_url(self) -> str:
        """The sandbox's OAuth token endpoint, for :class:`~aw_async.RefreshingToken`."""
        return f"{self.url}/OAuth/token"

    def set_balance(self, user_id: int, credits: Decimal) -> None:
        """Set a user's credit balance."""
        self.state.balances[user_id] = Decimal(credits)

    def get_balance(self, user_id: int) -> Decimal:
        """A user's credit balance (0 if never set)."""
        return self.state.balances.get(user_id, Decimal(0))

    def add_booking(self, booking: MadeBooking, *, client_user_id: int) -> None:
        """Store a booking made by ``client_user_id``. A naive datetime in it is the server's local
        time (``server_timezone``), as the real server writes it.

        Raises:
            ValueError: the sandbox itself already gave that id to a booking it created.
        """
        self.state.add_booking(booking, client_user_id=client_user_id, seeded=True)

    def get_booking(self, booking_id: int) -> MadeBooking | None:
        """A stored booking, or None."""
        return self.state.bookings.get(booking_id)

    def bookings_of(self, user_id: int) -> list[MadeBooking]:
        """Every booking the server holds for ``user_id`` (the user who made them), by id."""
        return self.state.bookings_of(user_id)

    def set_requirements(self, book_user_id: int, requirements: UserBookingRequirements) -> None:
        """Let ``book_user_id`` take PhoneChat bookings, with these requirements (a user with none
        set does not offer PhoneChat: CreateBooking with them is refused)."""
        self.state.requirements[book_user_id] = requirements

    def reschedule_count(self, booking_id: int) -> int:
        """How many times the server rescheduled ``booking_id``."""
        return len(self.state.rescheduled.get(booking_id, ()))

    def rescheduled(self, booking_id: int) -> list[int]:
        """The ids of the bookings ``booking_id`` was rescheduled into, oldest first."""
        return list(self.state.rescheduled.get(booking_id, ()))

    def limit_rate(self, per_second: float, *, burst: int = 10) -> None:
        """Throttle each token to ``per_second`` requests, after a burst of ``burst``: a request
        beyond it is not processed, and gets a 429 with ``Retry-After`` (whole seconds) and a Web
        API error body, as an ASP.NET Web API throttle answers. A new call replaces the limit."""
        self._rate_limit = RateLimit(per_second, burst=burst)

    @property
    def rate_limited(self) -> int:
        """How many requests the rate limit (:meth:`limit_rate`) answered with a 429."""
        return self._rate_limit.refused if self._rate_limit is not None else 0

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving; :attr:`url` is set when this returns."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: handlers still holding back an answer (a delay fault) are cancelled
        # instead of waited for, so closing a sandbox is prompt. An answer being written needs
        # only milliseconds on loopback.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.05)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving and close every connection (requests still to be processed late are dropped)."""
        for later in list(self._late):
            later.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- handling ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._serve(request)
        except ConnectionError:
            # The client went away mid-request (a test that cancels, a timeout): nothing to answer,
            # and nothing wrong with the sandbox. Without this, aiohttp prints a full traceback.
            return web.Response(status=499)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(SeenRequest(request.method, request.path, request.query_string))
        if self._rate_limit is not None:
            throttled = self._throttle(request, self._rate_limit)
            if throttled is not None:
                return throttled
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.when == "late":  # lost now, processed later
            body = await request.read()
            later = asyncio.ensure_future(self._process_later(request, body, fault.seconds))
            self._late.add(later)
            later.add_done_callback(self._late.discard)
            return await answer_instead(request, attrs.evolve(fault, kind="reset"), self._encode)
        if fault is not None and fault.when == "before" and fault.kind in _ANSWERS_INSTEAD:
            return await answer_instead(request, fault, self._encode)
        if fault is not None and fault.kind == "delay" and fault.when == "before":
            await asyncio.sleep(fault.seconds)
        if request.path.lower() == "/oauth/token" and request.method == "POST":
            status, body, content_type = await self._token(request)
        else:
            status, value = self._answer(request, await request.read())
            body, content_type = self._encode(request, value)
        if fault is not None:
            if fault.kind in _ANSWERS_INSTEAD:
                return await answer_instead(
                    request, fault, self._encode
                )  # processed, then the answer is lost
            if fault.kind == "delay" and fault.when == "after":
                await asyncio.sleep(fault.seconds)
            if fault.kind in ("truncate", "reset_body", "slow_body"):
                return await answer_partly(request, status, body, content_type, fault)
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    async def _process_later(self, request: web.Request, body: bytes, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._answer(request, body)

    def _throttle(self, request: web.Request, limit: RateLimit) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None  # the token endpoint, and requests refused as unauthorized anyway
        retry_after = limit.retry_after(token.strip())
        if retry_after is None:
            return None
        body, content_type = self._encode(request, ErrorBody(message=limit.message()))
        headers = {"Content-Type": content_type, "Retry-After": str(retry_after)}
        return web.Response(status=429, body=body, headers=headers)

    def _answer(self, request: web.Request, body: bytes) -> tuple[int, object]:
        try:
            endpoint = self._route(request)
            grant = self._authorize(request, endpoint)
            handler = HANDLERS.get(endpoint)
            if handler is None:
                raise _not_emulated(request)
            user_id = self._acting_user(request, endpoint, grant)
            return 200, handler(self.state, user_id, _read_request(endpoint, request, body))
        except SandboxRefusal as refusal:
            return refusal.status, ErrorBody(message=refusal.message, model_state=refusal.model_state)

    async def _token(self, request: web.Request) -> tuple[int, bytes, str]:
        """The OAuth token endpoint: (status, JSON body, Content-Type)."""
        form = {key: str(value) for key, value in (await request.post()).items()}
        try:
            status, document = 200, self.state.refresh(form)
        except SandboxRefusal as refusal:
            status, document = refusal.status, {"error": refusal.message}
        return status, json.dumps(document).encode(), "application/json; charset=utf-8"

    def _route(self, request: web.Request) -> Endpoint[Any]:
        path = request.path.lower()  # Web API's routing is case-insensitive (docs/api.md)
        known = False
        for endpoint in ENDPOINTS:
            if path in (endpoint.path.lower(), (endpoint.group_path or "").lower()):
                known = True
                if endpoint.method == request.method:
                    return endpoint
        if known:
            raise SandboxRefusal(
                405, f"The requested resource does not support http method '{request.method}'."
            )
        raise _not_emulated(request)

    def _authorize(self, request: web.Request, endpoint: Endpoint[Any]) -> TokenGrant:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self.state.grant_for(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            raise SandboxRefusal(401, _DENIED)
        if endpoint.scope not in grant.scopes:
            raise SandboxRefusal(403, _DENIED)
        return grant

    @staticmethod
    def _acting_user(request: web.Request, endpoint: Endpoint[Any], grant: TokenGrant) -> int:
        """The token's user, or on a group path the member the group manager named (``UserID``)."""
        if request.path.lower() != (endpoint.group_path or "").lower():
            return grant.user_id
        user_id = _int_parameter(request.query.get("UserID"), "UserID")
        if user_id not in grant.group_members:
            raise SandboxRefusal(403, f"You do not manage a group member with UserID {user_id}.")
        return user_id

    def _encode(self, request: web.Request, value: object) -> tuple[bytes, str]:
        format, media_type = _negotiate(request.headers.get("Accept"), self.default_format)
        body = _CODECS[format].encode(value)
        if _wants_utf16(request.headers.get("Accept-Charset")):
            # What .NET writes when asked for UTF-16: little-endian, with a BOM (docs/wire.md).
            return b"\xff\xfe" + body.decode("utf-8").encode("utf-16-le"), f"{media_type}; charset=utf-16"
        return body, f"{media_type}; charset=utf-8"


def _int_parameter(value: str | None, name: str) -> int:
    if value is None:
        raise SandboxRefusal(400, "The request is invalid.", {name: [f"The {name} field is required."]})
    try:
        return int(value)
    except ValueError:
        raise SandboxRefusal(
            400, "The request is invalid.", {name: [f"The value '{value}' is not valid for {name}."]}
        ) from None


def _read_request(endpoint: Endpoint[Any], request: web.Request, body: bytes) -> object:
    """The request model, read by the endpoint's own declaration: the query string of a GET, the
    JSON body of a POST. What does not fit is Web API's 400 with a ModelState entry."""
    if endpoint.method == "GET":
        try:
            return decode_query(request.query, endpoint.request)
        except DecodeError as exc:  # Web API's model binding words it so, keyed by the parameter
            name = exc.path or "request"
            value = {k.lower(): v for k, v in request.query.items()}.get(name.lower())
            message = (
                f"The {name} field is required."
                if value is None
                else (f"The value '{value}' is not valid for {name}.")
            )
            raise SandboxRefusal(400, "The request is invalid.", {name: [message]}) from None
    try:
        return _CODECS["json"].decode(body, endpoint.request)
    except DecodeError as exc:
        field = f"request.{exc.path}" if exc.path else "request"
        raise SandboxRefusal(400, "The request is invalid.", {field: [exc.message]}) from None


def _not_emulated(request: web.Request) -> SandboxRefusal:
    return SandboxRefusal(501, f"The sandbox does not emulate {request.method} {request.path}.")
