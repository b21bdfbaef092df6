"""Settings of the reconciler: its loop and lanes, events, privileged access, broadcasts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from .fields import Section, parse_list


class ReconcilerSettings(Section):
    """The reconciler, the engine-access watch and broadcasts."""

    # --- the reconciler ---------------------------------------------------------------
    manifests_dir: str = Field(
        "", alias="MANIFESTS_DIR", description="Folder of desired-state manifests, watched (GitOps); empty: none"
    )
    gitops_prune: bool = Field(
        False, alias="GITOPS_PRUNE", description="Delete resources whose manifest left MANIFESTS_DIR"
    )
    resync_seconds: float = Field(
        30, ge=1, le=3600, alias="RESYNC_SECONDS", description="Interval of the reconciler's full resync"
    )
    reconciler_port: int = Field(
        8090, ge=1, le=65535, alias="RECONCILER_PORT", description="Port of the reconciler's /health and /metrics"
    )
    reconciler_workers: int = Field(
        4,
        ge=1,
        le=64,
        alias="RECONCILER_WORKERS",
        description="Workers of the fast lane: revocation, engine access, broadcasts, idle culling, groups, "
        "policies, restarts, resets",
    )
    reconciler_slow_workers: int = Field(
        2,
        ge=1,
        le=64,
        alias="RECONCILER_SLOW_WORKERS",
        description="Workers of the slow lane: backups, restores, backup schedules, rollouts",
    )
    reconcile_deadline: float = Field(
        300,
        ge=1,
        le=86400,
        alias="RECONCILE_DEADLINE",
        description="Seconds one reconcile of a fast-lane kind may take before it is cancelled (revocations, "
        "restarts and resets get at least twice DOCKER_SPAWN_TIMEOUT + 60, broadcasts BROADCAST_DEADLINE + 60)",
    )
    reconcile_slow_deadline: float = Field(
        22200,  # above backups' default activeDeadlineSeconds (6 h): the helper's own deadline ends it first
        ge=1,
        le=604800,
        alias="RECONCILE_SLOW_DEADLINE",
        description=(
            "Seconds one reconcile of a slow-lane kind may take before it is cancelled "
            "(keep it above the backups' `activeDeadlineSeconds`)"
        ),
    )
    reconciler_test_hooks: bool = Field(
        False,
        alias="RECONCILER_TEST_HOOKS",
        description="For tests only, never in production: a resource labelled `jupyterhub-ds/test-hang: <seconds>` "
        "hangs that long in its reconcile, ignoring cancellation (a stuck worker)",
    )

    events_max_age_days: float = Field(
        30, gt=0, alias="EVENTS_MAX_AGE_DAYS", description="Events older than this are deleted"
    )
    events_max_rows: int = Field(
        100_000, ge=100, alias="EVENTS_MAX_ROWS", description="At most this many events are kept (the newest)"
    )
    events_max_per_subject: int = Field(
        1000,
        ge=10,
        alias="EVENTS_MAX_PER_SUBJECT",
        description="At most this many events are kept per user (the newest), so one user's requests cannot push "
        "out anyone else's history",
    )
    deliveries_max_age_days: float = Field(
        30, gt=0, alias="DELIVERIES_MAX_AGE_DAYS", description="Broadcast delivery records older than this are deleted"
    )
    deliveries_max_rows: int = Field(
        500_000,
        ge=1000,
        alias="DELIVERIES_MAX_ROWS",
        description="At most this many broadcast delivery records are kept (the newest)",
    )

    # --- privileged access ------------------------------------------------------------
    privileged_drift_policy: Literal["restart", "stop", "report"] = Field(
        "restart",
        alias="PRIVILEGED_DRIFT_POLICY",
        description="A server with the socket whose user left docker-privileged: restart, stop or report",
    )
    engine_access_allowed: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        alias="ENGINE_ACCESS_ALLOWED",
        description="Containers (names or globs, comma-separated) allowed the engine socket and the host's network "
        "besides the platform's servers: the platform's own (hub, Traefik, Watchtower)",
    )
    privileged_restart_on_grant: bool = Field(
        False,
        alias="PRIVILEGED_RESTART_ON_GRANT",
        description="Restart a new member's running server to add the socket",
    )

    # --- broadcasts -------------------------------------------------------------------
    broadcast_concurrency: int = Field(
        50, ge=1, le=1000, alias="BROADCAST_CONCURRENCY", description="Notifications sent at the same time"
    )
    broadcast_attempt_timeout: float = Field(
        5, gt=0, le=60, alias="BROADCAST_ATTEMPT_TIMEOUT", description="Seconds one delivery attempt may take"
    )
    broadcast_deadline: float = Field(
        60, gt=0, le=3600, alias="BROADCAST_DEADLINE", description="Seconds a broadcast keeps retrying a server"
    )

    @field_validator("engine_access_allowed", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        value = parse_list(value)
        for pattern in value if isinstance(value, list) else []:
            if isinstance(pattern, str) and not pattern.strip("*?[]!"):
                # A bare wildcard would allow every container: the survey would see nothing.
                raise ValueError(f"{pattern!r} matches every container name; list the platform's own containers")
        return value
