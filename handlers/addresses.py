"""Outbound address policy: which IPs image downloads may reach, enforced at connect time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

__all__ = ["BlockedAddress", "GuardedBackend", "Resolver", "is_blocked", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class BlockedAddress(Exception):
    """A download would connect to an address the policy forbids."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"blocked address: {host} resolves to non-public address {address}")
        self.host = host
        self.address = address


def is_blocked(address: str | IPAddress) -> bool:
    """True for loopback, private, link-local, multicast, reserved, unspecified and other
    non-global addresses, IPv4 and IPv6, looking through IPv4-mapped/compatible IPv6 forms."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and is_blocked(embedded):
            return True
        if ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IP literals resolve to themselves)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves once, checks every answer, and connects
    to the checked IP itself, so a DNS answer that changes after the check never counts."""

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._inner = inner
        self._allow_private = allow_private
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolver(host.strip("[]"), port)
        if not addresses:
            raise httpcore.ConnectError(f"no address found for {host}")
        if not self._allow_private:
            for address in addresses:
                if is_blocked(address):
                    raise BlockedAddress(host, address)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for image downloads")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
