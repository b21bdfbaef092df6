"""What a controller returns (controller-runtime's `Result`): its status, and when to come back;
and what the loop makes of one reconcile (`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .api.common import Status


@dataclass(frozen=True)
class Result:
    status: Status
    # Seconds until the key should be reconciled again (a schedule, a poll); None: only when
    # something changes, or at the periodic resync.
    requeue_after: float | None = None


class Outcome(StrEnum):
    """What one reconcile came to, as the loop reports it (the `result` label of
    `jhds_reconciles_total`: str-valued, so the label values are these strings)."""

    SUCCESS = "success"  # the controller returned a Result
    RETRY = "retry"  # a TemporaryError: tried again with backoff
    ERROR = "error"  # an unexpected exception: logged whole, tried again like a temporary error
    FAILED = "failed"  # a PermanentError, a refused stored spec, a deadline or backoffLimit passed
    SUSPENDED = "suspended"  # `suspend: true`: the controller was not called
    SETTLED = "settled"  # nothing to do until the spec changes (a finished one-shot, a stalled one)
    EXPIRED = "expired"  # a finished one-shot deleted by its TTL
    GONE = "gone"  # the resource was deleted
    NO_CONTROLLER = "no-controller"

    @property
    def acted_on_spec(self) -> bool:
        """The spec was acted on (or refused for good): observedGeneration catches up."""
        return self in (Outcome.SUCCESS, Outcome.FAILED, Outcome.SUSPENDED)
