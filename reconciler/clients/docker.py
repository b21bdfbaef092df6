"""The Docker engine, as the platform uses it: async (worker threads), errors mapped.

"Already gone" counts as done (DockerSpawner's manners); an unreachable engine or a 5xx is
a TemporaryError, so the loop retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

import docker
import docker.errors
import requests

from vocabulary import naming

from ..container_rules import host_config_facts, volume_bind_path
from ..errors import PermanentError, TemporaryError

DF_BUSY = "a disk usage operation is already running"  # the engine's answer to a second df
DF_WAIT = 120.0  # seconds a disk-usage report waits for another one to end (a scan of every volume)
T = TypeVar("T")
RemoveResult = Literal["removed", "absent"]


@dataclass(frozen=True)
class HelperMount:
    """A volume (or an absolute host path: a bind) in a helper container; a volume may be
    mounted twice (read-only to read, read-write to write)."""

    source: str
    target: str
    read_only: bool = False


class VolumeInUse(Exception):
    """The engine refuses to remove a volume a container still uses."""


# Writes down, in the store, an object the platform just created: (its id, what it is).
Recorder = Callable[[str, dict[str, Any]], None]


class EngineView(NamedTuple):
    """One survey pass: the running objects' facts, and the ids of every object that exists."""

    running: list[dict[str, Any]]
    present: set[str]


def container_facts(attrs: dict[str, Any], volume_bind: Callable[[str], str | None]) -> dict[str, Any]:
    """What, in a container's inspection, can give it power over the host (the engine's
    record of how it was created, not what its labels claim)."""
    mounts = attrs.get("Mounts") or []
    volume_binds = {}
    for m in mounts:
        if m.get("Type") == "volume" and m.get("Driver") == "local" and m.get("Name"):
            path = volume_bind(m["Name"])
            if path is not None:
                volume_binds[m["Name"]] = path
    return {
        **host_config_facts(attrs.get("HostConfig") or {}),
        "sources": [m.get("Source", "") for m in mounts if m.get("Type") == "bind"],
        "volume_binds": volume_binds,
    }


