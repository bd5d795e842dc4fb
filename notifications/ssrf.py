"""SSRF guard for webhook targets: every address a host resolves to must be public.

Checked when an endpoint is saved and again at every delivery, and the delivery connects to the
address that was checked (not to a second DNS answer), so DNS rebinding cannot reach inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 500


class TargetRefused(Exception):
    """The URL is malformed, or points at a loopback / private / otherwise non-public address."""


@dataclass(frozen=True)
class ResolvedTarget:
    scheme: str
    host: str
    port: int
    address: str  # the checked IP the request must connect to

    def pinned_url(self, original: str) -> str:
        """The URL with its host replaced by the checked address."""
        parts = urlsplit(original)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        if parts.port:
            netloc += f":{parts.port}"
        return parts._replace(netloc=netloc).geturl()


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> tuple[str, str, int]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"a URL of at most {MAX_URL_LENGTH} characters is required")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed (they would be stored and logged)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_target(url: str, *, allow_private: bool | None = None) -> ResolvedTarget:
    """Parse, resolve and check `url`; raise TargetRefused naming why."""
    scheme, host, port = parse_url(url)
    allow = settings.WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    if not allow:
        for address in addresses:
            if not _is_public(ipaddress.ip_address(address)):
                raise TargetRefused(
                    f"the host {host!r} resolves to {address}, a loopback, private or reserved address; "
                    "webhook targets must be public")
    return ResolvedTarget(scheme=scheme, host=host, port=port, address=addresses[0])
