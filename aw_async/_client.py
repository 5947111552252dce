"""``AdultWorkClient``: configuration, the session it owns or borrows, and its services."""

from __future__ import annotations

import enum
import ipaddress
import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._caller import Caller
from ._clock import SYSTEM_CLOCK, Clock
from ._credit_history import CreditHistoryService
from ._exchange import AiohttpExchange
from ._gate import Pacer, account_gate
from ._protocol import RequestSettings, api_root
from ._retry import RetryPolicy
from ._tokens import RefreshingToken, StaticToken, TokenProvider
from ._transport import Send, Transport
from ._version import __version__
from .codecs import Codec, JsonCodec, XmlCodec
from .codecs._base import CodecSet
from .errors import InsecureUrlError
from .journal import Journal
from .journal._open import open_journal
from .journal._rules import settle_seconds
from .phonechat import PhoneChatService

if TYPE_CHECKING:  # only the transport imports aiohttp's client at run time
    import aiohttp

__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "AdultWorkClient", "Format", "InsecureUrlError"]

#: The vendor's sandbox, used in every sample (docs/api.md).
SANDBOX_URL = "https://api-sandbox.adultwork.com"
#: Production. Not documented by the vendor; the obvious pattern, overridable with ``base_url``.
PRODUCTION_URL = "https://api.adultwork.com"


class Format(enum.StrEnum):
    """The body format the client asks for with ``Accept``."""

    JSON = "json"
    XML = "xml"


