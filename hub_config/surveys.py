"""Slow looks at the world that a page needs, taken at most once in flight and reused for a
while, so a request never waits on (or multiplies) a scan of the engine or the store.

`Survey` is stale-while-revalidate with a single flight: the first caller waits for the
first survey; afterwards every caller gets the last one at once, with the time it was
taken, and a caller that finds it older than `max_age` starts the next in the background
(one at a time); a caller whose `stale` says the last one lacks what it needs (a volume
created since, backups changed) waits for the next with `wait=True`.
Used for the engine's disk-usage report behind Manage Volumes (`handlers/selfservice.py`)
and the index of backups by user behind each user's list (`handlers/backups.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("jupyterhub")
T = TypeVar("T")


@dataclass(frozen=True)
class Taken(Generic[T]):
    value: T
    at: float  # time.time() when the survey was taken

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)


class Survey(Generic[T]):
    def __init__(self, what: str, take: Callable[[], Awaitable[T]], max_age: Callable[[], float]):
        self.what, self.take, self.max_age = what, take, max_age  # max_age: read at each use (settings)
        self.last: Taken[T] | None = None
        self.flight: asyncio.Task[Taken[T]] | None = None
        self.count = 0  # surveys taken (tests, metrics)

    async def get(self, stale: Callable[[Taken[T]], Awaitable[bool]] | None = None, wait: bool = False) -> Taken[T]:
        """The last survey (the first one waited for). One that `stale` says lacks what the
        caller needs is renewed (and waited for with `wait`); one merely older than max_age
        is renewed in the background and served meanwhile. At most one in flight."""
        last = self.last
        if last is None:
            return await asyncio.shield(self._start())
        if stale is not None and await stale(last):
            flight = self._start()
            return await asyncio.shield(flight) if wait else last
        if last.age >= self.max_age():
            self._start()
        return last

    def _start(self) -> asyncio.Task[Taken[T]]:
        if self.flight is None or self.flight.done():
            self.flight = asyncio.ensure_future(self._run())
            self.flight.add_done_callback(_logged)  # a failed background one: said once, tried next time
        return self.flight

    async def _run(self) -> Taken[T]:
        t0, at = time.perf_counter(), time.time()
        value = await self.take()
        self.count += 1
        self.last = Taken(value, at)
        log.debug("survey of %s taken in %.3f s", self.what, time.perf_counter() - t0)
        return self.last


def _logged(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("survey failed (the last one is kept): %s", task.exception())
