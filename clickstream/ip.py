"""Client IP addresses as the collector and the log importer store them (one spelling, and
the privacy truncation), so a pixel hit and its access-log line name the same client."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def canonical_ip(ip: str) -> str:
    """An IP address in one spelling: IPv4-mapped IPv6 (``::ffff:a.b.c.d``, as a
    dual-stack server or socket reports IPv4 clients) as the IPv4 address, IPv6 compressed
    and in lower case; anything else (``-``, a host name) unchanged."""
    if ":" not in ip:  # IPv4 has one spelling (ipaddress refuses leading zeros), or not an IP
        return ip
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


@lru_cache(maxsize=65536)
def truncate_ip(ip: str) -> str:
    """IPv4 to /24, IPv6 to /48; '' for a non-IP.  An IPv4-mapped IPv6 address is
    truncated as the IPv4 address it is."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)
