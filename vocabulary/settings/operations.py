"""Settings of day-2 operations: idle culling (the seed policy and the activity every policy
reads) and backups."""

from __future__ import annotations

from pydantic import Field, field_validator

from .fields import DOCKER_NAME, Section


class OperationsSettings(Section):
    """Idle culling, backups and renames."""

    # --- idle culling (seed policy and the activity that feeds every policy) ---------
    idle_culler_enabled: bool = Field(
        False,
        alias="JUPYTERHUB_IDLE_CULLER_ENABLED",
        description="Seed a built-in IdleCullPolicy `idle-culler` for everyone from the JUPYTERHUB_IDLE_CULLER_* "
        "variables (priority -1000: any policy you write wins over it)",
    )
    idle_culler_timeout: int = Field(
        86400,
        ge=60,
        alias="JUPYTERHUB_IDLE_CULLER_TIMEOUT",
        description="Seed policy: stop a server idle this many seconds",
    )
    idle_culler_interval: float = Field(
        600,
        ge=1,
        le=86400,
        alias="JUPYTERHUB_IDLE_CULLER_INTERVAL",
        description="Seconds between two looks at every server's activity (each policy also wakes at its next "
        "warning or stop)",
    )
    idle_culler_max_age: int = Field(
        0,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_MAX_AGE",
        description="Seed policy: stop any server this many seconds old; 0: never",
    )
    idle_culler_max_extension: float = Field(
        24,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_MAX_EXTENSION",
        description="Seed policy: hours a user may keep their server beyond its idle deadline",
    )
    idle_culler_warn_before: int = Field(
        600,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_WARN_BEFORE",
        description="Seed policy: seconds before the stop that a notice is shown in JupyterLab; 0: none",
    )
    last_activity_interval: int = Field(
        300,
        ge=1,
        alias="JUPYTERHUB_LAST_ACTIVITY_INTERVAL",
        description="Seconds between the hub's reads of the proxy's per-server activity",
    )
    activity_interval: int = Field(
        300,
        ge=1,
        alias="JUPYTERHUB_ACTIVITY_INTERVAL",
        description="Seconds between a lab's own activity reports to the hub (kernels, terminals)",
    )
    activity_resolution: int = Field(
        30,
        ge=0,
        alias="JUPYTERHUB_ACTIVITY_RESOLUTION",
        description="Activity less than this many seconds newer than the recorded one is not written",
    )

    # --- backups ----------------------------------------------------------------------
    backup_location: str = Field(
        "",
        alias="BACKUP_LOCATION",
        description="Where backup archives go: `volume:<name>` (a named volume) or an absolute folder on the "
        "engine's host; empty: the named volume `<PLATFORM_ID>-backups`",
    )
    backup_concurrency: int = Field(
        2, ge=1, le=64, alias="BACKUP_CONCURRENCY", description="Volume backups and restores run at the same time"
    )
    backup_helper_image: str = Field(
        "jupyterhub-ds/base:bookworm",
        alias="BACKUP_HELPER_IMAGE",
        description="Image of the short-lived backup helper containers (tar, gzip, python3, timeout; never pulled)",
    )
    backup_user_max: int = Field(
        3,
        ge=1,
        le=1000,
        alias="BACKUP_USER_MAX",
        description="A user's own backups (taken before their resets) kept per user; a newer one that succeeded "
        "removes the oldest beyond this, archives first",
    )
    backup_user_ttl_seconds: int = Field(
        14 * 24 * 3600,
        ge=0,
        alias="BACKUP_USER_TTL_SECONDS",
        description="Seconds after it finished when a user's own backup is deleted with its archives; 0 keeps it "
        "(until BACKUP_USER_MAX pushes it out)",
    )
    rename_hold_days: float = Field(
        30,
        ge=0,
        le=3650,
        alias="RENAME_HOLD_DAYS",
        description="Days after a rename during which the old username can neither sign in nor be signed up "
        "again, and after them while a GroupMembership, Roster or the admin setting still names it "
        "(docs/users.md); 0: no days",
    )
    volume_sizes_max_age: float = Field(
        60.0,
        ge=0,
        alias="VOLUME_SIZES_MAX_AGE",
        description="Seconds the hub reuses one survey of volume sizes (the engine's disk usage) for Manage Volumes",
    )

    @field_validator("backup_location")
    @classmethod
    def _backup_location(cls, value: str) -> str:
        if value.startswith("volume:"):
            if not DOCKER_NAME.match(value.removeprefix("volume:")):
                raise ValueError("`volume:` must be followed by a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        elif value and not value.startswith("/"):
            raise ValueError("must be `volume:<name>`, an absolute folder on the engine's host, or empty")
        return value
