"""EngineAccess (built-in watch, one key `engine`): nobody keeps root on the host through a
container the platform did not give it.

Membership of `docker-privileged` is root on the host while it lasts, and a member can use
it to start sibling containers that outlive a revocation: unlabelled, with `/var/run`,
`/run` or `/` bound (a parent of the socket is the socket), in privileged mode, or in the
host's PID namespace. The per-user watch (`privilegedaccess.py`) only sees the platform's
labelled containers and the exact socket path, so this one surveys **every running
container on the engine**, at every resync and at every container start. A container is
allowed such access only if it is:

- a server of this platform whose user is a member, with the socket itself and nothing
  more (the per-user watch judges those against membership), or
- listed in `ENGINE_ACCESS_ALLOWED` (the platform's own: hub, Traefik; names or globs).

Anything else is stopped (policies `restart` and `stop`) or reported (`report`), once per
container, with a Warning event naming what it had.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Sequence
from typing import Any

from vocabulary import naming

from ..context import Context
from ..result import Result
from ..status import EngineAccessStatus, EscalatedContainer

log = logging.getLogger("reconciler.engineaccess")
KIND = "EngineAccess"
KEY = "engine"


def guarded_paths(socket_path: str | Sequence[str]) -> tuple[set[str], set[str]]:
    """(the sockets' paths, their parent folders): a bind of any of them reaches an engine.
    On Swarm every node's socket counts (the node label io.jupyterhub-ds.socket)."""
    paths = [socket_path] if isinstance(socket_path, str) else list(socket_path)
    sockets = {p for path in paths for p in (os.path.normpath(path), os.path.realpath(path))}
    parents: set[str] = set()
    for path in sockets:
        while path not in ("/", ""):
            path = os.path.dirname(path)
            parents.add(path)
    return sockets, parents


def escalations(c: dict[str, Any], socket_path: str | Sequence[str]) -> list[str]:
    """What gives this container power over the host (empty: nothing)."""
    sockets, parents = guarded_paths(socket_path)
    found = []
    if c.get("privileged"):
        found.append("privileged mode")
    if c.get("pid_host"):
        found.append("the host's PID namespace")
    for source in c.get("sources") or []:
        normal = os.path.normpath(source) if source else source
        if normal in sockets:
            found.append(f"the engine socket ({source})")
        elif normal in parents:
            found.append(f"a parent folder of the engine socket ({source})")
    return found


def survey_engine(
    containers: list[dict[str, Any]], platform: str, socket_path: str | Sequence[str], allowed: list[str]
) -> list[EscalatedContainer]:
    """The containers whose access no policy allows."""
    rows = []
    for c in containers:
        found = escalations(c, socket_path)
        if not found or any(fnmatch.fnmatchcase(c["name"], pattern) for pattern in allowed):
            continue
        labels = c.get("labels") or {}
        ours = labels.get(naming.LABEL_PLATFORM) == platform and naming.LABEL_USER in labels
        if ours and all(f.startswith("the engine socket") for f in found):
            continue  # a server of ours with the socket: the per-user watch judges it by membership
        if labels.get(naming.LABEL_PLATFORM) == platform and naming.LABEL_NODE_TASK in labels:
            continue  # our own one-off task acting on a node's volumes (Swarm)
        user = labels.get(naming.LABEL_USER) if ours else None
        rows.append(EscalatedContainer(container=c["name"], container_id=c["id"], user=user, has=found))
    return sorted(rows, key=lambda r: r.container)


async def names(ctx: Context) -> set[str]:
    return {KEY}


async def reconcile(name: str, ctx: Context) -> Result:
    s = ctx.settings
    containers = await ctx.engine.escalation_facts()
    sockets = [s.docker_socket, *await ctx.engine.node_sockets()]
    rows = survey_engine(containers, s.platform_id, sockets, s.engine_access_allowed)
    previous = EngineAccessStatus.load(await ctx.observed(KIND, name))
    status = EngineAccessStatus(
        phase="Drift" if rows else "Ready",
        containers=rows,
        handled=sorted(set(previous.handled) & {r.container_id for r in rows}),
    )
    for row in rows:
        if row.container_id in status.handled:
            continue
        message = f"{row.container} has {', '.join(row.has)}: not allowed by any policy"
        await ctx.event(KIND, row.container, "EngineAccessDrift", message, type="Warning")
        if s.privileged_drift_policy != "report":
            await ctx.engine.stop_container(row.container_id)
            await ctx.event(KIND, row.container, "ContainerStopped", f"stopped {row.container}", type="Warning")
        status.handled = sorted({*status.handled, row.container_id})
        await ctx.record_observed(KIND, name, status)
    return Result(status)
