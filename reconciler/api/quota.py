"""The Quota watch's status (`Quota/<user>`, `controllers/quota.py`): the user's combined
quota and storage soft limits, how much of each they use, which notices were sent (recorded
before sending: once per threshold per window), and a stop under way (`enforce: stop`).
Grants are kept apart (`QuotaGrants/<user>`, written by the hub) so the watch's writes
never race an operator's grant."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from .common import Status

GRANTS_KIND = "QuotaGrants"  # jhds_observed: {"grants": [{"at", "kind", "hours", "by"}]}


class QuotaStatus(Status):
    quota: dict[str, Any] | None = None  # the combined quota (`quotas.EffectiveQuota.as_dict`)
    limits: list[dict[str, Any]] = []  # each limit against the use (`quotas.LimitState.as_dict`)
    refused: bool = False  # a new spawn is refused now
    storage: list[dict[str, Any]] = []  # each volume against its soft limit (`quotas.StorageState.as_dict`)
    # The combined soft limits looked at (`quotas.storage_limits_json`): the hub serves this
    # status as the user's figures only while their policies still combine to the same.
    storage_limits: dict[str, dict[str, Any]] = Field({}, alias="storageLimits")
    # Notices sent: per quota kind, threshold ("80", "95", "100") -> when; per volume key,
    # the thresholds told (forgotten when the volume falls below them).
    notified: dict[str, dict[str, AwareDatetime]] = {}
    storage_notified: dict[str, list[int]] = Field({}, alias="storageNotified")
    # `enforce: stop`: when the user's servers are stopped (the notice at 100 % went first).
    stop_due: AwareDatetime | None = Field(None, alias="stopDue")
    checked: AwareDatetime | None = None
