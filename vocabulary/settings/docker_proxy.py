"""Settings of `limited` Docker access (docs/docker-access.md): where the platform's proxy
puts each user's socket, what a user's containers may publish on, and what happens to
them around their server."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from .fields import Section, parse_list


class DockerProxySettings(Section):
    """The Docker proxy of `limited` access (one per engine host, in the reconciler's process)
    and the lifecycle of its users' containers."""

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
    docker_proxy_publish_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1"],
        alias="DOCKER_PROXY_PUBLISH_ADDRESSES",
        description="Host addresses (comma-separated) a user's containers may publish ports on through the proxy; "
        "0.0.0.0 is every address",
    )

    @field_validator("docker_proxy_publish_addresses", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        value = parse_list(value)
        for address in value if isinstance(value, list) else []:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return value
