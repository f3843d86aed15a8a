"""Outgoing HTTP to addresses staff typed in (webhooks), with the standard library only.

A URL staff register could aim the service at its own network (the database, a metadata
service, an admin port on loopback). So, unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on:
- a URL whose host is a literal IP address must be a public one (checked on registration);
- at every request the host name is resolved, EVERY address it resolves to must be public,
  and the connection goes to one of those checked addresses (never resolved a second time,
  so a name that answers a public address to the check and a private one to the connect,
  "DNS rebinding", gets nowhere). TLS still checks the certificate against the host name.
Public is `ipaddress`'s `is_global` and not multicast: private, loopback, link-local,
shared (100.64/10), reserved, unspecified and IPv4-mapped forms of those are refused.

Timeouts are short (connect, then each read, and the whole exchange within both together) and
redirects are never followed: a 3xx is an answer like any other non-2xx. Only the first
`ANSWER_EXCERPT_BYTES` of an answer are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# What an attempt keeps of an answer's body, for staff (admin).
ANSWER_EXCERPT_BYTES = 1024
MAX_URL_LENGTH = 2000


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address outgoing requests may not reach."""


def refused_reason(address: str) -> str | None:
    """Why an IP address may not be reached ("loopback", "private", ...), or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if flag:
            return reason
    return None if ip.is_global else "not global"


def private_addresses_allowed() -> bool:
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES)


def validate_webhook_url(value: str) -> None:
    """A URL outgoing requests may be sent to: http or https (https only under
    WEBHOOK_HTTPS_ONLY), a host, no credentials or fragment, and not a literal private
    address. Host names are checked when a request is made (what they resolve to changes)."""
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(f"At most {MAX_URL_LENGTH} characters.", code="url_too_long")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"Not a valid URL: {exc}.", code="url_invalid") from None
    schemes = ("https",) if settings.WEBHOOK_HTTPS_ONLY else ("http", "https")
    if parts.scheme not in schemes:
        raise ValidationError(f"The URL must start with {' or '.join(s + '://' for s in schemes)}.", code="url_scheme")
    if not parts.hostname:
        raise ValidationError("The URL has no host.", code="url_invalid")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("The URL may not hold a user name or password.", code="url_credentials")
    if parts.fragment:
        raise ValidationError("The URL may not have a #fragment.", code="url_invalid")
    if port == 0:
        raise ValidationError("The URL's port must be 1 to 65535.", code="url_invalid")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValidationError("The URL may not hold spaces or control characters.", code="url_invalid")
    if private_addresses_allowed():
        return
    try:
        reason = refused_reason(parts.hostname)
    except ValueError:
        return  # a host name: checked when it is resolved
    if reason is not None:
        raise ValidationError(
            f"{parts.hostname} is a {reason} address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES is off).",
            code="url_private_address",
        )


def resolve_checked(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, all of them checked (AddressRefused if any is
    refused: a name with one private address among public ones is refused as a whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"could not resolve {host}: {exc.strerror}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not private_addresses_allowed():
        for address in addresses:
            reason = refused_reason(address)
            if reason is not None:
                raise AddressRefused(
                    f"{host} resolves to {address}, a {reason} address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES is off)"
                )
    return addresses


class _PinnedConnectionMixin:
    """An http.client connection that connects to addresses checked beforehand, in turn,
    instead of resolving its host again; the host still names the server (Host header, TLS)."""

    host: str
    port: int
    sock: Any

    def pin(self, addresses: list[str], read_timeout: float) -> None:
        self._addresses = addresses
        self._read_timeout = read_timeout
        self._create_connection = self._connect_pinned

    def _connect_pinned(self, address: tuple[str, int], timeout: float, source_address: Any = None) -> socket.socket:
        error: OSError | None = None
        for ip in self._addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error or OSError("no address to connect to")

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]  # http.client's, after this mixin
        self.sock.settimeout(self._read_timeout)


class PinnedHTTPConnection(_PinnedConnectionMixin, http.client.HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinnedConnectionMixin, http.client.HTTPSConnection):
    pass


@dataclass(frozen=True)
class Answer:
    """What a POST got: the status, the start of the body, and how long it took."""

    status: int
    excerpt: str
    location: str
    duration_ms: int


class RequestFailed(Exception):
    """No answer: the address was refused, or resolving, connecting, TLS or reading failed
    (timeouts included). `duration_ms`: how long it took to fail."""

    def __init__(self, message: str, duration_ms: int) -> None:
        super().__init__(message)
        self.duration_ms = duration_ms


def _connection(parts: SplitResult, addresses: list[str]) -> http.client.HTTPConnection:
    host = parts.hostname or ""
    connect_timeout = float(settings.WEBHOOK_CONNECT_TIMEOUT)
    connection: PinnedHTTPConnection | PinnedHTTPSConnection
    if parts.scheme == "https":
        connection = PinnedHTTPSConnection(
            host, parts.port, timeout=connect_timeout, context=ssl.create_default_context()
        )
    else:
        connection = PinnedHTTPConnection(host, parts.port, timeout=connect_timeout)
    connection.pin(addresses, float(settings.WEBHOOK_READ_TIMEOUT))
    return connection


class _Deadline:
    """Shuts a connection's socket once `seconds` have passed: per-read timeouts alone would
    let an answer that trickles in a byte at a time hold the worker indefinitely."""

    def __init__(self, seconds: float, connection: http.client.HTTPConnection) -> None:
        self.passed = False
        self._connection = connection
        self._timer = threading.Timer(seconds, self._abort)
        self._timer.daemon = True
        self._timer.start()

    def _abort(self) -> None:
        self.passed = True
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already

    def cancel(self) -> None:
        self._timer.cancel()


def _printable(text: str) -> str:
    # PostgreSQL text holds no NUL; an answer may.
    return text.replace("\x00", "\ufffd")


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` once: an `Answer` whatever its status (redirects are not
    followed), or RequestFailed when there is none. After resolving, the whole exchange must
    fit in the connect and read timeouts together, and each read in the read timeout."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    connection = deadline = None
    try:
        addresses = resolve_checked(parts.hostname or "", port)
        connection = _connection(parts, addresses)
        deadline = _Deadline(float(settings.WEBHOOK_CONNECT_TIMEOUT) + float(settings.WEBHOOK_READ_TIMEOUT), connection)
        connection.request("POST", path, body=body, headers={**headers, "Connection": "close"})
        response = connection.getresponse()
        excerpt = response.read(ANSWER_EXCERPT_BYTES)
        if deadline.passed:  # what was read was cut short by the shutdown: no answer
            raise RequestFailed("timed out (the whole answer took too long)", elapsed())
        return Answer(
            status=response.status,
            excerpt=_printable(excerpt.decode("utf-8", errors="replace")),
            location=_printable(response.getheader("Location") or ""),
            duration_ms=elapsed(),
        )
    except AddressRefused as exc:
        raise RequestFailed(f"refused: {exc}", elapsed()) from None
    except TimeoutError:
        raise RequestFailed("timed out", elapsed()) from None
    except (OSError, http.client.HTTPException) as exc:
        if deadline is not None and deadline.passed:
            raise RequestFailed("timed out (the whole answer took too long)", elapsed()) from None
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise RequestFailed(_printable(message), elapsed()) from None
    finally:
        if deadline is not None:
            deadline.cancel()
        if connection is not None:
            connection.close()
