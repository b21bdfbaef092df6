"""The reconciler loop: wake-ups -> work queue -> one controller call per key -> status.

Level-triggered: a controller reads the world and the spec and acts on the difference, so
whatever woke it (a store change, a resync, a retry), running it again is harmless.
State lives in the store only; a restarted loop picks everything up from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from .context import SNAPSHOT_OK, Context, jsonable
from .errors import PermanentError, TemporaryError
from .queue import Backoff, WorkQueue
from .resources import ONE_SHOT_KINDS, Condition, set_condition
from .store import StoredResource

log = logging.getLogger("reconciler")

Controller = Callable[[StoredResource, Context], Awaitable[dict[str, Any]]]
Key = tuple[str, str]
TERMINAL_PHASES = ("Succeeded", "Failed", "Completed")

QUEUE_DEPTH = Gauge("jhds_reconciler_queue_depth", "Keys waiting to be reconciled")
RECONCILES = Counter("jhds_reconciles_total", "Reconciles by kind and result", ["kind", "result"])
LATENCY = Histogram(
    "jhds_reconcile_duration_seconds",
    "Time of one reconcile",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RESYNCS = Counter("jhds_resyncs_total", "Full resync passes")


async def wait_event(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait for `event` at most `seconds`; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


def is_settled(obj: StoredResource) -> bool:
    """Nothing to do until the spec changes: a finished one-shot, or a stalled resource."""
    status = obj.status
    if status.get("observedGeneration") != obj.generation:
        return False
    if obj.kind in ONE_SHOT_KINDS and status.get("phase") in TERMINAL_PHASES:
        return True
    return any(c.get("type") == "Stalled" and c.get("status") == "True" for c in status.get("conditions", []))


def _conditions(obj: StoredResource) -> list[Condition]:
    return [Condition.model_validate(c) for c in obj.status.get("conditions", [])]


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        controllers: Mapping[str, Controller],
        *,
        resync_seconds: float = 30,
        workers: int = 4,
        poll_interval: float = 0.2,
        backoff: Backoff | None = None,
    ):
        self.ctx = ctx
        self.store = ctx.store
        self.controllers = dict(controllers)
        self.resync_seconds = resync_seconds
        self.workers = workers
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.queue = WorkQueue(time.monotonic)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._seen_version = 0
        self._from_resync: set[Key] = set()  # keys whose next reconcile may use the snapshot
        self.last_resync: float | None = None
        self.ready = False

    # --- wake-ups ---
    def enqueue(self, key: Key) -> None:
        self.queue.add(key)
        QUEUE_DEPTH.set(len(self.queue))
        self._wake.set()

    async def poll_store(self) -> None:
        """Keys written since we last looked (the hub writes; we notice within poll_interval)."""
        keys, self._seen_version = await asyncio.to_thread(self.store.changed_since, self._seen_version)
        for key in keys:
            self.backoff.reset(key)  # a new spec deserves a prompt try
            self._from_resync.discard(key)
            self.enqueue(key)

    async def resync(self) -> None:
        t0 = time.perf_counter()
        try:
            await self.ctx.refresh_snapshot()
        except TemporaryError as e:
            log.warning("resync: hub snapshot failed (%s); reconciling without it", e)
        keys = await asyncio.to_thread(self.store.keys)
        for key in keys:
            if key not in self.queue:  # a key already woken by a change keeps its live read
                self._from_resync.add(key)
            self.enqueue(key)
        RESYNCS.inc()
        self.last_resync = time.time()
        log.debug("resync: %d resources queued in %.3f s", len(keys), time.perf_counter() - t0)

    # --- the work ---
    async def process(self, key: Key) -> str:
        """Reconcile one key; returns the result label (for metrics and tests)."""
        kind, name = key
        obj = await asyncio.to_thread(self.store.get, kind, name)
        if obj is None:
            self.queue.forget(key)
            self.backoff.reset(key)
            return "gone"
        if is_settled(obj):
            return "settled"
        controller = self.controllers.get(kind)
        if controller is None:
            return "no-controller"
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        token = SNAPSHOT_OK.set(key in self._from_resync)
        self._from_resync.discard(key)
        try:
            body = await controller(obj, self.ctx)
            result = "success"
            self.backoff.reset(key)
        except TemporaryError as e:
            delay = e.delay if e.delay is not None else self.backoff.next_delay(key)
            self.queue.add_after(key, delay)
            attempts = self.backoff.attempts(key)
            log.warning("%s/%s: %s (attempt %d, retry in %.1f s)", kind.lower(), name, e, attempts, delay)
            body = dict(obj.status)
            body["conditions"] = set_condition(
                _conditions(obj), "Ready", "False", "Retrying", f"{e} (attempt {attempts})", now
            )
            result = "retry"
        except PermanentError as e:
            await self.ctx.event(kind, name, e.reason, str(e), type="Warning")
            body = dict(obj.status)
            body["phase"] = "Failed" if kind in ONE_SHOT_KINDS else "Stalled"
            conditions = set_condition(_conditions(obj), "Ready", "False", e.reason, str(e), now)
            body["conditions"] = set_condition(conditions, "Stalled", "True", e.reason, str(e), now)
            result = "failed"
        except Exception as e:  # a bug or an unexpected reply: log it whole, retry like a temporary error
            log.exception("%s/%s: unexpected error", kind.lower(), name)
            self.queue.add_after(key, self.backoff.next_delay(key))
            body = dict(obj.status)
            body["conditions"] = set_condition(
                _conditions(obj), "Ready", "False", "InternalError", f"{type(e).__name__}: {e}", now
            )
            result = "error"
        finally:
            SNAPSHOT_OK.reset(token)
            LATENCY.labels(kind).observe(time.perf_counter() - t0)
        if result != "success":
            # Keep the progress a controller recorded before it failed (a restart's step,
            # a reset's "Running"): the retry resumes from there.
            latest = await asyncio.to_thread(self.store.get, kind, name)
            if latest is not None:
                mine = ("phase", "conditions") if result == "failed" else ("conditions",)
                body = {**latest.status, **{k: body[k] for k in mine if k in body}}
        body["observedGeneration"] = (
            obj.generation if result in ("success", "failed") else obj.status.get("observedGeneration")
        )
        body = jsonable(body)
        if body != obj.status:  # an unchanged status is not rewritten (resyncs stay cheap)
            await asyncio.to_thread(self.store.write_status, kind, name, body)
        RECONCILES.labels(kind, result).inc()
        return result

    async def _worker(self) -> None:
        while not self._stop.is_set():
            key = self.queue.pop()
            QUEUE_DEPTH.set(len(self.queue))
            if key is None:
                self._wake.clear()
                timeout = self.queue.next_due_in()
                await wait_event(self._wake, timeout if timeout is not None else 1.0)
                continue
            try:
                await self.process(key)
            finally:
                self.queue.done(key)
                if len(self.queue):
                    self._wake.set()

    async def _every(self, seconds: float, action: Callable[[], Awaitable[None]], what: str) -> None:
        while not self._stop.is_set():
            try:
                await action()
            except Exception:
                log.exception("%s failed; trying again in %.1f s", what, seconds)
            await wait_event(self._stop, seconds)

    async def run(self, extra: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None) -> None:
        """Run until `stop()`; then let in-flight reconciles finish (bounded) and return."""
        log.info(
            "reconciler started: %d workers, resync every %g s, controllers: %s",
            self.workers,
            self.resync_seconds,
            ", ".join(sorted(self.controllers)),
        )
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self._every(self.poll_interval, self.poll_store, "store poll")))
        tasks.append(asyncio.create_task(self._every(self.resync_seconds, self.resync, "resync")))
        tasks += [asyncio.create_task(source(self._stop)) for source in extra or []]
        self.ready = True
        await self._stop.wait()
        self.ready = False
        self._wake.set()
        _done, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()
        log.info("reconciler stopped (%d keys still queued; they are picked up at the next start)", len(self.queue))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
