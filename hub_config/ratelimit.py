"""Per-client-address limits on sign-in attempts (docs/security.md): a sliding window per
address in a bounded LRU, and which address a request is from.

Nothing an unauthenticated caller sends is kept beyond the bound: at most `max_keys`
addresses, each with at most `rate.count` timestamps (the window's attempts). An address
pushed out of the LRU starts afresh; an attacker holding more than `max_keys` addresses
could do that on purpose, and meets NativeAuthenticator's per-account lockout instead.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from vocabulary.settings.hub import Rate

MAX_KEYS = 10_000  # addresses remembered at once: ~10k x count floats, a few MB at most
IPV6_PREFIX = 64  # one IPv6 subscriber gets a /64: its addresses count as one


class SlidingWindow:
    """At most `rate.count` attempts per key in any `rate.seconds`."""

    def __init__(self, rate: Rate, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._attempts)

    def acquire(self, key: str) -> tuple[float | None, float]:
        """Count an attempt by `key`: (None, its time) when allowed, else (seconds until the
        oldest attempt of the window expires, 0) and nothing is recorded."""
        now = self.clock()
        if not self.rate.count:
            return None, now
        window = self._attempts.get(key)
        if window is None:
            window = self._attempts[key] = deque(maxlen=self.rate.count)
            while len(self._attempts) > self.max_keys:
                self._attempts.popitem(last=False)  # the least recently seen address
        self._attempts.move_to_end(key)
        while window and window[0] <= now - self.rate.seconds:
            window.popleft()
        if len(window) >= self.rate.count:
            return max(window[0] + self.rate.seconds - now, 0.0), 0.0
        window.append(now)
        return None, now

    def refund(self, key: str, when: float) -> None:
        """Take back the attempt made at `when` (a successful login does not count)."""
        window = self._attempts.get(key)
        if window is not None and when in window:
            window.remove(when)


def retry_after(seconds: float) -> int:
    """The Retry-After header's whole seconds, never 0 (the window has not moved yet)."""
    return max(1, math.ceil(seconds))


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it (IPv4-mapped IPv6 as IPv4, no zone), or None."""
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """What the window counts by: the address, or an IPv6 address's /64."""
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


Networks = Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]


def client_address(peer: str, forwarded_for: list[str], trusted: Networks) -> str:
    """The address the platform can trust a request to come from.

    `peer` is the TCP peer of the hub. Only the hub's own proxy (configurable-http-proxy,
    beside the hub: a loopback peer) is believed about who it forwarded for: it appends the
    address it saw to X-Forwarded-For, so the last entry is that proxy's peer. Walking the
    header from the right, an entry that is a trusted proxy (`trusted`: Traefik in the
    compose deployment) is believed about the entry before it; the first entry that is not a
    trusted proxy is the client. Anything left of it is the client's own writing, never read.
    A peer that is not loopback reached the hub's port directly: it is the client."""
    peer_ip = parse_ip(peer)
    if peer_ip is None:
        return "unknown"
    if not peer_ip.is_loopback:
        return address_key(peer_ip)
    nets = list(trusted)
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    client = peer_ip
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            break  # an entry no proxy wrote: the last believed address stands
        client = ip
        if not any(ip.version == net.version and ip in net for net in nets):
            break
    return address_key(client)
