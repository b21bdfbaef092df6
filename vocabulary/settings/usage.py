"""Settings of the usage ledger (docs/usage.md): how often servers are sampled and volumes
surveyed, and how long each kind of record is kept."""

from __future__ import annotations

from pydantic import Field

from .fields import Section


class UsageSettings(Section):
    """The usage ledger."""

    usage_sample_seconds: float = Field(
        60,
        ge=1,
        le=3600,
        alias="USAGE_SAMPLE_SECONDS",
        description="Seconds between two samples of every running server's CPU and memory (one engine call per "
        "server, each round bounded by this interval)",
    )
    usage_sample_concurrency: int = Field(
        8,
        ge=1,
        le=256,
        alias="USAGE_SAMPLE_CONCURRENCY",
        description="Servers sampled at the same time in one round",
    )
    usage_raw_days: float = Field(
        7, gt=0, alias="USAGE_RAW_DAYS", description="Days the raw usage samples are kept (the roll-ups stay)"
    )
    usage_hourly_days: float = Field(
        90, gt=0, alias="USAGE_HOURLY_DAYS", description="Days the hourly usage roll-ups are kept"
    )
    usage_daily_days: float = Field(
        730,
        gt=0,
        alias="USAGE_DAILY_DAYS",
        description="Days the daily usage roll-ups, the daily storage sizes and finished sessions are kept",
    )
    storage_survey_seconds: float = Field(
        900,
        ge=1,
        le=86400,
        alias="STORAGE_SURVEY_SECONDS",
        description="Seconds between two surveys of the user volumes' sizes (one engine call per host)",
    )
