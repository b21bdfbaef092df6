"""DockerSpawner for the platform: templated names and volumes, labels, Docker access (the socket,
or the proxy's folder), GPU, host network, and the user's GroupPolicies (limits, environment,
volumes, images, the groups' server caps; docs/policies.md). One piece: it is the one
subclass JupyterHub calls, and each part is a method of it, the checks before a start in
their own modules (refusals, quota_check, server_caps, accounts)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import docker.errors
from dockerspawner import DockerSpawner
from jupyterhub import orm
from jupyterhub.utils import random_port
from traitlets import default

from reconciler.api.common import TERMINAL_PHASES
from reconciler.effective import Effective, allowed_images, image_problem, policy_hash
from vocabulary import naming, scopes
from vocabulary.settings import Settings, get_settings

from . import gpu, quota_check, refusals, server_caps, usage
from .accounts import refuse_while_one_time
from .backends import get_store
from .policies import caps_for_groups, effective_for, image_form
from .refusals import SpawnRefused

RESET_WAIT_SECONDS = 60  # well inside the spawn timeout


def resets_in_progress(username: str) -> list[str]:
    """Unfinished (or unbegun) VolumeResets, VolumeRestores and UserRenames of this user:
    one indexed lookup per kind, however many finished ones the store holds."""
    return [
        r.name
        for kind in ("VolumeReset", "VolumeRestore", "UserRename")
        for r in get_store().open_requests(kind, username)
        if r.status.get("phase") not in TERMINAL_PHASES
    ]


def literal(value: str) -> str:
    """A value DockerSpawner's template rendering gives back unchanged."""
    return value.replace("{", "{{").replace("}", "}}")


class SpawnError(RuntimeError):
    """A spawn failed (not a refusal: `SpawnRefused`); the message is shown to the user on the
    spawn page."""


def ensure_privileged_group(db: Any, log: Any) -> orm.Group:
    """Get or create the built-in `docker-privileged` group (an admin may have deleted it)."""
    group = orm.Group.find(db, naming.PRIVILEGED_GROUP)
    if group is None:
        group = orm.Group(name=naming.PRIVILEGED_GROUP)
        db.add(group)
        db.commit()
        log.warning("Recreated group %s: it had been deleted", naming.PRIVILEGED_GROUP)
    return group


def ensure_proxy_dir(root: Path, user: str) -> Path:
    """The user's folder of the Docker proxy's socket (`naming.docker_proxy_dir`), made if
    missing: 0711, so the lab's user reaches the socket inside but lists nothing."""
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    folder = naming.docker_proxy_dir(root, user)
    folder.mkdir(mode=0o711, exist_ok=True)
    os.chmod(folder, 0o711)  # mkdir's mode is cut by the umask
    return folder


