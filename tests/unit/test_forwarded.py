"""Who is calling: X-Forwarded-For is believed only from a trusted proxy, and read from the right."""

from __future__ import annotations

from typing import Any

import pytest

from todo_svc.core.forwarded import ClientAddress, parse_networks

GATEWAY = "10.0.0.2"


def scope(peer: str | None, *forwarded_for: str) -> dict[str, Any]:
    return {
        "client": (peer, 51000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
    }


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddress([])(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    client_address = ClientAddress(parse_networks(GATEWAY))
    assert client_address(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_a_trusted_gateway_names_the_client() -> None:
    client_address = ClientAddress(parse_networks(GATEWAY))
    assert client_address(scope(GATEWAY, "198.51.100.1")) == "198.51.100.1"


def test_addresses_the_client_wrote_itself_are_not_believed() -> None:
    """The client sends a forged hop; the gateway appends the address it saw: that one counts."""
    client_address = ClientAddress(parse_networks(GATEWAY))
    assert client_address(scope(GATEWAY, "1.2.3.4, 198.51.100.1")) == "198.51.100.1"
    assert client_address(scope(GATEWAY, "1.2.3.4", "198.51.100.1")) == "198.51.100.1"  # split headers


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client() -> None:
    client_address = ClientAddress(parse_networks("10.0.0.0/8, fd00::/8"))
    assert client_address(scope("10.0.0.2", "1.2.3.4, 198.51.100.1, fd00::7, 10.1.1.1")) == "198.51.100.1"
    assert client_address(scope("10.0.0.2", "10.9.9.9")) == "10.9.9.9"  # only proxies: the first one


@pytest.mark.parametrize("forwarded", ["", "not-an-address", "198.51.100.1, <script>"])
def test_a_missing_or_garbled_hop_falls_back_to_the_peer(forwarded: str) -> None:
    client_address = ClientAddress(parse_networks(GATEWAY))
    headers = (forwarded,) if forwarded else ()
    assert client_address(scope(GATEWAY, *headers)) == GATEWAY


def test_ipv6_clients_and_a_missing_peer() -> None:
    client_address = ClientAddress(parse_networks("::1"))
    assert client_address(scope("::1", "2001:db8::5")) == "2001:db8::5"
    assert client_address(scope(None)) == "unknown"


def test_bad_networks_are_refused() -> None:
    with pytest.raises(ValueError, match="bogus"):
        parse_networks("10.0.0.0/8, bogus")
