"""Which IP addresses a server-side fetch may connect to.

The image URLs come from an answer's content, that is from the web: a fetch must never reach
the machine itself, the private network it sits in, or the cloud metadata service. The check
runs on the *resolved* address (the one the socket connects to), so every spelling of a host
(``localhost``, ``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``) meets the same rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable

from .errors import AddressRefused, Unreachable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 (RFC 6052) and its local-use prefix (RFC 8215) embed an IPv4 address in the last
# 32 bits; Python counts 64:ff9b::/96 as global whatever the embedded address is.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Shared address space for carrier-grade NAT: not private by RFC 1918, not public either.
_SHARED = ipaddress.ip_network("100.64.0.0/10")

# Kinds the "allow private" setting (demo, tests) lets through. Link-local (cloud metadata),
# multicast, unspecified and reserved stay refused even then: nothing legitimate lives there.
PRIVATE_KINDS = frozenset({"loopback", "private"})
KINDS = frozenset(
    {"loopback", "private", "link-local", "multicast", "reserved", "unspecified", "teredo"}
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries, for the forms that reach IPv4 hosts."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(address: str | IPAddress) -> str:
    """``"public"``, or the kind of non-public address this is.

    Kinds: unspecified, loopback, link-local, multicast, reserved, private, teredo.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "link-local"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return classify(embedded)
        if ip.teredo is not None:
            # A tunnel to an IPv4 host we cannot vet from here.
            return "teredo"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
        return "private"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "private"
    if not ip.is_global:
        return "reserved"
    return "public"


def vet(addresses: Iterable[str], *, allow: Collection[str] = ()) -> list[str]:
    """The addresses, in order, if every one may be reached; else AddressRefused.

    Public addresses may always be reached; ``allow`` adds non-public kinds (``KINDS``).

    One bad address refuses the whole host: a name that answers with both a public and a
    private address is either misconfigured or an attack, and picking the good one would
    leave which address is used to chance.
    """
    allowed = {"public", *allow}
    vetted: list[str] = []
    for address in addresses:
        kind = classify(address)
        if kind not in allowed:
            raise AddressRefused(address, kind)
        vetted.append(address)
    if not vetted:
        raise Unreachable("The image host has no address.")
    return vetted
