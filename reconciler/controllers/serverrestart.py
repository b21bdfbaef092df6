"""ServerRestart (one-shot): stop, then start a user's server, through the hub.

Going through the hub's REST API keeps the hub's view true (no raw container restart
behind its back). The container is recreated from the same volumes, so data survives.
Progress (`step`) is written as it goes, so a reconciler restarted mid-way resumes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .. import restarts
from ..api.serverrestart import ServerRestartSpec, ServerRestartStatus
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "ServerRestart"


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = ServerRestartSpec.model_validate(obj.spec)
    user, server = spec.user, spec.server
    label = restarts.label(user, server)
    who = obj.labels.get("requested-by", obj.owner)
    timeout = float(ctx.settings.spawn_timeout)
    status = ServerRestartStatus.load(obj.status)
    status.phase, status.observed_generation, status.user, status.server = "Running", obj.generation, user, server

    if status.step is None:
        found = await restarts.server_model(ctx.hub, user, server)
        if found is None or not found.get("ready") or found.get("pending"):
            raise PermanentError(f"{label} is not running; only a running server can be restarted", "NotRunning")

    async def record(step: restarts.Step) -> None:
        """Each step written before its side effect: a restarted reconciler resumes there."""
        status.step = step
        if step == "stopping":
            status.started_at = datetime.now(UTC)
            reason, message = "Stopping", f"stopping {label} (requested by {who})"
        else:
            reason, message = "Starting", f"starting {label}"
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, reason, message)

    if status.step != "done":
        await restarts.restart(ctx.hub, user, server, timeout, status.step, record)

    finished = datetime.now(UTC)
    seconds = (finished - (status.started_at or finished)).total_seconds()
    await ctx.event(KIND, obj.name, "Restarted", f"{label} restarted and ready in {seconds:.1f} s")
    status.phase, status.step, status.finished_at, status.seconds = "Succeeded", "done", finished, round(seconds, 2)
    return Result(status)
