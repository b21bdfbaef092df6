"""What a controller returns (controller-runtime's `Result`): its status, and when to come back."""

from __future__ import annotations

from dataclasses import dataclass

from .api.common import Status


@dataclass(frozen=True)
class Result:
    status: Status
    # Seconds until the key should be reconciled again (a schedule, a poll); None: only when
    # something changes, or at the periodic resync.
    requeue_after: float | None = None
