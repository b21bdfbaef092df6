"""The work queue: keyed, de-duplicated, one worker per key, delayed retries with backoff.

Plain logic with an injectable clock, so it is tested without sleeping; `loop.py` drives it.
Semantics follow client-go's rate-limited work queue: a key added while it waits is
collapsed; a key added while it is being processed is processed once more afterwards.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

Key = Hashable


def jittered_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: after `failures` failures, a delay in
    [c/2, c] where c = min(cap, base * 2**failures)."""
    ceiling = min(cap, base * (2**failures))
    return ceiling / 2 + rng.random() * ceiling / 2


@dataclass
class Backoff:
    """Per-key exponential backoff with full jitter: delay in [base*2^n / 2, base*2^n], capped."""

    base: float = 0.5
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: dict[Key, int] = field(default_factory=dict)

    def next_delay(self, key: Key) -> float:
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        return jittered_delay(n, self.base, self.cap, self.rng)

    def reset(self, key: Key) -> None:
        self.failures.pop(key, None)

    def attempts(self, key: Key) -> int:
        return self.failures.get(key, 0)


class WorkQueue:
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._ready: list[Key] = []  # FIFO of keys ready now
        self._queued: set[Key] = set()  # in _ready
        self._active: set[Key] = set()  # being processed
        self._dirty: set[Key] = set()  # added while active: run again after
        self._delayed: list[tuple[float, int, Key]] = []  # heap of (due, seq, key)
        self._due: dict[Key, float] = {}  # earliest due time per delayed key
        self._seq = 0

    def __len__(self) -> int:
        """Depth: keys waiting now or later (not the ones being processed)."""
        return len(self._queued) + len(self._due.keys() - self._queued)

    def __contains__(self, key: Key) -> bool:
        """Waiting to run now, or running."""
        return key in self._queued or key in self._active

    def add(self, key: Key) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        due = self._clock() + delay
        if key in self._due and self._due[key] <= due:
            return  # an earlier retry is already planned
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._delayed, (due, self._seq, key))

    def _promote(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == due:
                del self._due[key]
                self.add(key)

    def next_due_in(self) -> float | None:
        """Seconds until the earliest delayed key is due (None: nothing delayed)."""
        self._promote()
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())

    def pop(self) -> Key | None:
        """A key to process now, marked active; None if none is ready."""
        self._promote()
        while self._ready:
            key = self._ready.pop(0)
            self._queued.discard(key)
            self._active.add(key)
            return key
        return None

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def forget(self, key: Key) -> None:
        """Drop a planned retry (the key was deleted, or succeeded meanwhile)."""
        self._due.pop(key, None)
