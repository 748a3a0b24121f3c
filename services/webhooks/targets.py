"""Server-side request forgery guard for webhook target URLs.

A target is checked when a subscription is created and again on every delivery, and the delivery
connects to exactly the addresses that passed the check (the resolver below is the connector's
resolver), so a name that later re-resolves to an internal address (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL is malformed or points at an address webhooks may not reach."""


def refused_reason(ip: IPAddress) -> str | None:
    """Why this address may not be a webhook target, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
        if getattr(ip, f"is_{flag}"):
            return f"{ip} is a {flag.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def parse_target(url: str) -> tuple[str, int]:
    """(host, port) of an acceptable http(s) URL, or TargetRefused saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("target URL must use http or https")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("target URL must not contain credentials")
    if not parts.hostname:
        raise TargetRefused("target URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("target URL has an invalid port") from None
    return parts.hostname, port


def target_key(url: str) -> str:
    """What deliveries are limited and circuit-broken by: the URL's host[:port], lower-cased (the same
    text the migration derived for older subscriptions)."""
    return urlsplit(url).netloc.lower()


async def resolve_checked(host: str, port: int, allow_private: bool) -> list[ResolveResult]:
    """Resolve ``host`` and refuse it when any of its addresses is not public (unless allowed)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        infos = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
    else:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TargetRefused(f"target host {host!r} does not resolve: {exc.strerror or exc}") from None
        infos = [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in found]
    results: list[ResolveResult] = []
    for family, address in infos:
        reason = refused_reason(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason and not allow_private:
            raise TargetRefused(f"target host {host!r} resolves to a refused address: {reason}")
        results.append(
            ResolveResult(
                hostname=host, host=address, port=port, family=family, proto=0, flags=socket.AI_NUMERICHOST
            )
        )
    if not results:
        raise TargetRefused(f"target host {host!r} has no addresses")
    return results


async def check_target(url: str, allow_private: bool) -> None:
    host, port = parse_target(url)
    await resolve_checked(host, port, allow_private)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever hands the connector checked addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return await resolve_checked(host, port, self._allow_private)

    async def close(self) -> None:
        return None
