"""Connect to addresses vetted before the request, never to a second DNS answer.

The runner vets a user endpoint's addresses (``user_providers.check_endpoint``) right
before its request. If httpx then resolved the name itself, a DNS server answering a
public address to the check and an internal one to the connect (rebinding) would send
the request, and the user's key, inside our network. An httpx client made by
:func:`pinned_client` opens its TCP connection to one of the vetted addresses only,
trying them in order within the one connect timeout, while everything above TCP keeps
the URL's host: the ``Host`` header, TLS SNI and the certificate's name check.

httpx 0.28 has no public way to give its transport an httpcore network backend, so the
transport's connection pool is replaced by one built with the pinned backend; if httpx
ever stops having that pool, :func:`pinned_client` raises instead of silently
resolving again.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from typing import Iterable, Sequence

import httpcore
import httpx

__all__ = ["Address", "parse_addresses", "pinned_client", "shared_ssl_context"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One verified SSL context for every client the app makes to a provider or a webhook.

    Building one loads the CA bundle (~25 ms); a context is safe to share between clients
    and threads, and a runner makes dozens of requests."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def parse_addresses(addresses: Iterable[str | Address]) -> list[Address]:
    """IP addresses from their text form (what ``check_endpoint`` answers); ValueError else."""
    return [ipaddress.ip_address(str(address)) for address in addresses]


class _PinnedBackend(httpcore.SyncBackend):
    """A TCP backend that connects to ``addresses`` whatever it is asked to resolve.

    Only ``host`` may be asked for: a client of one endpoint never needs another, and
    refusing keeps the pin from applying to a name nobody vetted.
    """

    def __init__(self, host: str, addresses: Sequence[Address]) -> None:
        self._host = host.lower()
        self._addresses = tuple(addresses)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != self._host:
            raise httpcore.ConnectError(f"no vetted address for host {host!r}")
        until = None if timeout is None else time.monotonic() + timeout
        failure: Exception = httpcore.ConnectError("no vetted address to connect to")
        for address in self._addresses:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                raise httpcore.ConnectTimeout(f"connect timed out trying {host}'s vetted addresses")
            try:
                return super().connect_tcp(
                    str(address), port, timeout=left, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure


def pinned_client(host: str, addresses: Sequence[Address], ssl_context: ssl.SSLContext) -> httpx.Client:
    """An httpx client whose connections go to ``addresses`` only, for URLs on ``host``.

    No redirects (a redirect could name another host) and no proxies from the
    environment (a proxy would resolve the name itself).
    """
    transport = httpx.HTTPTransport(verify=ssl_context, trust_env=False)
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):
        raise RuntimeError("httpx's transport has no connection pool to pin")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context, network_backend=_PinnedBackend(host, addresses)
    )
    return httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
