"""What a failed reconcile leaves in its status: conditions, and for what will not fix
itself a phase and an event. Applied by the loop after a controller call that did not
succeed, and to a stored spec today's models refuse."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from . import jobs
from .api import REGISTRY
from .api.common import Status
from .context import Context, Key
from .errors import PermanentError
from .result import Outcome, Result
from .store import StoredResource

log = logging.getLogger("reconciler")


async def report(
    ctx: Context, key: Key, spec: Any, status: Status, outcome: Outcome, error: Result | Exception, attempts: int
) -> Outcome:
    """Conditions (and, for a permanent error, phase and an event) saying what went wrong;
    a one-shot out of retries (`backoffLimit`) ends Failed. The outcome, as it ends up.
    `attempts`: the key's failures in a row so far."""
    kind, name = key
    now = datetime.now(UTC)
    one_shot = REGISTRY[kind].one_shot if kind in REGISTRY else False
    if outcome in (Outcome.RETRY, Outcome.ERROR) and one_shot and jobs.out_of_retries(spec, status):
        message = f"{status.failed_attempts} attempts failed (backoffLimit {spec.backoff_limit}); last: {error}"
        jobs.stall(status, True, "BackoffLimitExceeded", message, now)
        await ctx.event(kind, name, "BackoffLimitExceeded", message, type="Warning")
        ctx.queue.forget(key)
        return Outcome.FAILED
    if outcome is Outcome.RETRY:
        log.warning("%s/%s: %s (attempt %d, retrying)", kind.lower(), name, error, attempts)
        status.set_condition("Ready", "False", "Retrying", f"{error} (attempt {attempts})", now)
    elif outcome is Outcome.FAILED:
        assert isinstance(error, PermanentError)
        await ctx.event(kind, name, error.reason, str(error), type="Warning")
        jobs.stall(status, one_shot, error.reason, str(error), now)
    else:
        status.set_condition("Ready", "False", "InternalError", f"{type(error).__name__}: {error}", now)
    return outcome


async def refuse_invalid_spec(
    ctx: Context, obj: StoredResource, status: Status, error: ValidationError, now: datetime
) -> Outcome:
    """A stored spec today's models refuse: said once, and left alone until it changes."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False))
    message = f"the stored spec is no longer valid: {problems}"
    if not status.is_true("Stalled") or status.observed_generation != obj.generation:
        await ctx.event(obj.kind, obj.name, "InvalidSpec", message, type="Warning")
    jobs.stall(status, REGISTRY[obj.kind].one_shot, "InvalidSpec", message, now)
    status.observed_generation = obj.generation
    if status.dump() != obj.status:
        await asyncio.to_thread(ctx.store.write_status, obj.kind, obj.name, status.dump())
    return Outcome.FAILED
