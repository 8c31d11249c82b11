"""The download address policy: a pure classifier and a connect-time guard, no real network."""

from __future__ import annotations

import httpcore
import pytest

from handlers.media.addresses import BlockedAddress, GuardedBackend, is_blocked


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",  # loopback/private
        "169.254.169.254",
        "169.254.0.1",  # link-local, cloud metadata
        "224.0.0.1",
        "239.255.255.250",  # multicast
        "240.0.0.1",
        "255.255.255.255",  # reserved, broadcast
        "0.0.0.0",
        "100.64.0.1",
        "198.18.0.1",
        "192.0.2.1",  # unspecified, CGNAT, bench, doc
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "::ffff:100.64.0.1",
    ],
)
def test_non_public_addresses_are_blocked(address):
    assert is_blocked(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "::ffff:93.184.216.34",  # IPv4-mapped public address
        "64:ff9b::808:808",  # NAT64 (DNS64) form of 8.8.8.8
    ],
)
def test_public_addresses_pass(address):
    assert not is_blocked(address)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the socket layer: records where it was asked to connect, connects nowhere."""

    def __init__(self, refusing: tuple[str, ...] = ()) -> None:
        self.connects: list[tuple[str, int]] = []
        self.refusing = refusing

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port))
        if host in self.refusing:
            raise httpcore.ConnectError("connection refused")
        return object()

    async def sleep(self, seconds: float) -> None:
        pass


class FlippingResolver:
    """Answers a public address on the first lookup and loopback afterwards (DNS rebinding)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


async def test_guard_connects_to_the_address_it_checked():
    inner = RecordingBackend()
    resolver = FlippingResolver(["93.184.216.34"], ["127.0.0.1"])
    guard = GuardedBackend(inner, allow_private=False, resolver=resolver)
    await guard.connect_tcp("images.example", 443)
    # One lookup per connection, and the socket layer is handed the checked IP, never the
    # name, so the second (rebound) answer cannot be what gets connected to.
    assert resolver.lookups == ["images.example"]
    assert inner.connects == [("93.184.216.34", 443)]
    with pytest.raises(BlockedAddress, match="127.0.0.1"):
        await guard.connect_tcp("images.example", 443)
    assert inner.connects == [("93.184.216.34", 443)]


async def test_guard_refuses_when_any_answer_is_private():
    inner = RecordingBackend()
    guard = GuardedBackend(
        inner, allow_private=False, resolver=FlippingResolver(["93.184.216.34", "10.0.0.5"])
    )
    with pytest.raises(BlockedAddress, match="10.0.0.5"):
        await guard.connect_tcp("mixed.example", 80)
    assert inner.connects == []


async def test_guard_allows_private_when_configured():
    inner = RecordingBackend()
    guard = GuardedBackend(inner, allow_private=True, resolver=FlippingResolver(["127.0.0.1"]))
    await guard.connect_tcp("localhost", 8080)
    assert inner.connects == [("127.0.0.1", 8080)]


async def test_guard_refuses_unix_sockets():
    guard = GuardedBackend(RecordingBackend(), allow_private=True)
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_unix_socket("/var/run/docker.sock")


async def test_guard_tries_each_checked_address_in_turn():
    inner = RecordingBackend(refusing=("2606:4700::1111", "93.184.216.34"))
    answers = ["2606:4700::1111", "93.184.216.34", "1.1.1.1"]
    guard = GuardedBackend(inner, allow_private=False, resolver=FlippingResolver(answers))
    await guard.connect_tcp("images.example", 443)
    assert inner.connects == [(address, 443) for address in answers]


async def test_guard_reports_the_last_refusal_when_every_address_refuses():
    inner = RecordingBackend(refusing=("93.184.216.34", "1.1.1.1"))
    resolver = FlippingResolver(["93.184.216.34", "1.1.1.1"])
    guard = GuardedBackend(inner, allow_private=False, resolver=resolver)
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_tcp("images.example", 443)
    assert len(inner.connects) == 2
