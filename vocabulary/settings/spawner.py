"""Settings of the users' servers: DockerSpawner (image, network, limits, volumes) and GPUs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from .fields import (
    DEFAULT_USER_VOLUMES,
    DEFAULT_VOLUME_DESCRIPTIONS,
    DOCKER_NAME,
    VOLUME_KEY,
    DockerName,
    GpuMode,
    Section,
    parse_mapping,
)


class SpawnerSettings(Section):
    """The users' servers: how DockerSpawner starts them, their volumes and GPUs."""

    # --- DockerSpawner ----------------------------------------------------------------
    backend: Literal["docker", "swarm"] = Field(
        "docker",
        alias="PLATFORM_BACKEND",
        description="`docker`: a container per server; `swarm`: a Swarm service per server (DOCKER_HOST: a manager)",
    )
    notebook_image: str = Field(
        "jupyterhub-ds/lab:ds", alias="DOCKER_NOTEBOOK_IMAGE", description="Image of user servers"
    )
    notebook_dir: str = Field(
        "/home/lab/workspace", alias="DOCKER_NOTEBOOK_DIR", description="Folder JupyterLab opens in"
    )
    network_name: str = Field(
        "host", alias="DOCKER_NETWORK_NAME", description="`host`, or a Docker network shared with the hub"
    )
    pull_policy: Literal["ifnotpresent", "never", "always"] = Field(
        "ifnotpresent", alias="DOCKER_PULL_POLICY", description="When the spawner pulls the image"
    )
    container_prefix: DockerName = Field(
        "jupyterlab", alias="DOCKER_CONTAINER_PREFIX", description="Prefix of user container names"
    )
    spawn_timeout: int = Field(
        120, ge=10, alias="DOCKER_SPAWN_TIMEOUT", description="Seconds a server may take to start"
    )
    mem_limit: str = Field(
        "", alias="DOCKER_MEM_LIMIT", description="Memory limit per user container, e.g. 4G; empty: none"
    )
    cpu_limit: float = Field(0, ge=0, alias="DOCKER_CPU_LIMIT", description="CPUs per user container; 0: no limit")
    user_volumes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_USER_VOLUMES),
        alias="USER_VOLUMES",
        description="Per-user volumes, `key=mount,...` or JSON",
    )
    volume_descriptions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_VOLUME_DESCRIPTIONS),
        alias="USER_VOLUME_DESCRIPTIONS",
        description="What each per-user volume holds (shown before a reset), JSON or `key=text,...`",
    )
    volume_name_template: str = Field(
        "jupyterlab-{username}_{volume}",
        alias="USER_VOLUME_NAME_TEMPLATE",
        description="Name of a per-user volume; `{username}` is escaped",
    )
    shared_volume: str = Field(
        "", alias="SHARED_VOLUME_NAME", description="Volume mounted in every server (e.g. CIFS); empty: none"
    )
    shared_volume_mount: str = Field(
        "/mnt/shared", alias="SHARED_VOLUME_MOUNT", description="Where the shared volume is mounted"
    )
    docker_socket: str = Field(
        "/var/run/docker.sock",
        alias="DOCKER_SOCKET_PATH",
        description="Engine socket given to `docker-privileged` members",
    )

    # --- GPU --------------------------------------------------------------------------
    gpu_mode: GpuMode = Field(GpuMode.AUTO, alias="ENABLE_GPU_SUPPORT", description="0 off, 1 on, 2 auto-detect")
    gpu_detect_timeout: float = Field(
        10.0, gt=0, le=120, alias="GPU_DETECT_TIMEOUT", description="Seconds auto-detection may take"
    )

    @field_validator("user_volumes", "volume_descriptions", mode="before")
    @classmethod
    def _mapping(cls, value: object) -> object:
        return parse_mapping(value)

    @field_validator("gpu_mode", mode="before")
    @classmethod
    def _gpu_mode(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @field_validator("network_name")
    @classmethod
    def _network(cls, value: str) -> str:
        if value in ("bridge", "none"):
            raise ValueError(
                "allowed values: `host`, or the name of a user-defined Docker network "
                f"(the default `{value}` network gives containers no route to the hub by name)"
            )
        if not DOCKER_NAME.match(value):
            raise ValueError("allowed values: `host`, or a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        return value

    @field_validator("shared_volume")
    @classmethod
    def _shared(cls, value: str) -> str:
        if value and not DOCKER_NAME.match(value):
            raise ValueError("must be a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or empty")
        return value

    @field_validator("user_volumes")
    @classmethod
    def _volumes(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one per-user volume is needed, e.g. home=/home")
        for key, mount in value.items():
            if not VOLUME_KEY.match(key):
                raise ValueError(f"volume key {key!r} must match [a-z0-9][a-z0-9_-]*")
            if not mount.startswith("/"):
                raise ValueError(f"mount point of {key!r} must be an absolute path, got {mount!r}")
        return value

    @field_validator("volume_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            sample = value.format(username="u", volume="v")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"only {{username}} and {{volume}} may be used ({e})") from None
        if "{username}" not in value or "{volume}" not in value:
            raise ValueError("must contain both {username} and {volume}")
        if not DOCKER_NAME.match(sample):
            raise ValueError("must give a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        return value

    @field_validator("mem_limit")
    @classmethod
    def _mem(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d+[KMGT]?", value.upper()):
            raise ValueError("must be a size such as 512M or 4G, or empty")
        return value.upper()

    @model_validator(mode="after")
    def _shared_not_user_volume(self) -> SpawnerSettings:
        if self.shared_volume and self.shared_volume_mount in self.user_volumes.values():
            raise ValueError("SHARED_VOLUME_MOUNT must differ from every per-user mount point")
        return self
