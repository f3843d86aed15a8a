"""Throttles counted in Django's cache, so that every worker process sees the same counts
(the database cache by default, Redis when REDIS_URL is set), and the client's address.

A throttle allows `n` counted attempts per key in a window that starts at the key's first
counted attempt; past that, every attempt on the key is refused with 429 and `Retry-After`
until the window ends. Each attempt reserves its place in the count before it does its work
(checking a password), so a burst sent in parallel is counted one after another and cannot
get more answers than the limit; attempts that turn out not to count (a successful login, a
malformed request) give their place back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """`"10/minute"` -> (10, 60); `"0"` -> None (no limit). ValueError when malformed."""
    text = rate.strip().lower()
    if text == "0":
        return None
    count, _, unit = text.partition("/")
    seconds = UNITS.get(unit.strip().removesuffix("s"))
    if not count.strip().isdigit() or seconds is None:
        raise ValueError(f"expected N/second, N/minute, N/hour, N/day or 0, not {rate!r}")
    if int(count) == 0:
        return None
    return int(count), seconds


def hashed(value: str) -> str:
    """A fixed-length cache key part for user-supplied text (usernames of any length)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# --- the client's address -------------------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(request: HttpRequest) -> str:
    """The socket's peer (REMOTE_ADDR); when that is a trusted proxy (TRUSTED_PROXIES),
    X-Forwarded-For is walked from the right past every trusted proxy, and the first address
    no trusted proxy vouches for is the client. Anything left of it is the client's to forge."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = settings.TRUSTED_PROXY_NETWORKS
    if not networks:
        return remote
    forwarded = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = remote
    for hop in [remote, *reversed(forwarded)]:
        address = _address(hop)
        if address is None:
            break  # garbage in the header: the last hop we could read is the best we know
        client = str(address)
        if not any(address in network for network in networks):
            break
    return client


def address_key(address: str) -> str:
    """One counter per IPv4 address, and per /64 for IPv6 (one machine usually holds a /64)."""
    parsed = _address(address)
    if parsed is None:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


# --- counting -------------------------------------------------------------------------------


class Throttle:
    """Counted attempts per key, at the rate named by a setting (read at each use, so tests
    and operators can change it)."""

    def __init__(self, scope: str, rate_setting: str, *, code: str, detail: str):
        self.scope = scope
        self.rate_setting = rate_setting
        self.code = code
        self.detail = detail

    def rate(self) -> tuple[int, int] | None:
        from django.conf import settings

        return parse_rate(getattr(settings, self.rate_setting))

    def attempt(self, keys: Iterable[str]) -> Attempt:
        return Attempt(self, [f"throttle:{self.scope}:{key}" for key in keys])


class Attempt:
    """`with throttle.attempt(keys) as attempt:` reserves a place in every key's count or
    raises TooManyRequests; the place is kept only if `attempt.count()` was called."""

    def __init__(self, throttle: Throttle, keys: list[str]):
        self.throttle = throttle
        self.keys = keys
        self.rate = throttle.rate()
        self.reserved: list[str] = []
        self.counted = False

    def count(self) -> None:
        self.counted = True

    def __enter__(self) -> Attempt:
        if self.rate is None:
            return self
        from django.core.cache import cache

        limit, window = self.rate
        now = time.time()
        refused_for = 0.0
        for key in self.keys:
            # The window's end is stored beside the count, for Retry-After.
            cache.add(f"{key}:until", now + window, window)
            cache.add(key, 0, window)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr: a fresh window
                cache.set(key, 1, window)
                cache.set(f"{key}:until", now + window, window)
                count = 1
            self.reserved.append(key)
            if count > limit:
                until = cache.get(f"{key}:until") or now + window
                refused_for = max(refused_for, until - now)
        if refused_for:
            self._release()
            from sessions_project.errors import TooManyRequests

            retry_after = max(1, math.ceil(refused_for))
            raise TooManyRequests(
                f"{self.throttle.detail} Try again in {retry_after} seconds.",
                code=self.throttle.code,
                headers={"Retry-After": str(retry_after)},
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.counted:
            self._release()

    def _release(self) -> None:
        from django.core.cache import cache

        for key in self.reserved:
            try:
                cache.decr(key)
            except ValueError:  # the window ended meanwhile: nothing to give back
                pass
        self.reserved = []
