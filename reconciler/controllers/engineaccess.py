"""EngineAccess (built-in watch, one key `engine`): nobody keeps root on the host through a
container the platform did not give it.

Membership of `docker-privileged` is root on the host while it lasts, and a member can use
it to start sibling containers that outlive a revocation. So this watch surveys **every
running container on the engine**, at every resync and at every container start, reading
what the engine recorded when each was created, never what its labels claim (anyone with
the socket can copy the platform's labels). It flags:

- the engine socket, or a folder above it (`/var/run`, `/run`, `/`), bound in directly or
  through a named volume of the `local` driver with `o=bind`; any other host path bound
  through such a volume;
- privileged mode, added capabilities, host devices or device rules, seccomp / AppArmor /
  SELinux labelling / system paths unconfined;
- the host's PID, IPC, UTS or network namespace, or another container's (`container:<id>`).

Who may have what:

- the platform's own helpers and node tasks, recognised by the ids recorded in the store
  when the platform created them (`naming.OWNED_KIND`): anything (they need what they have);
- the platform's servers, recognised the same way: the socket (judged against membership
  by the per-user watch), the host's network (DESIGN §6) and host folders through the
  volumes the spawner mounted; nothing else;
- containers named in `ENGINE_ACCESS_ALLOWED` (the platform's own hub, Traefik,
  Watchtower): the socket and the host's network; nothing else;
- containers a user made through the Docker proxy of `limited` access, recognised by the
  ids the proxy recorded (`docker_objects`), never by their owner label: the namespaces of
  another container the proxy recorded for the same user (a sidecar); nothing else;
- anything else: nothing.

Anything else is stopped (policies `restart` and `stop`) or reported (`report`), once per
container, with a Warning event naming what it had. An object that claims this platform's
labels but is not recorded (yet: a Swarm service is recorded a moment after the swarm
starts it) is judged, on Swarm, `GRACE` seconds after its creation; it is never exempted.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vocabulary import naming

from ..api.engineaccess import EngineAccessStatus, EscalatedContainer
from ..container_rules import NAMESPACES, Finding, escalations
from ..context import Context
from ..docker_objects import DockerObjects
from ..result import Result

log = logging.getLogger("reconciler.engineaccess")
KIND = "EngineAccess"
KEY = "engine"
GRACE = 10.0  # seconds between a Swarm service's creation and its record
FORGET_AFTER = 600.0  # a record whose object is gone from the engine is deleted after this
# What a recognised server / an allowed name may have (codes of `container_rules.Finding`).
LAB_MAY = frozenset({"socket", "network-host", "volume-bind"})
ALLOWED_MAY = frozenset({"socket", "network-host"})


@dataclass
class Survey:
    rows: list[EscalatedContainer]
    recheck_in: float | None = None  # an unrecorded object claiming to be ours: look again then


def survey_engine(
    containers: list[dict[str, Any]],
    platform: str,
    socket_path: str | Sequence[str],
    allowed: list[str],
    owned: dict[str, dict[str, Any]] | None = None,
    now: float | None = None,
    grace: float = GRACE,
    proxied: dict[str, str] | None = None,
) -> Survey:
    """The containers whose access no policy allows. `owned`: the platform's records of
    what it created ({id: {"role": "lab"|"helper"|"node-task", ...}}). `grace`: how long an
    unrecorded object claiming this platform's label waits for its record (Swarm only: on
    one engine every object is recorded before it starts). `proxied`: the Docker proxy's
    records of the containers users made through it ({id: user})."""
    owned, now, proxied = owned or {}, time.time() if now is None else now, proxied or {}
    result = Survey([])
    for c in containers:
        found = escalations(c, socket_path)
        if proxied.get(c["id"]):
            found = [f for f in found if not _own_sidecar(c, f, proxied, containers)]
        if not found:
            continue
        record = owned.get(c["id"])
        role = (record or {}).get("role")
        if role in ("helper", "node-task"):
            continue  # made by the platform itself, with what it needs
        may: frozenset[str] = frozenset()
        if role == "lab":
            may = LAB_MAY  # the socket: judged against membership by the per-user watch
        elif any(fnmatch.fnmatchcase(c["name"], pattern) for pattern in allowed):
            may = ALLOWED_MAY
        has = [f.text for f in found if f.code not in may]
        if not has:
            continue
        age = now - float(c.get("created") or 0)
        if record is None and (c.get("labels") or {}).get(naming.LABEL_PLATFORM) == platform and age < grace:
            wait = grace - age + 0.5
            result.recheck_in = min(result.recheck_in or wait, wait)
            continue
        user = record.get("user") if role == "lab" and record else proxied.get(c["id"])
        result.rows.append(EscalatedContainer(container=c["name"], container_id=c["id"], user=user, has=has))
    result.rows.sort(key=lambda r: r.container)
    return result


def _own_sidecar(c: dict[str, Any], found: Finding, proxied: dict[str, str], running: list[dict[str, Any]]) -> bool:
    """A proxied container in the namespace of another the proxy recorded for the same user."""
    if found.code != "join":
        return False
    fact = next(f for f, field, _ in NAMESPACES if found.field == f"HostConfig.{field}")
    ref = (c.get(fact) or "").split(":", 1)[-1]
    ids = [o["id"] for o in running if ref in (o["id"], o.get("name"))]
    ids = ids or [o["id"] for o in running if len(ref) >= 4 and o["id"].startswith(ref)]
    return len(ids) == 1 and proxied.get(ids[0]) == proxied[c["id"]]


def stale_records(owned: dict[str, dict[str, Any]], present: set[str], now: float) -> list[str]:
    """Records of objects no longer on the engine, old enough that none is being created."""
    return [oid for oid, body in owned.items() if oid not in present and now - body.get("recorded", 0) > FORGET_AFTER]


async def names(ctx: Context) -> set[str]:
    return {KEY}


async def reconcile(name: str, ctx: Context) -> Result:
    s = ctx.settings
    view = await ctx.engine.escalation_facts()
    owned = await asyncio.to_thread(ctx.store.observed_all, naming.OWNED_KIND)  # after the listing
    proxied = await asyncio.to_thread(DockerObjects(ctx.store).owners, "container")
    sockets = [s.docker_socket, *await ctx.engine.node_sockets()]
    now = time.time()
    grace = GRACE if s.swarm else 0.0
    allowed = s.engine_access_allowed
    found = survey_engine(view.running, s.platform_id, sockets, allowed, owned, now, grace, proxied)
    if stale := stale_records(owned, view.present, now):
        await asyncio.to_thread(ctx.store.forget_observed, naming.OWNED_KIND, stale)
    previous = EngineAccessStatus.load(await ctx.observed(KIND, name))
    status = EngineAccessStatus(
        phase="Drift" if found.rows else "Ready",
        containers=found.rows,
        handled=sorted(set(previous.handled) & {r.container_id for r in found.rows}),
    )
    for row in found.rows:
        if row.container_id in status.handled:
            continue
        message = f"{row.container} has {', '.join(row.has)}: not allowed by any policy"
        await ctx.event(KIND, row.container, "EngineAccessDrift", message, type="Warning")
        if s.privileged_drift_policy != "report":
            await ctx.engine.stop_container(row.container_id)
            await ctx.event(KIND, row.container, "ContainerStopped", f"stopped {row.container}", type="Warning")
        status.handled = sorted({*status.handled, row.container_id})
        await ctx.record_observed(KIND, name, status)
    return Result(status, requeue_after=found.recheck_in)
