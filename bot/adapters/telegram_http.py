"""The Bot API HTTP client: PTB's `HTTPXRequest`, minus a per-request cost of httpcore.

Before each request, and again when its response is closed, httpcore's connection pool asks
every pooled connection whether it has expired; for an idle HTTP/1.1 connection that means
`get_extra_info("is_readable")`, which with the anyio backend rebuilds the socket's whole
attribute table (`getpeername`, address parsing…) just to reach the raw socket. With a dozen
connections that was a fifth of the bot's CPU under load. Here each connection's stream
remembers its raw socket once; the readability check itself (a zero-timeout poll) is
unchanged, so connection reuse and expiry behave exactly as before.

The backend is installed on the client's own connection pool when the client is built (and
rebuilt after a shutdown); if httpx or httpcore change shape, the stock behaviour is kept.
"""

from __future__ import annotations

import logging
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

_UNSET = object()


class _Stream(httpcore.AsyncNetworkStream):
    """A network stream whose raw socket is looked up once."""

    __slots__ = ("_inner", "_socket")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: typing.Any = _UNSET

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return is_socket_readable(self._raw_socket())
        if info == "socket":
            return self._raw_socket()
        return self._inner.get_extra_info(info)

    def _raw_socket(self) -> typing.Any:
        if self._socket is _UNSET:
            self._socket = self._inner.get_extra_info("socket")
        return self._socket


class _Backend(httpcore.AsyncNetworkBackend):
    """Wraps httpcore's default backend; only the streams it returns differ."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install_backend(client: httpx.AsyncClient) -> bool:
    """Use `_Backend` in the client's connection pool (direct connections only)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool:  # proxies: left as they are
        return False
    inner = getattr(pool, "_network_backend", None)
    if inner is None or isinstance(inner, _Backend) or pool.connections:
        return False
    pool._network_backend = _Backend(inner)
    return True


class BotApiRequest(HTTPXRequest):
    """`HTTPXRequest` whose connection pool uses `_Backend`."""

    def _build_client(self) -> httpx.AsyncClient:
        client = super()._build_client()
        if not install_backend(client):
            log.debug("Bot API client: stock httpcore backend kept")
        return client
