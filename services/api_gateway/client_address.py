"""The client's address behind proxies: what rate limits, logs and ``X-Forwarded-For`` upstream use.

The connecting peer is the client unless it is a trusted proxy (``TRUSTED_PROXY_CIDRS``, e.g. the
ingress controller's pods). From a trusted peer, ``X-Forwarded-For`` is read from the right: each hop
a trusted proxy appended is skipped, and the first address that is not a trusted proxy is the client.
Hops further left were written by the client itself and prove nothing. With nothing trusted (the
default), the header is ignored and a forged one changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "fd00::/8", "192.168.1.7"]`` -> networks; ValueError names a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class ClientAddress:
    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def trusts(self, peer: str) -> bool:
        """Whether the connecting peer is a trusted proxy (whose forwarding headers are believed)."""
        if not self.trusted:
            return False
        address = _address(peer)
        return address is not None and self._is_trusted(address)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address, given the peer's address and the ``X-Forwarded-For`` value(s)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            address = _address(hop)
            if address is None:
                # A trusted proxy passed on something that is no address: the last proxy we believe
                # is as close to the client as we can tell.
                return client
            client = str(address)
            if not self._is_trusted(address):
                return client
        return client  # every hop is a trusted proxy: the leftmost one
