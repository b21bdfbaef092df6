"""Lanes: the reconciler's workers split by kind, so slow work never holds up fast work.

controller-runtime gives each controller its own queue and `MaxConcurrentReconciles`; here
the kinds are grouped in two lanes, each with its own work queue and worker count:

- `fast`: what must happen within seconds: revocation (`PrivilegedAccess`), the engine-wide
  survey, broadcasts, idle culling, groups and policies, restarts and resets;
- `slow`: what may take minutes or hours: backups, restores, backup schedules, rollouts.

A kind's lane is its `KindInfo.lane` (in its module of `api/`); the built-in watches go
fast. A key's lane is its kind's, so a key lives in one queue only and the queue's guarantee
(never reconciled twice at once) holds across lanes. Each kind has a deadline for one
reconcile: past it the reconcile is cancelled, an event says so, and the key is retried
with backoff. A worker whose reconcile does not end when cancelled (code that does not
give way) is *stuck*: `/health/details` names it and `/health` answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from prometheus_client import Gauge

from .api import REGISTRY
from .errors import TemporaryError
from .queue import WorkQueue

Lane = Literal["fast", "slow"]
LANES: tuple[Lane, ...] = ("fast", "slow")
# A reconcile cancelled at its deadline normally ends at once; one still running this long
# after is stuck (it swallowed the cancellation, or waits in a `finally`).
CANCEL_GRACE = 5.0
# Tests only (RECONCILER_TEST_HOOKS): a resource with this label hangs that many seconds in
# its reconcile, ignoring cancellation, as code that does not give way would.
TEST_HANG_LABEL = "jupyterhub-ds/test-hang"

Key = tuple[str, str]
T = TypeVar("T")
QUEUE_DEPTH = Gauge("jhds_reconciler_queue_depth", "Keys waiting to be reconciled")
log = logging.getLogger("reconciler")


def lane_of(kind: str) -> Lane:
    """A kind's lane: its `KindInfo.lane`; a built-in watch's is fast."""
    info = REGISTRY.get(kind)
    return info.lane if info is not None else "fast"


@dataclass(frozen=True)
class LanePlan:
    """Workers per lane and the deadline of one reconcile per kind (seconds)."""

    workers: dict[Lane, int]
    lane_deadline: dict[Lane, float]
    kind_deadline: dict[str, float] = field(default_factory=dict)

    def deadline(self, kind: str) -> float:
        return self.kind_deadline.get(kind, self.lane_deadline[lane_of(kind)])


def plan(
    fast_workers: int,
    slow_workers: int,
    fast_deadline: float,
    slow_deadline: float,
    spawn_timeout: float,
    broadcast_deadline: float,
) -> LanePlan:
    """The lanes from the settings. A revocation restarts a server inside its key (stop, then
    a spawn), a restart does the same, a broadcast (and an idle-culling notice) retries its
    labs for `broadcast_deadline`: their deadlines leave room for that, whatever the lane's."""
    restart = 2 * spawn_timeout + 60
    kinds = {
        "PrivilegedAccess": max(fast_deadline, restart),
        "ServerRestart": max(fast_deadline, restart),
        "VolumeReset": max(fast_deadline, restart),
        "Broadcast": max(fast_deadline, broadcast_deadline + 60),
        "IdleCullPolicy": max(fast_deadline, broadcast_deadline + 60),
        "Quota": max(fast_deadline, restart),  # `enforce: stop` waits for the servers to stop
    }
    return LanePlan({"fast": fast_workers, "slow": slow_workers}, {"fast": fast_deadline, "slow": slow_deadline}, kinds)


