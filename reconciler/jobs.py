"""The Kubernetes Job / CronJob / Flux semantics every kind shares, as plain functions the
loop applies around a controller call:

| field                      | on             | meaning                                                 |
|----------------------------|----------------|---------------------------------------------------------|
| `suspend`                  | standing kinds, scheduled broadcasts | left alone; `Ready=Unknown`, reason `Suspended` |
| `activeDeadlineSeconds`    | one-shots      | not finished that long after creation: `Failed`, `DeadlineExceeded` |
| `backoffLimit`             | one-shots      | that many retryable failures: `Failed`, `BackoffLimitExceeded` |
| `ttlSecondsAfterFinished`  | one-shots      | deleted (with its events) that long after finishing; 0 keeps it |
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .api.common import TERMINAL_PHASES, Status


def suspended(spec: Any) -> bool:
    return bool(getattr(spec, "suspend", False))


def deadline(spec: Any, created: datetime) -> datetime | None:
    seconds = getattr(spec, "active_deadline_seconds", None)
    return created + timedelta(seconds=seconds) if seconds else None


def ttl_expiry(spec: Any, finished: datetime | None) -> datetime | None:
    ttl = getattr(spec, "ttl_seconds_after_finished", 0)
    return finished + timedelta(seconds=ttl) if finished is not None and ttl else None


def finished(status: Status) -> bool:
    return status.phase in TERMINAL_PHASES


def suspend(status: Status, now: datetime) -> None:
    status.set_condition("Ready", "Unknown", "Suspended", "spec.suspend is true: the reconciler leaves it alone", now)


def stall(status: Status, one_shot: bool, reason: str, message: str, now: datetime) -> None:
    """Nothing more is done until the spec changes: a one-shot ends `Failed`, a standing
    resource is `Stalled`; the reason is in both conditions."""
    status.phase = "Failed" if one_shot else "Stalled"
    status.set_condition("Ready", "False", reason, message, now)
    status.set_condition("Stalled", "True", reason, message, now)


def out_of_retries(spec: Any, status: Status) -> bool:
    """One more retryable failure was counted; is that past `backoffLimit`?"""
    status.failed_attempts = (status.failed_attempts or 0) + 1
    limit = getattr(spec, "backoff_limit", None)
    return limit is not None and status.failed_attempts > limit
