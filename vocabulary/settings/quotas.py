"""Settings of the Quota watch (GroupPolicy `quota` and `storage`; docs/usage.md#quotas)."""

from __future__ import annotations

from pydantic import Field

from .fields import Section


class QuotaSettings(Section):
    """How often users with a quota or a storage soft limit are looked at, and how long a
    user is warned before `enforce: stop` stops their servers."""

    quota_check_seconds: float = Field(
        60,
        ge=1,
        le=86400,
        alias="QUOTA_CHECK_SECONDS",
        description="Seconds between two looks of the Quota watch at a user with a quota or a storage soft limit "
        "(notices at 80/95 %, `enforce: stop`)",
    )
    quota_stop_grace_seconds: float = Field(
        300,
        ge=0,
        le=86400,
        alias="QUOTA_STOP_GRACE_SECONDS",
        description="With `enforce: stop`, seconds between the notice at 100 % of a quota and the stop of the "
        "user's running servers",
    )