class LaneQueues:
    """One work queue per lane, addressed by key as one queue would be; a lane's workers
    sleep until a key of theirs is added (or a retry of theirs is due)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.by_lane: dict[Lane, WorkQueue] = {lane: WorkQueue(clock) for lane in LANES}
        self._wakes: dict[Lane, asyncio.Event] = {lane: asyncio.Event() for lane in LANES}

    def of(self, key: Key) -> WorkQueue:
        return self.by_lane[lane_of(key[0])]

    def __len__(self) -> int:
        return sum(len(q) for q in self.by_lane.values())

    def __contains__(self, key: Hashable) -> bool:
        return isinstance(key, tuple) and key in self.of(key)  # type: ignore[arg-type]

    def add(self, key: Key) -> None:
        """Wake `key` now (its lane's sleeping worker with it)."""
        self.of(key).add(key)
        QUEUE_DEPTH.set(len(self))
        self._wakes[lane_of(key[0])].set()

    def add_after(self, key: Key, delay: float) -> None:
        self.of(key).add_after(key, delay)

    def forget(self, key: Key) -> None:
        self.of(key).forget(key)

    def done(self, key: Key) -> None:
        queue = self.of(key)
        queue.done(key)
        if len(queue):  # more of this lane: the next free worker looks (its due time may be sooner)
            self._wakes[lane_of(key[0])].set()

    def pop(self) -> Key | None:
        """A key of any lane, fast first (for callers that drive the queue by hand)."""
        for queue in self.by_lane.values():
            key = queue.pop()
            if key is not None:
                return key  # type: ignore[return-value]
        return None

    async def take(self, lane: Lane) -> Key | None:
        """A key of `lane` to reconcile now; else None, after sleeping until a key is added,
        a retry is due, or a second has passed."""
        queue, wake = self.by_lane[lane], self._wakes[lane]
        key = queue.pop()
        QUEUE_DEPTH.set(len(self))
        if key is None:
            wake.clear()
            timeout = queue.next_due_in()
            await wait_event(wake, timeout if timeout is not None else 1.0)
        return key  # type: ignore[return-value]

    def wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    def next_due_in(self) -> float | None:
        dues = [d for q in self.by_lane.values() if (d := q.next_due_in()) is not None]
        return min(dues, default=None)


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait for `event` at most `seconds`; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


@dataclass
class Busy:
    """What one worker is doing: which key, since when, for how long it may."""

    key: Key
    started: float
    deadline: float
    cancelled: bool = False

    def overdue(self, now: float) -> bool:
        return now - self.started > self.deadline

    def stuck(self, now: float) -> bool:
        return now - self.started > self.deadline + CANCEL_GRACE


@dataclass(frozen=True)
class WorkerReport:
    lane: Lane
    worker: int
    key: Key
    seconds: float
    deadline: float
    overdue: bool
    stuck: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "worker": self.worker,
            "key": f"{self.key[0]}/{self.key[1]}",
            "seconds": round(self.seconds, 1),
            "deadline": self.deadline,
            "overdue": self.overdue,
            "stuck": self.stuck,
        }


@dataclass(frozen=True)
class LaneReport:
    lane: Lane
    workers: int
    waiting: int
    busy: list[WorkerReport]

    @property
    def stuck(self) -> bool:
        return any(w.stuck for w in self.busy)

    def as_dict(self) -> dict[str, object]:
        overdue = [w.as_dict() for w in self.busy if w.overdue]
        return {
            "workers": self.workers,
            "busy": len(self.busy),
            "waiting": self.waiting,
            "stuck": self.stuck,
            "overdue": overdue,
            "running": [w.as_dict() for w in self.busy],
        }


class Workers:
    """Who is busy with what, per lane and worker: the health report reads it."""

    def __init__(self, plan: LanePlan, clock: Callable[[], float] = time.monotonic):
        self.plan = plan
        self._clock = clock
        self._busy: dict[tuple[Lane, int], Busy] = {}

    def slots(self) -> Iterator[tuple[Lane, int]]:
        for lane in LANES:
            for index in range(self.plan.workers[lane]):
                yield lane, index

    def start(self, lane: Lane, index: int, key: Key) -> Busy:
        busy = Busy(key, self._clock(), self.plan.deadline(key[0]))
        self._busy[(lane, index)] = busy
        return busy

    def end(self, lane: Lane, index: int) -> None:
        self._busy.pop((lane, index), None)

    def report(self, queues: LaneQueues) -> list[LaneReport]:
        now = self._clock()
        reports = []
        for lane in LANES:
            busy = [
                WorkerReport(lane, i, b.key, now - b.started, b.deadline, b.overdue(now), b.stuck(now))
                for (ln, i), b in sorted(self._busy.items())
                if ln == lane
            ]
            reports.append(LaneReport(lane, self.plan.workers[lane], len(queues.by_lane[lane]), busy))
        return reports


class ReconcileTimeout(TemporaryError):
    """A reconcile ran past its kind's deadline and was cancelled: retried with backoff."""


async def within(seconds: float, call: Callable[[], Awaitable[T]], on_overdue: Callable[[], Awaitable[None]]) -> T:
    """`call()` with a deadline: past it the call is cancelled and `on_overdue` runs (an
    event, at the deadline, even if the call does not give way). The call's end is always
    awaited, so its key is never reconciled twice at once. A call that ended with a result
    anyway (it ignored the cancellation) keeps its result."""
    task = asyncio.ensure_future(call())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            task.cancel()
            try:
                await on_overdue()
            except Exception:  # saying so must not release the key before the call has ended
                log.exception("reporting a reconcile past its deadline failed")
            await asyncio.wait({task})
    except asyncio.CancelledError:  # the loop is shutting down: take the reconcile with it
        task.cancel()
        raise
    if task.cancelled():
        raise ReconcileTimeout(f"the reconcile ran past its deadline ({seconds:g} s) and was cancelled")
    return task.result()


async def hang_for_tests(seconds: float, call: Callable[[], Awaitable[T]]) -> T:
    """Tests only: wait `seconds` ignoring cancellation, then `call()`."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            continue  # not giving way is the point
    return await call()