# A codec serves a format when it serves one of the built-in codec's media types for that format
# (docs/public-api.md, "Codecs").
_FORMAT_MEDIA_TYPES = {Format.JSON: JsonCodec.media_types, Format.XML: XmlCodec.media_types}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, *, allow_insecure_http: bool) -> None:
    """Refuse a URL that is not http(s), or plain http to a host that is not this machine: the bearer
    token (and, for the token endpoint, the client secret) would cross the network in clear.

    Raises:
        InsecureUrlError: plain http to another machine (a ``ValueError``).
        ValueError: not an http(s) URL at all.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise InsecureUrlError(what, url, parts.hostname)


def _accept_for(format: Format, codecs: Sequence[Codec]) -> str:
    served = _FORMAT_MEDIA_TYPES[format]
    for codec in codecs:
        if any(media_type.lower() in served for media_type in codec.media_types):
            return codec.media_types[0]
    raise ValueError(f"none of the codecs serves {format.value} ({', '.join(served)})")


class AdultWorkClient:
    """An asyncio client for the AdultWork.com REST API.

    >>> async with AdultWorkClient("access-token") as aw:           # doctest: +SKIP
    ...     booking = await aw.phonechat.reschedule_made_booking(1)

    Args:
        token: an access token, a :class:`StaticToken`, or a :class:`RefreshingToken`.
        base_url: the API's root (:data:`SANDBOX_URL` by default).
        format: the body format asked for in ``Accept``; answers are decoded by their
            ``Content-Type`` whatever was asked.
        api_key: sent as the ``apiKey`` query parameter when given.
        server_timezone: the zone of the server's suffix-less datetimes, used to decide whether a
            booking's session has passed.
        session: an ``aiohttp.ClientSession`` to share; it is never closed by the client. Without
            one the client creates its own on first use and closes it in :meth:`aclose`.
        timeout: seconds one try of a request may take, connection to last byte.
        max_retries: retries after the first try, for what may be retried (see README).
        user_agent: put before ``aw-async/<version>`` in ``User-Agent``.
        codecs: the codecs to use instead of the built-in JSON and XML ones.
        journal: where reschedule attempts are remembered (:mod:`aw_async.journal`). None (the
            default) is durable: a :class:`~aw_async.journal.SqliteJournal` at
            :func:`~aw_async.journal.default_journal_path`, shared by every client of the process
            that uses the default and by the user's other processes on the host. A path gives a
            :class:`~aw_async.journal.SqliteJournal` there, a ``postgresql://`` URL a
            :class:`~aw_async.journal.PostgresJournal` (one per process, shared by the clients that
            name it), ``"memory"`` a :class:`~aw_async.journal.MemoryJournal` of this client's own
            (tests, throwaway scripts); a :class:`~aw_async.journal.Journal` object is shared as it
            is and never closed here.
        max_rate: pace this client's requests to this many a second (with a burst of a second's
            worth, at most 10). Whatever it is, a 429 (or a 503 with ``Retry-After``) closes the
            account's gate, shared by the clients of the process with the same token and base URL:
            their requests wait until it opens. Without it, the gate learns a pace from the 429s
            of a busy account (docs/design.md, "Retries, the gate, the pace").
        trace_configs: aiohttp trace configs for the session the client creates (a borrowed
            session's own apply to it). No secret reaches them: see :mod:`aw_async._exchange`.
        allow_insecure_http: allow a plain ``http://`` base URL (or token URL) to a host other than
            this machine. Off, such a URL is refused: the token would travel in clear. TLS
            certificates are always verified.
        transport: one try of a request, instead of aiohttp (:class:`aw_async.testing.MockTransport`);
            ``session`` and ``trace_configs`` do not apply then, and it is never closed here.
        clock: what every wait is made on (:class:`aw_async.testing.VirtualClock` in a test).
    """

    def __init__(
        self,
        token: str | StaticToken | RefreshingToken,
        *,
        base_url: str = SANDBOX_URL,
        format: Format | str = Format.JSON,
        api_key: str | None = None,
        server_timezone: str = "Europe/London",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        user_agent: str | None = None,
        codecs: Sequence[Codec] | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        max_rate: float | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        allow_insecure_http: bool = False,
        transport: Send | None = None,
        clock: Clock | None = None,
    ) -> None:
        provider: TokenProvider = StaticToken(token) if isinstance(token, str) else token
        if not isinstance(provider, StaticToken | RefreshingToken):
            raise TypeError(
                f"token must be a str, StaticToken or RefreshingToken, got {type(token).__name__}"
            )
        check_url(base_url, "base_url", allow_insecure_http=allow_insecure_http)
        if isinstance(provider, RefreshingToken):
            check_url(provider.token_url, "token_url", allow_insecure_http=allow_insecure_http)
        try:
            self.format = Format(format.lower() if isinstance(format, str) else format)
        except ValueError:
            raise ValueError(f"format must be 'json' or 'xml', got {format!r}") from None
        try:
            zone = ZoneInfo(server_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown server_timezone {server_timezone!r}") from exc
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
        codec_list: list[Codec] = list(codecs) if codecs is not None else [JsonCodec(), XmlCodec()]
        agent = f"aw-async/{__version__}"
        self.base_url = base_url
        settings = RequestSettings(
            base_url=base_url,
            accept=_accept_for(self.format, codec_list),
            user_agent=f"{user_agent} {agent}" if user_agent else agent,
            api_key=api_key,
        )
        self._caller = Caller(
            transport=_transport(
                transport,
                session=session,
                timeout=timeout,
                trace_configs=trace_configs,
                retry=RetryPolicy(max_retries=max_retries),
                clock=clock or SYSTEM_CLOCK,
                max_rate=max_rate,
                root=settings.root,
                token=provider,
            ),
            token=provider,
            settings=settings,
            codecs=CodecSet(codec_list),
        )
        #: CreditHistory operations.
        self.credit_history = CreditHistoryService(self._caller)
        opened, self._release_journal = open_journal(journal)
        #: PhoneChat operations.
        self.phonechat = PhoneChatService(
            self._caller,
            self.credit_history,
            zone,
            journal=opened,
            api_root=api_root(base_url),
            settle=settle_seconds(timeout),
            wait_elsewhere=timeout,
            clock=self._caller.transport.clock,
        )

    def __repr__(self) -> str:
        return f"AdultWorkClient(base_url={self.base_url!r}, format={self.format.value!r})"

    @property
    def connections_in_use(self) -> int:
        """How many connections this client's session holds checked out right now: 0 whenever no
        request is in flight, whatever happened to the last one (a reset, a timeout, a cancel)."""
        return self._caller.transport.connections_in_use

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def journal(self) -> Journal:
        """Where this client's reschedule attempts are recorded."""
        return self.phonechat.journal

    async def aclose(self) -> None:
        """Close the HTTP session if the client created it (a shared session is left open); commit
        what the journal queued, and close it if this client was the last to use it (a journal
        object given to the client is the caller's to close)."""
        try:
            await self._caller.transport.close()
        finally:
            await self._release_journal()


def _transport(
    exchange: Send | None,
    *,
    session: aiohttp.ClientSession | None,
    timeout: float,
    trace_configs: Sequence[aiohttp.TraceConfig],
    retry: RetryPolicy,
    clock: Clock,
    max_rate: float | None,
    root: str,
    token: TokenProvider,
) -> Transport:
    """The transport of one client: its exchange (aiohttp's unless one is given), the account's
    gate, and the pace ``max_rate`` asks for."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    owned: AiohttpExchange | None = None
    if exchange is None:
        exchange = owned = AiohttpExchange(session=session, timeout=timeout, trace_configs=trace_configs)
    elif session is not None or trace_configs:
        raise ValueError("a transport replaces aiohttp: session and trace_configs do not apply to it")
    pacer = Pacer(max_rate, clock) if max_rate is not None else None
    return Transport(
        exchange,
        retry=retry,
        clock=clock,
        gate=account_gate(root, token, clock),
        gate_root=root + "/",
        pacer=pacer,
        close_exchange=owned.close if owned is not None else None,
        connections_in_use=(lambda: owned.connections_in_use) if owned is not None else None,
    )
