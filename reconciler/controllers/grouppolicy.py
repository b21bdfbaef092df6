"""GroupPolicy (standing): what the servers of a group's members get (docs/policies.md).

The policy itself is applied by the spawner at each start; this controller reports on it:
its members and how many of them run a server, a refusal (`Ready=False`) when it asks for
GPUs the engine does not have, and it wakes the drift survey so that an edit shows on the
running servers within a second instead of at the next survey.

The built-in policy `docker-privileged` (SEED_SPEC) gives that group's members the Docker
socket; the reconciler seeds it at each start, as it seeds the idle-culler policy.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vocabulary import naming

from ..api.grouppolicy import GroupPolicySpec, GroupPolicyStatus
from ..context import Context
from ..in_force import GROUP_POLICY
from ..result import Result
from ..store import StoredResource

KIND = GROUP_POLICY
REQUEUE = 60.0
SEED_NAME = naming.PRIVILEGED_GROUP
SEED_SPEC: dict[str, object] = {"groups": [naming.PRIVILEGED_GROUP], "dockerAccess": "privileged"}


def engine_has_gpus(info: dict) -> bool:
    """The engine can hand GPUs to containers (the nvidia runtime, or CDI GPU devices)."""
    if "nvidia" in (info.get("Runtimes") or {}):
        return True
    return any("nvidia.com/gpu" in str(d.get("ID", "")) for d in info.get("DiscoveredDevices") or [])


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = GroupPolicySpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    status = GroupPolicyStatus.load(obj.status)
    groups = await ctx.hub.list_groups()
    members = sorted({u for g in spec.groups for u in (groups.get(g) or {}).get("users", [])})
    active = await ctx.active_users()
    running = [u for u in active if u["name"] in set(members) and u.get("servers")]
    drift = await ctx.observed(naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY)
    drifted = [s for s in drift.get("servers", []) if s.get("drifted") and obj.name in s.get("policies", [])]
    edited = status.observed_generation != obj.generation
    if edited or (spec.docker_level == "limited" and set(members) != set(status.members)):
        for user in sorted(set(members) | set(status.members)):  # Docker access follows the policy now
            ctx.enqueue((naming.DOCKER_ACCESS_KIND, user))
    status.members, status.running, status.drifted = members, len(running), len(drifted)
    status.observed_generation, status.phase = obj.generation, "Ready"
    missing = [g for g in spec.groups if g not in groups]
    problem, reason = None, "NoGPU"
    if spec.gpus is not None and ctx.settings.swarm:
        problem, reason = "GPUs are not supported on the Swarm backend: members' spawns are refused", "Unsupported"
    elif spec.gpus is not None:
        info = await ctx.engine.call(ctx.engine.client.info)
        if not engine_has_gpus(info):
            problem = "the engine has no GPUs (no nvidia runtime, no CDI GPU): members get none"
    if problem:
        status.set_condition("Ready", "False", reason, problem, now)
        status.set_condition("GPUs", "False", reason, problem, now)
    elif spec.docker_level == "limited" and ctx.settings.swarm:
        message = "limited Docker access is not given on the Swarm backend (docs/swarm.md): members get none"
        status.set_condition("Ready", "False", "Unsupported", message, now)
    else:
        message = f"{len(members)} members, {len(running)} running, {len(drifted)} drifted"
        if missing:
            message += f"; no such group yet: {', '.join(missing)}"
        status.set_condition("Ready", "True", "Reconciled", message, now)
    status.set_condition("Stalled", "False", "Reconciled", "", now)
    ctx.enqueue((naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY))
    return Result(status, REQUEUE)
