"""The reconciler loop: wake-ups -> a work queue per lane -> one controller call per key -> status.

Every key goes through the same semantics here (suspend, deadlines, retries, status
writing, the lanes' workers); what a failure writes to the status is in `failures.py`, and
each reconcile comes to one `Outcome` (`result.py`).

Level-triggered: a controller reads the world and the spec and acts on the difference, so
whatever woke it (a store change, a resync, a retry, an engine event), running it again is
harmless. State lives in the store only; a restarted loop picks everything up from there.

Lanes (`lanes.py`): a key's kind picks its lane (fast or slow), each lane with its own
queue and workers and each kind with a deadline for one reconcile. The queues are the
context's (`ctx.queue`), made before it: controllers and the calendar wake keys there.

Two sorts of keys share the queues, its backoff and its status handling:
- resources (`(kind, name)` rows of the store), reconciled by a `Controller`;
- built-in watches (`Watch`): keys the platform derives from the world, with no spec
  (e.g. `PrivilegedAccess/<user>`); their status is kept in the store's observed table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from . import failures, jobs, lanes
from .api import REGISTRY
from .api.common import Status
from .context import Context
from .errors import PermanentError, TemporaryError
from .lanes import Lane, LanePlan, Workers, wait_event
from .queue import Backoff
from .result import Outcome, Result
from .store import StoredResource

log = logging.getLogger("reconciler")

Controller = Callable[[StoredResource, Context], Awaitable[Result]]
# What must go before a resource that its TTL deletes (e.g. a backup's archives).
Finalizer = Callable[[StoredResource, Context], Awaitable[None]]
Key = tuple[str, str]


@dataclass(frozen=True)
class Watch:
    """A built-in controller over keys derived from the world rather than written by anyone."""

    kind: str
    status: type[Status]
    reconcile: Callable[[str, Context], Awaitable[Result]]
    names: Callable[[Context], Awaitable[set[str]]]  # every key worth a look at a resync


RECONCILES = Counter("jhds_reconciles_total", "Reconciles by kind and result", ["kind", "result"])
LATENCY = Histogram(
    "jhds_reconcile_duration_seconds",
    "Time of one reconcile",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HOUSEKEEPING_SECONDS = 60.0
RESYNCS = Counter("jhds_resyncs_total", "Full resync passes")
TIMEOUTS = Counter("jhds_reconcile_timeouts_total", "Reconciles cancelled at their deadline", ["kind", "lane"])
STUCK = Gauge("jhds_reconciler_stuck_workers", "Workers busy past their deadline and grace", ["lane"])


def is_settled(obj: StoredResource, status: Status, request_pending: bool = False) -> bool:
    """Nothing to do until the spec changes: a finished one-shot, or a stalled resource (a
    stalled one is tried again on a "reconcile now" request)."""
    if status.observed_generation != obj.generation:
        return False
    if REGISTRY[obj.kind].one_shot and jobs.finished(status):
        return True
    return status.is_true("Stalled") and not request_pending


def spec_of(obj: StoredResource) -> Any:
    return REGISTRY[obj.kind].model.model_fields["spec"].annotation.model_validate(obj.spec)


class Reconciler:
    def __init__(
        self,
        ctx: Context,
        controllers: Mapping[str, Controller],
        *,
        watches: list[Watch] | None = None,
        finalizers: Mapping[str, Finalizer] | None = None,
        resync_seconds: float = 30,
        workers: int = 4,
        lane_plan: LanePlan | None = None,
        poll_interval: float = 0.2,
        backoff: Backoff | None = None,
    ):
        self.ctx = ctx
        self.store = ctx.store
        self.controllers = dict(controllers)
        self.watches = {w.kind: w for w in watches or []}
        self.finalizers = dict(finalizers or {})
        self.resync_seconds = resync_seconds
        # Without a plan (tests, benchmarks): `workers` in each lane, deadlines out of the way.
        self.lane_plan = lane_plan or LanePlan({"fast": workers, "slow": workers}, {"fast": 3600.0, "slow": 3600.0})
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self.queue = ctx.queue  # the context's: what controllers and the calendar wake lands here
        self.workers = Workers(self.lane_plan)
        self._stop = asyncio.Event()
        self._seen_version = 0
        self.last_resync: float | None = None
        self.ready = False

    # --- wake-ups ---
    async def poll_store(self) -> None:
        """Keys written since we last looked (the hub writes; we notice within poll_interval)."""
        keys, self._seen_version = await asyncio.to_thread(self.store.changed_since, self._seen_version)
        for key in keys:
            self.backoff.reset(key)  # a new spec deserves a prompt try
            self.ctx.from_resync.discard(key)
            self.queue.add(key)

    async def resync(self) -> None:
        t0 = time.perf_counter()
        try:
            await self.ctx.refresh_snapshot()
        except TemporaryError as e:
            log.warning("resync: hub snapshot failed (%s); reconciling without it", e)
        keys = await asyncio.to_thread(self.store.live_keys)
        for watch in self.watches.values():
            try:
                keys |= {(watch.kind, name) for name in await watch.names(self.ctx)}
            except TemporaryError as e:
                log.warning("resync: cannot list %s keys (%s); next resync tries again", watch.kind, e)
        for key in keys:
            if key not in self.queue:  # a key already woken by a change keeps its live read
                self.ctx.from_resync.add(key)
            self.queue.add(key)
        RESYNCS.inc()
        self.last_resync = time.time()
        log.debug("resync: %d keys queued in %.3f s", len(keys), time.perf_counter() - t0)

    async def housekeeping(self) -> None:
        """History kept by age and count (settings), so it cannot grow without bound."""
        s = self.ctx.settings
        events = await asyncio.to_thread(self.store.trim_events, s.events_max_age_days, s.events_max_rows)
        records = await asyncio.to_thread(self.ctx.deliveries.trim, s.deliveries_max_age_days, s.deliveries_max_rows)
        if events or records:
            log.info("housekeeping: %d old events and %d old delivery records deleted", events, records)
        usage = await asyncio.to_thread(self.ctx.usage.trim, s.usage_raw_days, s.usage_hourly_days, s.usage_daily_days)
        if any(usage.values()):
            log.info("housekeeping: usage ledger rows past their keeping deleted: %s", usage)

    # --- the work ---
    async def process(self, key: Key) -> Outcome:
        """Reconcile one key; what it came to (the metrics' label, and for tests)."""
        kind, name = key
        if kind in self.watches:
            return await self._process_watch(self.watches[kind], name)
        obj = await asyncio.to_thread(self.store.get, kind, name)
        if obj is None:
            self.queue.forget(key)
            self.backoff.reset(key)
            self.ctx.from_resync.discard(key)
            self.ctx.schedules.remove(key)
            return Outcome.GONE
        controller = self.controllers.get(kind)
        if controller is None:
            return Outcome.NO_CONTROLLER
        status, now = REGISTRY[kind].status.load(obj.status), datetime.now(UTC)
        try:
            spec = spec_of(obj)
        except ValidationError as e:  # stored by an older version, refused by today's rules
            return await failures.refuse_invalid_spec(self.ctx, obj, status, e, now)
        request = obj.reconcile_request or {}
        pending = bool(request) and request.get("at") != status.last_handled_reconcile_at
        if pending:
            status.last_handled_reconcile_at = request["at"]
            if request.get("withSource"):
                await self.ctx.sync_source()
        if is_settled(obj, status, pending):
            return await self._settled(obj, spec, status, now)
        early = await self._before(obj, spec, status, now)
        if early is not None:
            return await self._finish(obj, spec, status, early, now)
        outcome, result = await self._call(key, self._controller_call(obj, controller))
        if outcome is Outcome.SUCCESS:
            assert isinstance(result, Result)
            status = result.status.model_copy(update={"last_handled_reconcile_at": status.last_handled_reconcile_at})
            self._requeue_by_deadline(obj, spec, status, result, now)
        else:
            # Keep the progress a controller recorded before it failed (a restart's step,
            # a reset's "Running"): the retry resumes from there.
            latest = await asyncio.to_thread(self.store.get, kind, name)
            recorded = REGISTRY[kind].status.load(latest.status if latest else obj.status)
            recorded.last_handled_reconcile_at = status.last_handled_reconcile_at
            status = recorded
            outcome = await failures.report(self.ctx, key, spec, status, outcome, result, self.backoff.attempts(key))
        return await self._finish(obj, spec, status, outcome, now)

    def _controller_call(self, obj: StoredResource, controller: Controller) -> Callable[[], Awaitable[Result]]:
        hang = obj.labels.get(lanes.TEST_HANG_LABEL) if self.ctx.settings.reconciler_test_hooks else None
        call = lambda: controller(obj, self.ctx)  # noqa: E731
        return (lambda: lanes.hang_for_tests(float(hang), call)) if hang else call

    async def _before(self, obj: StoredResource, spec: Any, status: Status, now: datetime) -> Outcome | None:
        """What the shared semantics decide before a controller is called: suspended, or past
        its deadline (then the controller is not called at all)."""
        if jobs.suspended(spec):
            jobs.suspend(status, now)
            self.ctx.schedules.remove(obj.key)
            return Outcome.SUSPENDED
        deadline = jobs.deadline(spec, obj.created) if REGISTRY[obj.kind].one_shot else None
        if deadline is not None and now >= deadline:
            seconds = spec.active_deadline_seconds
            message = f"not finished within activeDeadlineSeconds ({seconds} s); nothing more is done for it"
            jobs.stall(status, True, "DeadlineExceeded", message, now)
            await self.ctx.event(obj.kind, obj.name, "DeadlineExceeded", message, type="Warning")
            self.queue.forget(obj.key)
            return Outcome.FAILED
        return None

    def _requeue_by_deadline(
        self, obj: StoredResource, spec: Any, status: Status, result: Result, now: datetime
    ) -> None:
        """An unfinished one-shot with a deadline is looked at again when it passes."""
        deadline = jobs.deadline(spec, obj.created) if REGISTRY[obj.kind].one_shot else None
        if deadline is not None and not jobs.finished(status):
            self.queue.add_after(obj.key, (deadline - now).total_seconds())

    async def _finish(self, obj: StoredResource, spec: Any, status: Status, outcome: Outcome, now: datetime) -> Outcome:
        """Write the status (if it changed); a one-shot that just finished is marked finished,
        and comes back when its TTL deletes it."""
        if outcome.acted_on_spec:
            status.observed_generation = obj.generation
        body = status.dump()
        if body != obj.status:  # an unchanged status is not rewritten (resyncs stay cheap)
            await asyncio.to_thread(self.store.write_status, obj.kind, obj.name, body)
        if REGISTRY[obj.kind].one_shot and jobs.finished(status) and obj.finished is None:
            expires = jobs.ttl_expiry(spec, now)
            await asyncio.to_thread(self.store.mark_finished, obj.kind, obj.name, now, expires)
            if expires is not None:
                self.queue.add_after(obj.key, (expires - now).total_seconds())
        RECONCILES.labels(obj.kind, outcome).inc()
        return outcome

    async def _settled(self, obj: StoredResource, spec: Any, status: Status, now: datetime) -> Outcome:
        """A finished one-shot: deleted once its TTL has passed; else only a handled
        "reconcile now" request is recorded."""
        expires = jobs.ttl_expiry(spec, obj.finished)
        if expires is not None and now >= expires:
            if obj.kind in self.finalizers:  # a failure is retried with backoff; the row stays till then
                await self.finalizers[obj.kind](obj, self.ctx)
            await asyncio.to_thread(self.store.delete, obj.kind, obj.name, "reconciler:ttl", True)
            log.info(
                "%s/%s: deleted, %g s after it finished (ttlSecondsAfterFinished)",
                obj.kind.lower(),
                obj.name,
                spec.ttl_seconds_after_finished,
            )
            return Outcome.EXPIRED
        if status.dump() != obj.status:
            await asyncio.to_thread(self.store.write_status, obj.kind, obj.name, status.dump())
        return Outcome.SETTLED

    async def _process_watch(self, watch: Watch, name: str) -> Outcome:
        key = (watch.kind, name)
        outcome, result = await self._call(key, lambda: watch.reconcile(name, self.ctx))
        if outcome is Outcome.SUCCESS:
            assert isinstance(result, Result)
            body = result.status.dump()
        else:
            status = watch.status.load(await asyncio.to_thread(self.store.observed, watch.kind, name))
            await failures.report(self.ctx, key, None, status, outcome, result, self.backoff.attempts(key))
            body = status.dump()
        await asyncio.to_thread(self.store.write_observed, watch.kind, name, body)
        RECONCILES.labels(watch.kind, outcome).inc()
        return outcome

    async def _call(self, key: Key, call: Callable[[], Awaitable[Result]]) -> tuple[Outcome, Result | Exception]:
        """Run one controller call: (SUCCESS, its Result) or (the outcome, the error), with the
        retry planned: the controller's wish on success, backoff on a temporary error."""
        t0 = time.perf_counter()
        try:
            deadline = self.lane_plan.deadline(key[0])
            result = await lanes.within(deadline, call, lambda: self._overdue(key, deadline))
        except TemporaryError as e:
            self.queue.add_after(key, e.delay if e.delay is not None else self.backoff.next_delay(key))
            return Outcome.RETRY, e
        except PermanentError as e:
            self.backoff.reset(key)
            return Outcome.FAILED, e
        except Exception as e:  # a bug or an unexpected reply: log it whole, retry like a temporary error
            log.exception("%s/%s: unexpected error", key[0].lower(), key[1])
            self.queue.add_after(key, self.backoff.next_delay(key))
            return Outcome.ERROR, e
        finally:
            self.ctx.from_resync.discard(key)  # the next wake-up says again where it came from
            LATENCY.labels(key[0]).observe(time.perf_counter() - t0)
        self.backoff.reset(key)
        if result.requeue_after is not None:
            self.queue.add_after(key, max(0.0, result.requeue_after))
        return Outcome.SUCCESS, result

    async def _overdue(self, key: Key, deadline: float) -> None:
        """At the deadline: said at once, even if the reconcile does not give way."""
        lane = lanes.lane_of(key[0])
        TIMEOUTS.labels(key[0], lane).inc()
        message = f"ran past its deadline ({deadline:g} s, {lane} lane) and was cancelled; retried with backoff"
        await self.ctx.event(key[0], key[1], "ReconcileTimedOut", message, type="Warning")

    async def _worker(self, lane: Lane, index: int) -> None:
        """One worker of one lane: it takes only that lane's keys."""
        while not self._stop.is_set():
            key = await self.queue.take(lane)
            if key is None:
                continue
            self.workers.start(lane, index, key)
            try:
                await self.process(key)
            except Exception:  # a worker never dies: the key is retried with backoff
                log.exception("%s/%s: reconcile failed outside the controller", key[0].lower(), key[1])
                self.queue.add_after(key, self.backoff.next_delay(key))
            finally:
                self.workers.end(lane, index)
                self.queue.done(key)

    def lane_reports(self) -> list[lanes.LaneReport]:
        """Each lane's workers and what they are doing (for /health and /health/details)."""
        reports = self.workers.report(self.queue)
        for report in reports:
            STUCK.labels(report.lane).set(sum(w.stuck for w in report.busy))
        return reports

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
            "reconciler started: lanes %s, resync every %g s, controllers: %s",
            ", ".join(f"{lane} {n} workers" for lane, n in self.lane_plan.workers.items()),
            self.resync_seconds,
            ", ".join(sorted([*self.controllers, *self.watches])),
        )
        tasks = [asyncio.create_task(self._worker(lane, i)) for lane, i in self.workers.slots()]
        tasks.append(asyncio.create_task(self._every(self.poll_interval, self.poll_store, "store poll")))
        tasks.append(asyncio.create_task(self._every(self.resync_seconds, self.resync, "resync")))
        tasks.append(asyncio.create_task(self._every(HOUSEKEEPING_SECONDS, self.housekeeping, "housekeeping")))
        self.ctx.schedules.start()
        tasks += [asyncio.create_task(source(self._stop)) for source in extra or []]
        self.ready = True
        await self._stop.wait()
        self.ready = False
        self.ctx.schedules.stop()
        self.queue.wake_all()
        _done, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()
        log.info("reconciler stopped (%d keys still queued; they are picked up at the next start)", len(self.queue))

    def stop(self) -> None:
        self._stop.set()
        self.queue.wake_all()
