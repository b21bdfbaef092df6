"""Who may read the reconciler's details: the hub's answer about a token, kept briefly.

What anyone can send must not grow the reconciler's memory or the hub's load:
- a token no hub issues (longer than `MAX_TOKEN`, or with characters outside the token
  alphabet) is refused without asking the hub;
- answers are kept in a bounded LRU (`max_entries`) for `ttl` seconds, accepted and refused
  alike, keyed by a SHA-256 digest: the token itself is never kept;
- the same unknown token sent many times at once is asked about once.

Plain logic with an injected clock, as `queue.py`; `service.py` gives it the hub's `whoami`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

# Hub tokens are hex or URL-safe base64, 32 to a few dozen characters; a configured service
# token is the admin's choice, so leave room, but nothing near a header's size.
MAX_TOKEN = 256
TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.~+/=]+")


class Verdict(Enum):
    MALFORMED = "malformed"  # refused without asking the hub
    CACHED_ALLOWED = "cached-allowed"
    CACHED_REFUSED = "cached-refused"
    HUB_ALLOWED = "hub-allowed"
    HUB_REFUSED = "hub-refused"

    @property
    def allowed(self) -> bool:
        return self in (Verdict.CACHED_ALLOWED, Verdict.HUB_ALLOWED)


def well_formed(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN and TOKEN_CHARS.fullmatch(token) is not None


@dataclass
class TokenCache:
    """digest -> (expiry, allowed), oldest use first; at most `max_entries`."""

    ttl: float = 60.0
    max_entries: int = 1024
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._entries: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> bool | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, digest: bytes, allowed: bool) -> None:
        self._entries[digest] = (self.clock() + self.ttl, allowed)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


Ask = Callable[[str], Awaitable[bool]]


class TokenCheck:
    """`check(token)`: may this token read the details? The hub is asked (through `ask`) only
    about a well-formed token it has not answered for within the TTL, one question per
    token at a time and at most `concurrency` questions at once."""

    def __init__(self, ask: Ask, cache: TokenCache | None = None, concurrency: int = 4):
        self.ask = ask
        self.cache = cache or TokenCache()
        self._asking: dict[bytes, asyncio.Future[bool]] = {}
        self._bound = asyncio.Semaphore(concurrency)

    async def check(self, token: str) -> Verdict:
        if not well_formed(token):
            return Verdict.MALFORMED
        digest = hashlib.sha256(token.encode()).digest()
        cached = self.cache.get(digest)
        if cached is not None:
            return Verdict.CACHED_ALLOWED if cached else Verdict.CACHED_REFUSED
        pending = self._asking.get(digest)
        if pending is not None:  # someone asks about it already: share the answer
            return Verdict.CACHED_ALLOWED if await asyncio.shield(pending) else Verdict.CACHED_REFUSED
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asking[digest] = future
        try:
            async with self._bound:
                allowed = await self.ask(token)
            self.cache.put(digest, allowed)
            future.set_result(allowed)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(e)
                future.exception()  # marked retrieved: the waiters (if any) get it raised
            raise
        finally:
            del self._asking[digest]
        return Verdict.HUB_ALLOWED if allowed else Verdict.HUB_REFUSED
