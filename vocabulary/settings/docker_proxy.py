"""Settings of limited Docker access (docs/docker-access.md): where the proxy's sockets are,
and what a user's containers may publish on."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from .fields import Section


class DockerProxySettings(Section):
    """The limited Docker proxy (one per engine host, in the reconciler's process)."""

    docker_proxy_dir: Path | None = Field(
        None,
        alias="DOCKER_PROXY_DIR",
        description="Folder of the per-user Docker proxy sockets (a folder per user, mounted into `limited` labs "
        "at /run/jhds-docker); empty: `docker-proxy` in JUPYTERHUB_STATE_DIR. A path on the engine's host",
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
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        for address in value if isinstance(value, list) else []:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return value
