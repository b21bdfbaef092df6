"""Docker Swarm as the platform uses it (PLATFORM_BACKEND=swarm, docs/swarm.md).

Each user server is a service. To the controllers it looks like a container (`as_container`),
so they run unchanged. Volumes are local to a node and the manager's API cannot see them:
the node holding a user's volumes is recorded at their first start (`Placements`), and
everything that touches volumes (inspect, create, remove, backups) runs as a one-off task
constrained to that node. A task that must reach the node's engine mounts the node's own
socket, named by the node label `io.jupyterhub-ds.socket`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import ContainerSpec, Mount, Placement, RestartPolicy, TaskTemplate

from vocabulary import naming

from ..errors import PermanentError, TemporaryError
from .docker import Engine, EngineView, HelperMount, Recorder, RemoveResult, VolumeInUse
from .swarm_nodes import Node, NodeDown, Placements, least_loaded
from .swarm_services import as_container, service_facts, strip_log_headers

__all__ = ["Node", "NodeDown", "Placements", "SwarmEngine", "as_container", "least_loaded", "strip_log_headers"]

AGENT = (Path(__file__).parent / "node_agent.py").read_text()
TASK_TIMEOUT = 600.0
DONE_STATES = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}


class SwarmEngine(Engine):
    def __init__(
        self,
        placements: Placements,
        helper_image: str,
        default_socket: str = "/var/run/docker.sock",
        factory: Callable[[], docker.DockerClient] = docker.from_env,
        platform: str = "jupyterhub-ds",
        recorder: Recorder | None = None,
    ):
        super().__init__(factory, recorder)
        self.platform = platform
        self.placements, self.helper_image, self.default_socket = placements, helper_image, default_socket
        self._service_labels: dict[str, dict[str, str]] = {}  # service id -> labels, for remove events

    # --- nodes and placement --------------------------------------------------------
    async def node_sockets(self) -> list[str]:
        return sorted({n.socket for n in await self.call(self.nodes_now)})

    def nodes_now(self) -> list[Node]:
        return [Node.of(n, self.default_socket) for n in self.client.api.nodes()]

    def load_now(self, platform: str) -> dict[str, int]:
        """Running or starting tasks of this platform's servers, per node."""
        load: dict[str, int] = {}
        services = self.client.api.services(filters={"label": f"{naming.LABEL_PLATFORM}={platform}"})
        ids = {s["ID"] for s in services if naming.LABEL_USER in (s["Spec"].get("Labels") or {})}
        for task in self.client.api.tasks(filters={"desired-state": "running"}):
            if task.get("ServiceID") in ids and task.get("NodeID"):
                load[task["NodeID"]] = load.get(task["NodeID"], 0) + 1
        return load

    def node_for_now(self, platform: str, user: str, volumes: list[str]) -> Node:
        """The user's node: the recorded one (which must be ready), else the least loaded,
        recorded now. Blocking; see `node_for`."""
        nodes = {n.id: n for n in self.nodes_now()}
        record = self.placements.read_all().get(user)
        if record:
            node = nodes.get(record["node"])
            if node is None or not node.ready:
                raise NodeDown(user, node, record["node"])
            if set(volumes) - set(record.get("volumes", [])):
                self.placements.write(user, record | {"volumes": sorted({*record.get("volumes", []), *volumes})})
            return node
        chosen = least_loaded(list(nodes.values()), self.load_now(platform))
        if chosen is None:
            raise TemporaryError("no Swarm node is ready and active")
        since = datetime.now(UTC).isoformat()
        self.placements.write(
            user, {"node": chosen.id, "nodeName": chosen.name, "volumes": sorted(volumes), "since": since}
        )
        return chosen

    async def node_for(self, platform: str, user: str, volumes: list[str]) -> Node:
        return await self.call(self.node_for_now, platform, user, volumes)

    # --- servers, seen as containers ------------------------------------------------
    def _servers(self, platform: str, user: str | None = None) -> list[dict[str, Any]]:
        labels = [f"{naming.LABEL_PLATFORM}={platform}"] + ([f"{naming.LABEL_USER}={user}"] if user else [])
        services = self.client.api.services(filters={"label": labels})
        return [as_container(s) for s in services]

    async def user_containers(self, platform: str, user: str) -> list[dict[str, Any]]:
        return await self.call(self._servers, platform, user)

    async def running_containers(self, platform: str) -> list[dict[str, Any]]:
        return await self.call(self._servers, platform)

    async def server_tokens(self, platform: str) -> dict[tuple[str, str], str]:
        """From the services' specs (the manager has them; the containers are on the nodes)."""

        def look() -> dict[tuple[str, str], str]:
            found = {}
            for c in self._servers(platform):
                token = next((e.split("=", 1)[1] for e in c["Env"] if e.startswith("JUPYTERHUB_API_TOKEN=")), None)
                if token and naming.LABEL_USER in c["Labels"]:
                    found[(c["Labels"][naming.LABEL_USER], c["Labels"].get(naming.LABEL_SERVER, ""))] = token
            return found

        return await self.call(look)

    async def escalation_facts(self) -> EngineView:
        """Every service of the swarm (facts from its spec: a Swarm service cannot be
        privileged or share the host's namespaces), and the manager's own containers that
        are not a service's task. A container is a task when the swarm lists it as one,
        not when its labels say so."""
        local = await super().escalation_facts()

        def services() -> tuple[list[dict[str, Any]], set[str]]:
            return [service_facts(s) for s in self.client.api.services()], self._task_containers()

        found, tasks = await self.call(services)
        mine = [c for c in local.running if c["id"] not in tasks]
        return EngineView(mine + found, local.present | {f["id"] for f in found})

    def _task_containers(self) -> set[str]:
        """The container ids of the swarm's tasks (as the swarm knows them)."""
        ids = set()
        for t in self.client.api.tasks():
            cid = ((t.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
            if cid:
                ids.add(cid)
        return ids

    async def stop_container(self, container_id: str) -> None:
        """A service is removed (a Swarm service has no stop); else a container is stopped."""

        def stop() -> bool:
            try:
                self.client.api.remove_service(container_id)
                return True
            except docker.errors.NotFound:
                return False

        if not await self.call(stop):
            await super().stop_container(container_id)

    def watch_events(
        self, platform: str | None, on_event: Callable[[dict[str, Any]], None], stop: threading.Event
    ) -> None:
        """Service events, told as container events with the service's labels: a created or
        updated service as `start`, a removed one as `destroy`."""

        def relay(event: dict[str, Any]) -> None:
            sid = (event.get("Actor") or {}).get("ID", "")
            action = event.get("Action")
            if action == "remove":
                labels = self._service_labels.pop(sid, {})
                status = "destroy"
            else:
                try:
                    labels = as_container(self.client.api.inspect_service(sid))["Labels"]
                except docker.errors.NotFound:
                    return
                self._service_labels[sid] = labels
                status = "start"
            if platform is None or labels.get(naming.LABEL_PLATFORM) == platform:
                on_event({"status": status, "Actor": {"ID": sid, "Attributes": labels}})

        self._watch(relay, stop, {"type": "service"})

    # --- one-off tasks on one node ----------------------------------------------------
    def run_task_now(
        self,
        node: Node,
        name: str,
        command: list[str],
        mounts: list[Mount],
        labels: dict[str, str],
        image: str | None = None,
    ) -> tuple[int, str]:
        """Run `command` once on `node` as root with no network; (exit code, output)."""
        api = self.client.api
        labels = labels | {naming.LABEL_NODE_TASK: node.id}
        with contextlib.suppress(docker.errors.NotFound):  # a leftover of an interrupted run
            api.remove_service(name)
        spec = ContainerSpec(image or self.helper_image, command=command, mounts=mounts, user="0", labels=labels)
        template = TaskTemplate(
            container_spec=spec,
            restart_policy=RestartPolicy(condition="none"),
            placement=Placement(constraints=[f"node.id=={node.id}"]),
            networks=[],
        )
        service = api.create_service(template, name=name, labels=labels)["ID"]
        self._record(service, {"role": "node-task", "name": name, "node": node.id})
        try:
            task = self._wait_task(service)
            logs = b"".join(api.service_logs(service, stdout=True, stderr=True, follow=False))
            status = task["Status"]
            code = (status.get("ContainerStatus") or {}).get("ExitCode")
            if code is None:  # never ran: rejected (image missing, ...)
                raise PermanentError(
                    f"task on node {node.name} did not run: {status.get('Err') or status['State']}", "TaskRejected"
                )
            return int(code), strip_log_headers(logs)
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(service)

    def _wait_task(self, service: str) -> dict[str, Any]:
        deadline = time.monotonic() + TASK_TIMEOUT
        while time.monotonic() < deadline:
            tasks = self.client.api.tasks(filters={"service": service})
            if tasks and tasks[0]["Status"]["State"] in DONE_STATES:
                return tasks[0]
            time.sleep(0.2)
        raise TemporaryError(f"one-off task {service[:12]} did not end within {TASK_TIMEOUT:.0f} s")

    def agent_now(self, node: Node, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """The node agent (node_agent.py) with the node's engine socket: one JSON answer."""
        mount = Mount("/var/run/docker.sock", node.socket, type="bind")
        # Unique per call: two lists of volumes at the same moment never share a name.
        name = naming.task_name(self.platform, f"agent-{op}", None, secrets.token_hex(8), node.id)
        labels = {naming.LABEL_PLATFORM: self.platform}
        code, output = self.run_task_now(node, name, ["python3", "-c", AGENT, op, json.dumps(args)], [mount], labels)
        lines = output.strip().splitlines()
        if code != 0:
            raise TemporaryError(f"node agent on {node.name} failed: {(lines[-1] if lines else code)}")
        return json.loads(lines[-1])

    async def run_helper(
        self,
        name: str,
        image: str,
        command: list[str],
        helper_mounts: list[HelperMount],
        labels: dict[str, str],
        user: str | None = None,
        wait_seconds: float | None = None,  # unused: the command's own `timeout` ends the task
    ) -> tuple[int, str]:
        """On the user's node; without a user (pruning the backup location) on every ready
        node, and the first failure or else the last answer is returned."""
        mounts = [
            Mount(m.target, m.source, type="bind" if m.source.startswith("/") else "volume", read_only=m.read_only)
            for m in helper_mounts
        ]

        def run() -> tuple[int, str]:
            platform = labels.get(naming.LABEL_PLATFORM, "")
            nodes = [self.node_for_now(platform, user, [])] if user else [n for n in self.nodes_now() if n.ready]
            answer = (0, "")
            for node in nodes:
                task = naming.task_name(platform, "helper", user, name, node.id)  # unique per user, request, node
                answer = self.run_task_now(node, task, command, mounts, labels, image)
                if answer[0] != 0:
                    return answer
            return answer

        return await self.call(run)

    async def stop_helper(self, name: str, grace: float) -> None:
        """Remove the helper's one-off services (one per node: `<name>-<node>`); the task's
        container is stopped with them. Already gone is done."""

        def stop() -> None:
            for service in self.client.api.services(filters={"name": name}):
                if service["Spec"]["Name"].startswith(f"{name}-"):
                    with contextlib.suppress(docker.errors.NotFound):
                        self.client.api.remove_service(service["ID"])

        await self.call(stop)

    def _volume_node(self, name: str) -> Node | None:
        where = self.placements.node_of_volume(name)
        if where is None:
            return None
        user, node_id = where
        node = next((n for n in self.nodes_now() if n.id == node_id), None)
        if node is None or not node.ready:
            raise NodeDown(user, node, node_id)
        return node

    # --- volumes, on the node that holds them -------------------------------------------
    async def remove_volume(self, name: str) -> RemoveResult:
        def remove() -> RemoveResult:
            node = self._volume_node(name)
            if node is None:
                return "absent"  # never placed: never created
            result = self.agent_now(node, "remove", {"names": [name]})
            if result["in-use"]:
                raise VolumeInUse(result["in-use"][0][1])
            return "removed" if result["removed"] else "absent"

        return await self.call(remove)

    async def ensure_volume(self, name: str, labels: dict[str, str], beside: str | None = None) -> bool:
        """On the node of the user named in the labels (placed now if they have none), or of
        `beside`, recorded with that user's volumes (a rename's new volumes beside the old
        ones: the helper copies on that node, and the record moves to the new name)."""

        def ensure() -> bool:
            user = beside or labels.get(naming.LABEL_USER)
            if user is None:
                raise PermanentError(f"volume {name}: on Swarm a volume belongs to a user's node", "NoNode")
            node = self.node_for_now(labels.get(naming.LABEL_PLATFORM, ""), user, [name])
            return bool(self.agent_now(node, "ensure", {"volumes": {name: labels}})["created"])

        return await self.call(ensure)

    async def volume_sizes(self) -> dict[str, int | None]:
        """Every ready node's volumes and sizes (one agent task per node)."""

        def look() -> dict[str, int | None]:
            found: dict[str, int | None] = {}
            for node in self.nodes_now():
                if node.ready:
                    found |= self.agent_now(node, "sizes", {})["sizes"]
            return found

        return await self.call(look)

    async def existing_volumes(self, names: list[str], sizes: bool = False) -> dict[str, dict[str, Any]]:
        def look() -> dict[str, dict[str, Any]]:
            by_node: dict[str, tuple[Node, list[str]]] = {}
            for name in names:
                node = self._volume_node(name)
                if node is not None:
                    by_node.setdefault(node.id, (node, []))[1].append(name)
            found: dict[str, dict[str, Any]] = {}
            for node, some in by_node.values():
                found |= self.agent_now(node, "inspect", {"names": some, "sizes": sizes})["volumes"]
            return found

        return await self.call(look)
