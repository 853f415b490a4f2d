"""The SSRF guard for webhook URLs: which targets the server may call.

A webhook makes the server send requests to a URL its user chose, so a user could aim it
at what only the server can reach: loopback, the private network, link-local addresses
(the cloud metadata service at 169.254.169.254) and other non-public ranges. Only `http`
and `https` are allowed, and only public (globally routable) addresses, unless
`WEBHOOK_ALLOW_PRIVATE_TARGETS` is true (development and tests).

The host is checked twice: at subscription, when the URL names an address (or
`localhost`) the answer is known at once (a 422); and at every delivery, after resolving
the name, since DNS can change. The delivery then connects to the very address it checked
(`Target.address`), so a name that resolves differently a moment later (DNS rebinding)
cannot slip past.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

SCHEMES = ("http", "https")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTargetError(ValueError):
    """The URL may not be called; the message says why (shown to its owner)."""


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the URL's host name and the checked address for it."""

    host: str
    address: str
    port: int


def _private_allowed() -> bool:
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"])


def _check_address(address: IPAddress) -> None:
    # An IPv4 address written as IPv6 (::ffff:127.0.0.1) is that IPv4 address.
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if not address.is_global or address.is_multicast:
        raise RefusedTargetError(
            f"{address} is not a public address (loopback, private, link-local, metadata "
            "and other internal addresses are refused)."
        )


def _split(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
    except ValueError as error:  # an unbalanced IPv6 bracket, say: `https://]x`
        raise RefusedTargetError(f"The URL cannot be parsed: {error}.") from error
    if parts.scheme not in SCHEMES:
        raise RefusedTargetError("Only http and https URLs can receive webhooks.")
    if not parts.hostname:
        raise RefusedTargetError("The URL has no host.")
    if parts.username or parts.password:
        raise RefusedTargetError("Credentials in the URL are not accepted; use the signature.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise RefusedTargetError("The URL's port is not a number from 1 to 65535.") from error
    return parts.hostname, port


def check_url(url: str) -> None:
    """Refuse, at subscription, what can be known to be refused already."""
    host, _ = _split(url)
    if _private_allowed():
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise RefusedTargetError("localhost is not a public address.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked when it is resolved, at delivery
    _check_address(address)


def resolve(url: str) -> Target:
    """Resolve the URL's host now and pick the address to connect to; refuse the URL if
    any address of the name is not public (a name with one internal address is refused
    whole, so the pick cannot matter)."""
    host, port = _split(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedTargetError(f"Cannot resolve {host}: {error}") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise RefusedTargetError(f"{host} has no address.")
    if not _private_allowed():
        for address in addresses:
            _check_address(address)
    return Target(host=host, address=str(addresses[0]), port=port)
