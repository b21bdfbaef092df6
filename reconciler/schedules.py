"""Calendar time: which keys are due when, kept by APScheduler, feeding the one work queue.

A scheduled resource (a Broadcast with `at` or `cron`) asks for a job here when it is
reconciled; the job's trigger (`DateTrigger`, `CronTrigger`) says when it fires, with the
CronJob semantics a Kubernetes user expects, which are APScheduler's own:

- `coalesce=True`: firings missed while the process was stopped or frozen collapse into one;
- `misfire_grace_time = startingDeadlineSeconds`: that one runs only if it is still within
  the deadline of its time; otherwise APScheduler reports it missed (we record an event);
- `max_instances=1`: the job itself only hands the firing to the queue, at once.

Firing does no work: it records the firing time for the key and wakes it; the controller
takes the firing and runs. Retries and backoff stay with the work queue. Nothing here is
the truth: jobs are rebuilt from the store (each resource's `lastScheduled`) when the
reconciler starts, so a firing lost in a crash is found again as a missed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from .cron import cron_trigger

log = logging.getLogger("reconciler.schedules")
Key = tuple[str, str]


async def _hand_over() -> None:
    """The job: nothing. Its `executed` event carries the firing time to the queue."""


def trigger_for(cron: str | None, at: datetime | None) -> BaseTrigger:
    """The APScheduler trigger of a schedule: standard 5-field cron (`cron.cron_trigger`, the
    same parser that validated the spec), or one time."""
    if cron is not None:
        return cron_trigger(cron)
    assert at is not None
    return DateTrigger(run_date=at, timezone=UTC)


class Schedules:
    def __init__(self, enqueue: Callable[[Key], None], clock: Callable[[], datetime] | None = None):
        self.enqueue = enqueue
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        self._keys: dict[str, Key] = {}
        self._configs: dict[Key, str] = {}
        self._due: dict[Key, datetime] = {}  # fired, not yet taken by the controller
        self._missed: dict[Key, datetime] = {}  # missed (past the deadline), not yet recorded

    def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def ensure(
        self, key: Key, *, cron: str | None, at: datetime | None, after: datetime, grace: int
    ) -> datetime | None:
        """Make sure `key` has a job firing at its schedule's times after `after` (e.g. its
        last firing); the next firing time. Unchanged schedules keep their job."""
        config = f"{cron}|{at}|{grace}"
        job_id = f"{key[0]}/{key[1]}"
        job = self.scheduler.get_job(job_id)
        if job is not None and self._configs.get(key) == config:
            return job.next_run_time
        trigger = trigger_for(cron, at)
        first = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
        if first is None:
            self.remove(key)
            return None
        self._keys[job_id], self._configs[key] = key, config
        self.scheduler.add_job(
            _hand_over,
            trigger,
            id=job_id,
            replace_existing=True,
            next_run_time=first,
            coalesce=True,
            misfire_grace_time=grace,
            max_instances=1,
        )
        log.info("schedule %s: next firing %s", job_id, first.isoformat())
        return first

    def remove(self, key: Key) -> None:
        job_id = f"{key[0]}/{key[1]}"
        if self.scheduler.get_job(job_id) is not None:
            self.scheduler.remove_job(job_id)
        self._configs.pop(key, None)
        self._due.pop(key, None)

    def take_due(self, key: Key) -> datetime | None:
        """The latest firing of `key` not yet acted on (consumed)."""
        return self._due.pop(key, None)

    def take_missed(self, key: Key) -> datetime | None:
        return self._missed.pop(key, None)

    def _on_event(self, event: JobExecutionEvent) -> None:
        key = self._keys.get(event.job_id)
        if key is None:
            return
        when = event.scheduled_run_time
        target = self._due if event.code == EVENT_JOB_EXECUTED else self._missed
        if key not in target or target[key] < when:
            target[key] = when
        lateness = (self.clock() - when).total_seconds()
        log.info(
            "schedule %s: %s (%.3f s after its time)",
            event.job_id,
            "fired" if target is self._due else "missed",
            lateness,
        )
        self.enqueue(key)