class Engine:
    def __init__(self, factory: Callable[[], docker.DockerClient] = docker.from_env, recorder: Recorder | None = None):
        self._factory = factory
        self._record: Recorder = recorder or (lambda object_id, body: None)
        self._volumes: dict[str, str | None] = {}  # volume name -> the host path it binds, if any
        self._client: docker.DockerClient | None = None
        self._tokens: dict[str, str | None] = {}  # container id -> its server's API token
        self._facts: dict[str, dict[str, Any]] = {}  # container id -> `container_facts`
        self._event_stream: Any = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as e:
            if e.status_code is not None and e.status_code >= 500:
                raise TemporaryError(f"engine error: {e.explanation or e}") from e
            raise
        except (requests.ConnectionError, requests.Timeout, docker.errors.DockerException) as e:
            raise TemporaryError(f"engine unreachable: {e}") from e

    async def remove_volume(self, name: str) -> RemoveResult:
        def remove() -> RemoveResult:
            try:
                self.client.api.remove_volume(name)
            except docker.errors.NotFound:
                return "absent"
            return "removed"

        try:
            return await self.call(remove)
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise VolumeInUse(str(e.explanation or e)) from None
            raise

    async def ensure_volume(self, name: str, labels: dict[str, str], beside: str | None = None) -> bool:
        """Create the volume with these labels unless it exists; True if it was created.
        `beside` (a user) matters on Swarm only: the volume goes on that user's node."""

        def ensure() -> bool:
            try:
                self.client.api.inspect_volume(name)
                return False
            except docker.errors.NotFound:
                self.client.api.create_volume(name=name, labels=labels)
                return True

        return await self.call(ensure)

    async def existing_volumes(self, names: list[str], sizes: bool = False) -> dict[str, dict[str, Any]]:
        """{name: {"size": bytes | None, "labels": {...}}} for the names that exist."""

        def look() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            for name in names:
                try:
                    info = self.client.api.inspect_volume(name)
                except docker.errors.NotFound:
                    continue
                found[name] = {"size": None, "labels": info.get("Labels") or {}}
            if sizes and found:
                # The engine computes sizes only in its disk-usage report (can take a moment).
                for vol in self.disk_usage().get("Volumes") or []:
                    if vol["Name"] in found:
                        size = (vol.get("UsageData") or {}).get("Size", -1)
                        found[vol["Name"]]["size"] = size if size >= 0 else None
            return found

        return await self.call(look)

    async def volume_sizes(self) -> dict[str, int | None]:
        """{volume name: bytes} of every volume: the engine's disk-usage report, a scan of its
        volumes (seconds on a large engine): callers survey it, never per request."""

        def look() -> dict[str, int | None]:
            found: dict[str, int | None] = {}
            for vol in self.disk_usage().get("Volumes") or []:
                size = (vol.get("UsageData") or {}).get("Size", -1)
                found[vol["Name"]] = size if size >= 0 else None
            return found

        return await self.call(look)

    def disk_usage(self) -> dict[str, Any]:
        """The engine's disk-usage report (blocking). The engine runs one at a time and answers
        a second caller "already running" (a 500) meanwhile: this platform's other survey, or
        another platform on the same engine. That caller waits for it to end, up to DF_WAIT."""
        deadline = time.monotonic() + DF_WAIT
        while True:
            try:
                return dict(self.client.api.df())
            except docker.errors.APIError as e:
                if DF_BUSY not in str(e.explanation or e) or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    async def user_containers(self, platform: str, user: str) -> list[dict[str, Any]]:
        """Containers of this platform labelled with this user, running or not."""
        filters = {"label": [f"{naming.LABEL_PLATFORM}={platform}", f"{naming.LABEL_USER}={user}"]}
        return await self.call(self.client.api.containers, all=True, filters=filters)

    async def server_tokens(self, platform: str) -> dict[tuple[str, str], str]:
        """{(user, server): the server's own JUPYTERHUB_API_TOKEN} of running containers.

        The token opens only that one server; reading it costs the hub nothing. Inspections
        are cached by container id (a restarted server is a new container, a new token).
        """

        def look() -> dict[tuple[str, str], str]:
            found: dict[tuple[str, str], str] = {}
            listed = self.client.api.containers(filters={"label": f"{naming.LABEL_PLATFORM}={platform}"})
            live = set()
            for c in listed:
                cid = c["Id"]
                live.add(cid)
                if cid not in self._tokens:
                    try:
                        env = self.client.api.inspect_container(cid)["Config"]["Env"] or []
                    except docker.errors.NotFound:
                        continue
                    token = next((e.split("=", 1)[1] for e in env if e.startswith("JUPYTERHUB_API_TOKEN=")), None)
                    self._tokens[cid] = token
                token = self._tokens[cid]
                labels = c.get("Labels") or {}
                if token and naming.LABEL_USER in labels:
                    found[(labels[naming.LABEL_USER], labels.get(naming.LABEL_SERVER, ""))] = token
            for gone in set(self._tokens) - live:
                del self._tokens[gone]
            return found

        return await self.call(look)

    async def running_containers(self, platform: str) -> list[dict[str, Any]]:
        """Running containers of this platform, with their labels and real mounts."""
        filters = {"label": f"{naming.LABEL_PLATFORM}={platform}", "status": "running"}
        return await self.call(self.client.api.containers, filters=filters)

    async def escalation_facts(self) -> EngineView:
        """Every running container on the engine, whoever made it, with what can give power
        over the host (`container_facts`), from one listing; inspections are cached by
        container id (these facts are fixed when a container is created) and volume
        inspections by volume name."""

        def look() -> EngineView:
            listed = self.client.api.containers(all=True)
            running = [c for c in listed if c.get("State") == "running"]
            found = []
            for c in running:
                cid = c["Id"]
                if cid not in self._facts:
                    try:
                        attrs = self.client.api.inspect_container(cid)
                    except docker.errors.NotFound:
                        continue
                    self._facts[cid] = container_facts(attrs, self._volume_bind)
                name = (c.get("Names") or ["/?"])[0].lstrip("/")
                labels = c.get("Labels") or {}
                found.append(
                    {"id": cid, "name": name, "labels": labels, "created": c.get("Created", 0), **self._facts[cid]}
                )
            for gone in set(self._facts) - {c["Id"] for c in running}:
                del self._facts[gone]
            used = {v for facts in self._facts.values() for v in facts["volume_binds"]}
            for gone in set(self._volumes) - used:
                del self._volumes[gone]
            return EngineView(found, {c["Id"] for c in listed})

        return await self.call(look)

    def _volume_bind(self, name: str) -> str | None:
        """The host path a named volume of the `local` driver binds (`o=bind`), else None;
        cached by name (a volume in use cannot be removed, so cannot change)."""
        if name not in self._volumes:
            try:
                info = self.client.api.inspect_volume(name)
            except docker.errors.NotFound:
                return None
            self._volumes[name] = volume_bind_path(info)
        return self._volumes[name]

    async def run_helper(
        self,
        name: str,
        image: str,
        command: list[str],
        mounts: list[HelperMount],
        labels: dict[str, str],
        user: str | None = None,  # on Swarm: whose node it runs on
        wait_seconds: float | None = None,  # then killed, whatever it is doing
    ) -> tuple[int, str]:
        """Run a short-lived helper container as root with no network; (exit code, output).
        The one place helper containers are created."""

        def run() -> tuple[int, str]:
            client = self.client
            with contextlib.suppress(docker.errors.NotFound):  # a leftover of an interrupted run
                client.api.remove_container(name, force=True)
            try:
                binds = [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in mounts]
                container = client.containers.create(
                    image, command, name=name, network_mode="none", user="0", volumes=binds, labels=labels
                )
            except docker.errors.ImageNotFound:
                raise PermanentError(
                    f"the helper image {image} is not on the engine (BACKUP_HELPER_IMAGE)", "HelperImageMissing"
                ) from None
            try:
                # Recorded before it starts: the survey knows it as the platform's by this id.
                self._record(container.id, {"role": "helper", "name": name, "user": user})
                container.start()
                try:
                    code = container.wait(timeout=wait_seconds)["StatusCode"]
                except (requests.ConnectionError, requests.Timeout):  # past its time: killed below
                    return 137, f"killed after {wait_seconds} s"
                return code, container.logs(stdout=True, stderr=True).decode(errors="replace")
            finally:
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)

        return await self.call(run)

    async def stop_helper(self, name: str, grace: float) -> None:
        """SIGTERM a helper (it removes what it wrote), SIGKILL after `grace` s; its runner
        then removes it. Already gone is done."""

        def stop() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.stop(name, timeout=int(grace))

        await self.call(stop)

    async def node_sockets(self) -> list[str]:
        """Other engines' sockets on this host (the Swarm nodes'); none for one engine."""
        return []

    async def stop_container(self, container_id: str) -> None:
        def stop() -> None:
            with contextlib.suppress(docker.errors.NotFound):  # already gone counts as done
                self.client.api.stop(container_id, timeout=5)

        await self.call(stop)

    async def inspect_containers(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """{id: the engine's inspection} of those of `ids` that exist (the Docker proxy's
        recorded containers: by id, never by label)."""

        def look() -> dict[str, dict[str, Any]]:
            found = {}
            for cid in ids:
                with contextlib.suppress(docker.errors.NotFound):
                    found[cid] = self.client.api.inspect_container(cid)
            return found

        return await self.call(look)

    async def remove_container(self, container_id: str) -> None:
        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):  # already gone counts as done
                self.client.api.remove_container(container_id, force=True)

        await self.call(remove)

    def watch_events(
        self, platform: str | None, on_event: Callable[[dict[str, Any]], None], stop: threading.Event
    ) -> None:
        """Blocking (run it in a thread): call `on_event` for container start/die events (of
        this platform, or of every container with `platform=None`) until `stop` is set.
        Reconnects after the engine restarts."""
        filters: dict[str, Any] = {"type": "container"}
        if platform is not None:
            filters["label"] = f"{naming.LABEL_PLATFORM}={platform}"

        def relay(event: dict[str, Any]) -> None:
            if event.get("status") in ("start", "die", "stop", "destroy"):
                on_event(event)

        self._watch(relay, stop, filters)

    def _watch(self, relay: Callable[[dict[str, Any]], None], stop: threading.Event, filters: dict[str, Any]) -> None:
        """The engine's event stream with these filters, each event to `relay`, until `stop`;
        reconnecting (after 2 s) whenever the engine goes away."""
        while not stop.is_set():
            try:
                stream = self._factory().api.events(decode=True, filters=filters)
                self._event_stream = stream
                for event in stream:
                    if stop.is_set():
                        break
                    relay(event)
            except Exception:  # engine away: wait and reconnect
                stop.wait(2)

    def stop_events(self) -> None:
        """Unblock `watch_events` (its thread waits on the engine's stream)."""
        if self._event_stream is not None:
            with contextlib.suppress(Exception):
                self._event_stream.close()
