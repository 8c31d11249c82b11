"""Outbound address policy: which IPs image downloads may reach, enforced at connect time."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

__all__ = ["BlockedAddress", "GuardedBackend", "Resolver", "is_blocked", "system_resolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix (DNS64)


class BlockedAddress(Exception):
    """A download would connect to an address the policy forbids."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"blocked address: {host} resolves to non-public address {address}")
        self.host = host
        self.address = address


def is_blocked(address: str | IPAddress) -> bool:
    """True for loopback, private, link-local, multicast, reserved, unspecified and other
    non-global addresses, IPv4 and IPv6. An IPv4-mapped or NAT64 address is judged by the IPv4
    address it wraps; a 6to4 or Teredo address is blocked when the IPv4 inside it is."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        wrapped = _wrapped_ipv4(ip)
        if wrapped is not None:
            return is_blocked(wrapped)
        tunnelled = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if tunnelled is not None and is_blocked(tunnelled):
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


def _wrapped_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address behind ::ffff:a.b.c.d (IPv4-mapped) or 64:ff9b::a.b.c.d (NAT64)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (IP literals resolve to themselves)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves once, checks every answer, and connects
    to the checked IPs themselves (each in turn until one accepts), so a DNS answer that
    changes after the check never counts. TLS still verifies the URL's host name: httpcore
    starts TLS on the returned stream with the origin's name as server_hostname."""

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
        addresses = await self._checked_addresses(host.strip("[]"), port)
        for address in addresses[:-1]:  # the next address gets its turn when one refuses
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
        return await self._inner.connect_tcp(
            addresses[-1], port, timeout, local_address, socket_options
        )

    async def _checked_addresses(self, host: str, port: int) -> list[str]:
        """Every address host resolves to, in resolver order.

        Raises:
            BlockedAddress: when any answer is non-public and private networks are not allowed.
            httpcore.ConnectError: when the name has no address.
        """
        addresses = await self._resolver(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"no address found for {host}")
        if not self._allow_private:
            for address in addresses:
                if is_blocked(address):
                    raise BlockedAddress(host, address)
        return addresses

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for image downloads")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
