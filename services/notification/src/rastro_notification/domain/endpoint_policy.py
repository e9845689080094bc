"""Which webhook endpoint URLs we are willing to call (DESIGN §7): the SSRF guard.

Always: scheme ``http`` or ``https`` (``https`` only when ``require_https``), a host, no credentials,
no whitespace, control characters or backslashes (URL parsers disagree about those, and a
disagreement between the parser that checks and the one that connects is how SSRF guards are
bypassed), and IPv4 only in dotted-decimal form (``2130706433``, ``0x7f.1`` or ``0177.0.0.1`` are
refused outright — their meaning depends on the parser).

Unless ``allow_private`` (development): no ``localhost`` / ``*.localhost`` / single-label or
``.local`` / ``.internal`` / ``.localdomain`` / ``.home.arpa`` names, and no address — written in the
URL or, when ``resolve`` is given, among *every* address the name resolves to (DNS rebinding) — that is
unspecified, loopback, link-local (incl. ``169.254.169.254``), multicast, private (RFC 1918,
``fc00::/7``) or otherwise not globally routable (CGNAT, documentation, reserved ranges). IPv6 forms
that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``) are judged by the embedded address.

``resolve(host)`` takes the ASCII (IDNA) host and returns its addresses as strings; it is injected so
this module stays pure. Its exceptions propagate to the caller.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

__all__ = ["EndpointRejected", "validate_address", "validate_endpoint_url"]

MAX_URL_LENGTH = 2048
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointRejected(ValueError):
    """An endpoint URL we refuse to call; ``reason`` says why, in words fit for an API error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_endpoint_url(
    url: str,
    *,
    allow_private: bool,
    require_https: bool,
    resolve: Callable[[str], list[str]] | None = None,
) -> str:
    """``url`` unchanged when it may be called; raises ``EndpointRejected`` otherwise."""
    parts = _split(url, require_https=require_https)
    host = _ascii_host(parts)
    literal = _parse_ip_literal(host)
    if allow_private:
        return url
    if literal is not None:
        validate_address(str(literal))
        return url
    _reject_internal_name(host)
    if resolve is not None:
        addresses = resolve(host)
        if not addresses:
            raise EndpointRejected(f"host {host!r} does not resolve to any address")
        for address in addresses:
            validate_address(address, host=host)
    return url


def validate_address(address: str, *, host: str | None = None) -> None:
    """Raise ``EndpointRejected`` unless ``address`` is a globally routable unicast IP address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError as exc:
        raise EndpointRejected(f"{address!r} is not an IP address") from exc
    kind = _forbidden_kind(ip)
    if kind is not None:
        where = f"host {host!r} resolves to" if host else "address"
        raise EndpointRejected(f"{where} {address}, a {kind} address")


def _forbidden_kind(ip: IPAddress) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            kind = _forbidden_kind(embedded)
            return None if kind is None else f"{kind} (embedded in IPv6)"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)),
        ("reserved or non-global", ip.is_reserved or not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _split(url: str, *, require_https: bool) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise EndpointRejected(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(url):
        raise EndpointRejected("URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed or out-of-range port
    except ValueError as exc:
        raise EndpointRejected(f"URL is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise EndpointRejected("URL scheme must be http or https")
    if require_https and scheme != "https":
        raise EndpointRejected("URL scheme must be https")
    if "@" in parts.netloc:
        raise EndpointRejected("URL may not contain credentials")
    if not parts.hostname:
        raise EndpointRejected("URL has no host")
    return parts


def _ascii_host(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        return host  # an IPv6 literal (urlsplit took the brackets off); ipaddress checks it
    try:
        # IDNA 2003 nameprep folds look-alikes (fullwidth "ｌocalhost", "１２７.０.０.１") to ASCII.
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise EndpointRejected("host is not a valid domain name") from exc
    host = host.removesuffix(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise EndpointRejected(f"host {host!r} is not a valid domain name")
    return host


def _parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally, or None for a domain name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError as exc:
            raise EndpointRejected(f"host {host!r} is not a valid IPv6 address") from exc
    labels = host.split(".")
    # As in the WHATWG URL standard: a host whose last label is numeric is an IPv4 address.
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    try:
        canonical = ipaddress.IPv4Address(host)
    except ValueError:
        raise EndpointRejected(_explain_odd_ipv4(host, labels)) from None
    return canonical


def _explain_odd_ipv4(host: str, labels: list[str]) -> str:
    value = _legacy_ipv4_value(labels)
    if value is None:
        return f"host {host!r} is not a valid IPv4 address"
    meant = ipaddress.IPv4Address(value)
    kind = _forbidden_kind(meant)
    what = f"{meant}, a {kind} address" if kind else str(meant)
    return f"host {host!r} is IPv4 in a non-dotted-decimal form ({what}); write it as a.b.c.d"


def _legacy_ipv4_value(labels: list[str]) -> int | None:
    """Decode the inet_aton forms (decimal, 0x hex, 0-octal, 1 to 4 parts) as the resolver would."""
    if len(labels) > 4:
        return None
    numbers = [_legacy_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    parts = [n for n in numbers if n is not None]
    if any(n > 255 for n in parts[:-1]) or parts[-1] >= 256 ** (5 - len(parts)):
        return None
    return sum(n << (8 * (3 - i)) for i, n in enumerate(parts[:-1])) + parts[-1]


def _legacy_number(label: str) -> int | None:
    try:
        if label[:2].lower() == "0x":
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label, 8)
        return int(label, 10)
    except ValueError:
        return None


def _reject_internal_name(host: str) -> None:
    if any(host == s or host.endswith("." + s) for s in _INTERNAL_SUFFIXES):
        raise EndpointRejected(f"host {host!r} is an internal name")
    if "." not in host:
        raise EndpointRejected(f"host {host!r} is not a fully qualified domain name")
