"""The platform spawner on Docker Swarm (PLATFORM_BACKEND=swarm, docs/swarm.md): each user
server is a service, built by DockerSpawner's SwarmSpawner with the platform's names,
labels, volumes and policies (PlatformSpawner), and three differences:

- named volumes are mounted as volumes (SwarmSpawner makes every mount a bind), carrying
  the platform's labels, so the engine of the node creates them labelled;
- the service is constrained to the node that holds the user's volumes (recorded at their
  first start, the least loaded ready node then); if that node is not available the spawn
  fails with a message naming it;
- the Docker socket of `docker-privileged` members is that node's own socket;
- `limited` Docker access is not given: its proxy runs beside the reconciler, on the
  manager, and a lab on another node cannot reach its socket (DockerAccess says so).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from docker.types import Mount
from dockerspawner import SwarmSpawner

from reconciler.clients.swarm import Node, NodeDown, SwarmEngine
from vocabulary import naming

from . import gpu, refusals
from .backends import get_engine
from .refusals import SpawnRefused
from .spawner import PlatformSpawner, SpawnError, socket_group_id

FAILED_TASK = {"failed", "rejected", "shutdown", "orphaned", "remove", "complete"}


class SwarmPlatformSpawner(PlatformSpawner, SwarmSpawner):
    node: Node | None = None  # where the start in progress runs
    limited_docker_supported = False

    @property
    def engine(self) -> SwarmEngine:
        engine = get_engine()
        assert isinstance(engine, SwarmEngine), "PLATFORM_BACKEND=swarm gives a SwarmEngine"
        return engine

    async def gpu_decision(self) -> gpu.GpuDecision:
        return gpu.GpuDecision(False, "not on the Swarm backend (docs/swarm.md)")

    async def apply_policy(self, volumes: dict[str, Any], host_config: dict[str, Any], gpus: bool) -> dict[str, str]:
        labels = await super().apply_policy(volumes, host_config, gpus)
        eff = self._policy
        if eff is not None and (eff.gpu_count or eff.gpu_ids):
            raise SpawnRefused(
                "Your group policy gives you a GPU, which the Swarm backend does not support (Unsupported): "
                "ask an admin to start your server without one.",
                reason=refusals.GPU_UNSUPPORTED,
            )
        return labels

    async def ensure_user_volumes(self) -> None:
        """Nothing to do here: the task's volume mounts create them, labelled, on the node."""

    @property
    def mounts(self) -> list[Mount]:
        s = self.settings
        own = {name: key for key, name in self.user_volume_names().items()}
        mounts = []
        for source, vol in self.volume_binds.items():
            read_only = vol["mode"] == "ro"
            if source == s.docker_socket and self.node is not None:
                mounts.append(Mount(vol["bind"], self.node.socket, type="bind"))
            elif source.startswith("/"):
                mounts.append(Mount(vol["bind"], source, type="bind", read_only=read_only))
            else:
                labels = None
                if source in own:
                    labels = naming.object_labels(s.platform_id, self.user.name) | {naming.LABEL_VOLUME: own[source]}
                mounts.append(Mount(vol["bind"], source, type="volume", read_only=read_only, labels=labels))
        return mounts

    async def create_object(self) -> dict[str, Any]:
        s = self.settings
        try:
            self.node = await self.engine.node_for(
                s.platform_id, self.user.name, list(self.user_volume_names().values())
            )
        except NodeDown as e:
            raise SpawnRefused(f"Your server cannot start: {e}", reason=refusals.NODE_DOWN, status_code=503) from None
        if s.host_network:
            self.ip = self.node.addr or "127.0.0.1"
        host = self.extra_host_config or {}
        container: dict[str, Any] = {"labels": self.labels}
        if any(m["Target"] == "/var/run/docker.sock" for m in self.mounts):
            gid = socket_group_id(self.node.socket)  # known when the node is this host (the test swarm)
            if gid is not None:
                container["groups"] = [str(gid)]
        self.extra_container_spec = container
        self.extra_resources_spec = {"cpu_limit": host["nano_cpus"]} if host.get("nano_cpus") else {}
        self.extra_placement_spec = {"constraints": [f"node.id=={self.node.id}"]}
        self.extra_create_kwargs = {"labels": self.labels}  # SwarmSpawner does not render templates
        self.log.info(
            "Server %s of %s goes to node %s (%s)", self.object_name, self.user.name, self.node.name, self.node.id[:12]
        )
        return await super().create_object()

    async def start_object(self) -> None:
        """Wait for the task to run, polling every 0.2 s (SwarmSpawner backs off to 11 s), and
        fail at once with the engine's reason when the task is rejected or fails."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            task = await self.get_task()
            if task is None:
                raise SpawnError(f"The service {self.object_name} disappeared while starting")
            status = task["Status"]
            state = status["State"].lower()
            if state == "running":
                return
            if state in FAILED_TASK:
                where = f" on node {self.node.name}" if self.node else ""
                raise SpawnError(f"Your server did not start{where}: {status.get('Err') or state}")
            await asyncio.sleep(0.2)
        raise SpawnError(f"Your server did not start within {self.start_timeout} s")

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.settings.host_network:
            return self.ip, self.port
        return await SwarmSpawner.get_ip_and_port(self)
