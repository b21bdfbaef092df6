"""Settings of `limited` Docker access (docs/docker-access.md): where the platform's proxy
puts each user's socket, and what happens to a user's containers around their server."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from .fields import Section


class DockerProxySettings(Section):
    """The Docker proxy of `limited` access and the lifecycle of its users' containers."""

    docker_proxy_dir: Path | None = Field(
        None,
        alias="DOCKER_PROXY_DIR",
        description="Folder of the per-user Docker proxy sockets (a folder per user, mounted into `limited` labs "
        "at /run/jhds-docker); empty: `docker-proxy` in JUPYTERHUB_STATE_DIR. A path on the engine's host",
    )
    docker_limited_grace_seconds: float = Field(
        600,
        ge=0,
        le=30 * 86400,
        alias="DOCKER_LIMITED_GRACE_SECONDS",
        description="A `limited` user's containers stop when their server stops (or their access ends) and are "
        "removed this many seconds later",
    )
    docker_limited_counts_as_activity: bool = Field(
        False,
        alias="DOCKER_LIMITED_COUNTS_AS_ACTIVITY",
        description="A `limited` user's running containers keep their server active for idle culling",
    )
    docker_audit_events_per_minute: int = Field(
        60,
        ge=1,
        le=10000,
        alias="DOCKER_AUDIT_EVENTS_PER_MINUTE",
        description="Audit events (creates, removes, refusals) recorded per `limited` user and minute; the rest "
        "are counted in one event",
    )
