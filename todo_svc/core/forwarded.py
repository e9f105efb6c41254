"""The client's address: the direct peer, or what a trusted proxy says in `X-Forwarded-For`."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

Network = IPv4Network | IPv6Network


def parse_networks(text: str) -> list[Network]:
    """`10.0.0.0/8, 192.168.1.7, ::1` → networks; a bad entry raises ValueError."""
    return [ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()]


class ClientAddress:
    """Finds who is calling.

    `X-Forwarded-For` is believed only when the direct peer is a trusted proxy,
    and then read from the right: each trusted proxy appends the address it saw,
    so the first untrusted hop from the right is the client. Entries to its
    left were written by the client and may be forged.
    """

    def __init__(self, trusted_proxies: Iterable[Network]) -> None:
        self._trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: str) -> bool:
        try:
            parsed: IPv4Address | IPv6Address = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self._trusted)

    def __call__(self, scope: Any) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops = [
            hop.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop if _is_address(hop) else peer
        return hops[0] if hops else peer


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