def socket_group_id(path: str) -> int | None:
    """Group owning the engine socket, so the lab's non-root user may use it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_gid if stat.S_ISSOCK(st.st_mode) else None


class PlatformSpawner(usage.SessionRecords, DockerSpawner):
    """One container per user server, named and labelled through `vocabulary.naming`."""

    _policy: Effective | None = None  # the effective policy of the start in progress
    _docker_limited = False  # the start in progress mounts the Docker proxy's folder
    # `limited` Docker access: the proxy runs beside the reconciler, on this engine's host.
    limited_docker_supported = True
    _configured_limits: tuple[Any, Any] | None = None
    labels: dict[str, str] = {}  # of the start in progress, as they are (not template-escaped)

    @property
    def settings(self) -> Settings:
        return get_settings()

    @default("options_form")
    def _options_form_default(self) -> Any:
        return image_form  # evaluated at each visit of the spawn page: policies change

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self._policy is not None and self._policy.environment:
            # Reserved names (JUPYTERHUB_*) are refused in the spec; never override the hub's own.
            env.update({k: v for k, v in self._policy.environment.items() if k not in env})
        if self._docker_limited:  # the platform's, over any policy's DOCKER_HOST
            env["DOCKER_HOST"] = naming.LAB_DOCKER_HOST
        return env

    async def refuse_private_volume(self, name: str) -> None:
        """A policy shares team volumes; a user's own volume (home, workspace...) is never one."""
        try:
            info = await self.docker("inspect_volume", name)
        except docker.errors.NotFound:
            return  # the engine creates it, empty, at the start
        if naming.LABEL_USER in (info.get("Labels") or {}):
            raise SpawnRefused(
                f"A group policy mounts the volume {name}, which is a user's own volume: refused.",
                reason=refusals.VOLUME_NOT_SHAREABLE,
            )

    async def apply_policy(self, volumes: dict[str, Any], host_config: dict[str, Any], gpus: bool) -> dict[str, str]:
        """The user's effective GroupPolicy on this start: image (checked against the allowed
        list), limits, volumes, GPUs, the Docker socket; the labels that let drift be told
        later. Without any policy the start is as it always was (the platform's image and
        limits). The socket (and its group) is added or taken out here, whatever the caller
        put in: only when a policy gives it AND the user is in a group that may have it."""
        s = self.settings
        eff = self._policy = await effective_for(self.user)
        allowed = allowed_images(eff, s.notebook_image)
        image = self.user_options.get("image") or eff.default_image or s.notebook_image
        if problem := image_problem(image, eff, s.notebook_image):
            raise SpawnRefused(problem, reason=refusals.IMAGE_NOT_ALLOWED)
        self.image = image
        self.allowed_images = {i: i for i in allowed}  # DockerSpawner's own check agrees
        if self._configured_limits is None:  # this object outlives a start: keep the config's own
            self._configured_limits = (self.mem_limit, self.cpu_limit)
        self.mem_limit = eff.memory or self._configured_limits[0]
        self.cpu_limit = None if eff.cpus else self._configured_limits[1]  # nano_cpus instead
        if eff.cpus:
            host_config["nano_cpus"] = int(eff.cpus * 1e9)
        for name, volume in (eff.volumes or {}).items():
            await self.refuse_private_volume(name)
            volumes[name] = {"bind": volume["mount"], "mode": "ro" if volume.get("readOnly") else "rw"}
        if gpus and (eff.gpu_count or eff.gpu_ids):
            request = {"device_ids": eff.gpu_ids} if eff.gpu_ids else {"count": eff.gpu_count}
            host_config["device_requests"] = [{**request, "capabilities": [["gpu"]]}]
        socket = self.docker_access(volumes, host_config, eff)
        try:
            image_id = (await self.docker("inspect_image", image))["Id"]
        except docker.errors.NotFound:
            image_id = ""  # DockerSpawner's pull (and our SpawnError) say what is wrong
        return {
            naming.LABEL_POLICY_HASH: policy_hash(eff),
            naming.LABEL_POLICY: json.dumps(eff.as_dict(), sort_keys=True, separators=(",", ":")),
            naming.LABEL_IMAGE: image,
            naming.LABEL_IMAGE_ID: image_id,
            naming.LABEL_SOCKET: "true" if socket else "false",
        }

    def docker_access(self, volumes: dict[str, Any], host_config: dict[str, Any], eff: Effective) -> bool:
        """The engine socket (privileged: the policy gives it AND the user is a member), or
        the proxy's folder (limited), or neither; never both, whatever the caller put in.
        True when the socket is given."""
        s = self.settings
        socket, gid = eff.docker_socket and self.is_privileged(), socket_group_id(s.docker_socket)
        groups = [g for g in host_config.pop("group_add", []) if g != str(gid)]
        volumes.pop(s.docker_socket, None)
        for source, target in list(volumes.items()):  # values: a mount path, or {bind, mode}
            if (target.get("bind") if isinstance(target, dict) else target) == naming.LAB_DOCKER_DIR:
                volumes.pop(source)
        if socket:
            volumes[s.docker_socket] = {"bind": "/var/run/docker.sock", "mode": "rw"}
            groups += [str(gid)] if gid is not None else []
        if groups:
            host_config["group_add"] = groups
        self._docker_limited = eff.docker_access == "limited" and self.limited_docker_supported
        if self._docker_limited:
            # Read-only: the lab connects to the socket (connect() writes nothing) and makes no files there.
            folder = ensure_proxy_dir(s.docker_proxy_root, self.user.name)
            volumes[str(folder)] = {"bind": naming.LAB_DOCKER_DIR, "mode": "ro"}
        elif eff.docker_access == "limited":
            self.log.warning("%s has limited Docker access, which this backend does not give", self.user.name)
        return socket

    def _record_body(self) -> dict[str, Any]:
        gpus = 1 if self.extra_host_config.get("device_requests") else 0  # the usage ledger's GPU time
        return {
            "role": "lab",
            "user": self.user.name,
            "server": self.name or "",
            "name": self.object_name,
            "gpus": gpus,
        }

    async def record_object(self, object_id: str) -> None:
        """Write down in the store that this container (Swarm: service) is this server, before
        it starts: the engine-wide survey and the per-user watch know the platform's servers
        by these ids, never by labels (which anyone with the socket can copy)."""
        if not object_id:
            return
        body = self._record_body() | {"recorded": time.time()}
        await asyncio.to_thread(get_store().write_observed, naming.OWNED_KIND, object_id, body)

    async def create_object(self) -> dict[str, Any]:
        obj = await super().create_object()
        await self.record_object(obj[self.object_id_key])  # Swarm: its start_object is only a wait
        return obj

    async def start_object(self) -> None:
        await self.record_object(self.object_id)  # also a container reused (DockerSpawner.remove off)
        await super().start_object()

    def load_state(self, state: dict[str, Any]) -> None:
        """At the hub's start, the servers it already runs are recorded from its own state (a
        platform upgraded from a version that did not record them keeps its servers); in a
        worker thread, never on the hub's event loop."""
        super().load_state(state)
        if not self.object_id:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script loading state): write it here
            body = self._record_body() | {"recorded": time.time()}
            get_store().write_observed(naming.OWNED_KIND, self.object_id, body)
            return
        self._recording = loop.create_task(self.record_object(self.object_id))  # kept: not collected mid-way

    async def rename(self, old_name: str, new_name: str) -> None:
        """JupyterHub 6 renames a stopped named server (`PATCH .../servers/<old>` with a new
        `name`; its start-up `autorename` of names 6 refuses changes only the database,
        docs/jupyterhub6.md). What the platform keeps of a server belongs to its user, not
        to the server's name: the volumes (`naming.volume_name`: user and key), the Swarm
        placement, the backups and the keep-alive record are the renamed server's as they
        were. Only the container (Swarm: service) carries the name: one left under the old
        name is removed now, as the next start would (`remove` is on), so none is orphaned."""
        if await self.get_object() is not None:
            self.log.info("Removing %s %s of %s before its rename", self.object_type, self.object_name, old_name)
            await self.remove_object()
        self.object_id = ""
        self.orm_spawner.state = self.get_state()  # no name of the old object left to load

    @default("object_name")
    def _object_name_default(self) -> str:
        return naming.container_name(self.settings.container_prefix, self.user.name, self.name or "")

    def user_volume_names(self) -> dict[str, str]:
        s = self.settings
        return naming.user_volume_names(s.volume_name_template, self.user.name, list(s.user_volumes))

    def is_privileged(self) -> bool:
        """A member of a group a policy may give the socket (docker-privileged): checked again
        at spawn, besides the policy (defence in depth; the watch revokes by membership)."""
        return any(g.name in scopes.SOCKET_GROUPS for g in self.user.groups)

    async def ensure_user_volumes(self) -> None:
        """Create missing per-user volumes with labels, so they can be found by label."""
        s = self.settings
        for key, name in self.user_volume_names().items():
            try:
                await self.docker("inspect_volume", name)
            except docker.errors.NotFound:
                labels = naming.object_labels(s.platform_id, self.user.name) | {naming.LABEL_VOLUME: key}
                await self.docker("create_volume", name=name, labels=labels)
                self.log.info("Created volume %s for %s", name, self.user.name)

    async def pull_image(self, image: str) -> None:
        try:
            await super().pull_image(image)
        except docker.errors.APIError as e:
            raise SpawnError(
                f"The server image {image} is not on the Docker engine and could not be pulled "
                f"({e.explanation or e}). An admin must build it (make images) or set DOCKER_NOTEBOOK_IMAGE."
            ) from None

    async def wait_for_volume_resets(self) -> None:
        """A start must never overlap a reset of the same user's volumes: wait, bounded."""
        deadline = time.monotonic() + RESET_WAIT_SECONDS
        logged = False
        while pending := await asyncio.to_thread(resets_in_progress, self.user.name):
            if not logged:
                self.log.info("Start of %s waits for volume reset %s", self.user.name, ", ".join(pending))
                logged = True
            if time.monotonic() > deadline:
                raise SpawnRefused(
                    f"A reset of your volumes ({', '.join(pending)}) is still in progress. "
                    "Try again in a minute; ask an admin if this persists.",
                    reason=refusals.VOLUME_RESET_PENDING,
                    status_code=409,
                )
            await asyncio.sleep(0.5)

    async def start(self) -> tuple[str, int]:
        s = self.settings
        await refuse_while_one_time(self)  # a Roster's one-time password: set your own first
        await quota_check.refuse_if_used_up(self)  # GroupPolicy quota: refused at 100 %
        caps = await asyncio.to_thread(caps_for_groups, [g.name for g in self.user.groups])
        server_caps.admit(self, caps)  # GroupPolicy maxActiveServers: refused if a group is full
        try:
            address = await self._start(s)
        except BaseException:
            server_caps.release(self)
            raise
        await usage.record_start(self)
        return address

    async def stop(self, now: bool = False) -> None:
        server_caps.release(self)
        self._stopped_by_hub = True
        await super().stop(now=now)

    async def _start(self, s: Settings) -> tuple[str, int]:
        await self.wait_for_volume_resets()
        if not self.object_id:
            # A renamed user keeps their Spawner objects (JupyterHub renames in place): the
            # container is named for who they are now, not who they were at its first start.
            self.object_name = self._object_name_default()
        ensure_privileged_group(self.user.db, self.log)
        decision = await self.gpu_decision()

        volumes: dict[str, Any] = {name: s.user_volumes[key] for key, name in self.user_volume_names().items()}
        if s.shared_volume:
            volumes[s.shared_volume] = s.shared_volume_mount
        host_config: dict[str, Any] = {}
        if decision.enabled:
            host_config["device_requests"] = [{"count": -1, "capabilities": [["gpu"]]}]
        policy_labels = await self.apply_policy(volumes, host_config, decision.enabled)  # and the socket
        privileged = policy_labels[naming.LABEL_SOCKET] == "true"
        self.volumes = volumes
        await self.ensure_user_volumes()

        if s.host_network:
            # No bridge: the server shares the host's network and needs a port of its own.
            self.ip = "127.0.0.1"
            self.port = random_port()

        spawn_config = {
            "image": self.image,
            "volumes": volumes,
            "network": s.network_name,
            "gpu": decision.enabled,
            "mem_limit": s.mem_limit,
            "cpu_limit": s.cpu_limit,
            "notebook_dir": s.notebook_dir,
        }
        if self._policy and self._policy.policies:  # unchanged without a policy
            spawn_config["policy"] = policy_labels[naming.LABEL_POLICY_HASH]
        labels = naming.object_labels(s.platform_id, self.user.name, self.name or "") | {
            naming.LABEL_SOCKET: "true" if privileged else "false",
            naming.LABEL_SPAWN_HASH: naming.spawn_hash(spawn_config),
            **policy_labels,
        }
        self.labels = labels
        # DockerSpawner formats these values as templates ({username}...): keep them literal.
        self.extra_create_kwargs = {"labels": {k: literal(v) for k, v in labels.items()}}
        self.extra_host_config = host_config
        self.log.info(
            "Starting server %s of %s (docker: %s, gpu: %s)",
            self.object_name,
            self.user.name,
            "socket" if privileged else "limited" if self._docker_limited else "none",
            "yes" if decision.enabled else "no",
        )
        ip, port = await super().start()
        await self.wait_answering(ip, port)
        return ip, port

    async def gpu_decision(self) -> gpu.GpuDecision:
        s = self.settings
        return await gpu.decision(s.gpu_mode, self.client.info, s.gpu_detect_timeout)

    async def wait_answering(self, ip: str, port: int) -> None:
        """Poll the new lab every 50 ms until it answers. JupyterHub's own check backs off
        randomly up to seconds between tries; this way its first try succeeds. With aiohttp of
        its own: nothing here depends on the hub's HTTP client (tornado's, curl-backed, in
        JupyterHub 5; aiohttp in 6) or its settings."""
        url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"
        deadline = time.monotonic() + self.http_timeout
        next_poll = time.monotonic() + 1
        timeout = aiohttp.ClientTimeout(total=2, connect=1)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(url, allow_redirects=False) as response:
                        if response.status < 500:
                            return
                except (TimeoutError, OSError, aiohttp.ClientError):  # not listening yet
                    pass
                if time.monotonic() > next_poll:
                    next_poll = time.monotonic() + 1
                    if await self.poll() is not None:
                        return  # the container died: let JupyterHub report the failure
                await asyncio.sleep(0.05)

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.settings.host_network:
            return self.ip, self.port
        return await super().get_ip_and_port()
