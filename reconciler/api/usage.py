"""The usage ledger's watch status (`controllers/usage.py`, keys `Usage/sessions`,
`Usage/samples`, `Usage/storage`): what its last pass did."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from .common import Status


class UsageStatus(Status):
    last_pass: AwareDatetime | None = Field(None, alias="lastPass")
    servers: int = 0  # sessions squared / servers sampled / volumes surveyed
    opened: int = 0  # sessions opened from the hub's record (sessions)
    closed: int = 0  # sessions closed because their server was gone (sessions)
    engine_calls: int = Field(0, alias="engineCalls")
    errors: int = 0
    timed_out: int = Field(0, alias="timedOut")  # stats calls cut by the round's deadline
    seconds: float = 0.0  # the pass's duration
    # samples: each running container's CPU counter at its last sample ([epoch, seconds]),
    # where the deltas resume after the reconciler restarts
    counters: dict[str, list[float]] = {}
