"""Listen addresses and the address nsqd advertises to nsqlookupd.

NSQ advertises the OS hostname by default, which consumers in other containers or hosts
usually cannot resolve (nsqio/nsq#1173, the most reported deployment problem). pnsq advertises
an IP address instead, picked without sending a packet: the hostname's own address when it is
not loopback, else the source address the kernel would route public traffic from.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["default_broadcast_address", "split_host_port"]

# A documentation address (RFC 5737): reached through the default route like any public address,
# and never contacted, because connect() on a UDP socket only picks a route and sends nothing.
_ROUTE_PROBE = ("192.0.2.1", 9)


def split_host_port(addr: str) -> tuple[str, int]:
    """Split ``host:port``, ``[::1]:4150`` or ``:4150``; an empty host means all interfaces.

    Raises ValueError, like Go's ``net.SplitHostPort``, for a missing port, an unbracketed IPv6
    address or a port outside 0..65535.
    """
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ValueError(f"address {addr}: missing ']' in address")
        host, tail = addr[1:end], addr[end + 1 :]
        if not tail.startswith(":"):
            raise ValueError(f"address {addr}: missing port in address")
        port_text = tail[1:]
    else:
        host, sep, port_text = addr.rpartition(":")
        if not sep:
            raise ValueError(f"address {addr}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {addr}: too many colons in address")
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"address {addr}: invalid port {port_text!r}")
    return host, int(port_text)


def _usable(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def _hostname_address() -> str | None:
    """The first usable address the hostname resolves to, IPv4 first."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    candidates = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    candidates += [str(info[4][0]) for info in infos if info[0] == socket.AF_INET6]
    return next((address for address in candidates if _usable(address)), None)


def _route_source_address() -> str | None:
    """The local address the kernel would use to reach a public address, if any route exists."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE)
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return address if _usable(address) else None


def default_broadcast_address() -> str:
    """What nsqd advertises when --broadcast-address is not set (see the module docstring)."""
    return _hostname_address() or _route_source_address() or "127.0.0.1"
