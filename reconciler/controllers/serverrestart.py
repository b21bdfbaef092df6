"""ServerRestart (one-shot): stop, then start a user's server, through the hub.

Going through the hub's REST API keeps the hub's view true (no raw container restart
behind its back). The container is recreated from the same volumes, so data survives.
Progress (`step`) is written as it goes, so a reconciler restarted mid-way resumes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from ..context import Context
from ..errors import PermanentError, TemporaryError
from ..resources import ServerRestartSpec
from ..result import Result
from ..status import ServerRestartStatus
from ..store import StoredResource

KIND = "ServerRestart"
POLL = 0.2


def _server_label(user: str, server: str) -> str:
    return f"{user}/{server}" if server else f"{user}'s default server"


async def _server(ctx: Context, user: str, server: str) -> dict[str, Any] | None:
    model = await ctx.hub.get_user(user)
    if model is None:
        raise PermanentError(f"no such user: {user}", reason="UnknownUser")
    return (model.get("servers") or {}).get(server)


async def _wait(ctx: Context, spec: ServerRestartSpec, done: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(await _server(ctx, spec.user, spec.server)):
            return
        await asyncio.sleep(POLL)
    raise TemporaryError(f"{_server_label(spec.user, spec.server)} not {what} after {timeout:g} s")


async def _wait_started(ctx: Context, spec: ServerRestartSpec, timeout: float) -> None:
    """Until the server is ready; a start the hub gave up on (the server is gone again) is a
    failed attempt at once, not a wait for the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = await _server(ctx, spec.user, spec.server)
        if server is None:
            raise TemporaryError(f"the start of {_server_label(spec.user, spec.server)} failed (see the hub's log)")
        if server.get("ready"):
            return
        await asyncio.sleep(POLL)
    raise TemporaryError(f"{_server_label(spec.user, spec.server)} not ready after {timeout:g} s")


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = ServerRestartSpec.model_validate(obj.spec)
    label = _server_label(spec.user, spec.server)
    who = obj.labels.get("requested-by", obj.owner)
    timeout = float(ctx.settings.spawn_timeout)
    status = ServerRestartStatus.load(obj.status)
    status.phase, status.observed_generation, status.user, status.server = (
        "Running",
        obj.generation,
        spec.user,
        spec.server,
    )

    if status.step is None:
        server = await _server(ctx, spec.user, spec.server)
        if server is None or not server.get("ready") or server.get("pending"):
            raise PermanentError(f"{label} is not running; only a running server can be restarted", "NotRunning")
        status.step, status.started_at = "stopping", datetime.now(UTC)
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, "Stopping", f"stopping {label} (requested by {who})")
        await ctx.hub.stop_server(spec.user, spec.server)

    if status.step == "stopping":
        await _wait(ctx, spec, lambda s: s is None, timeout, "stopped")
        status.step = "starting"
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, "Starting", f"starting {label}")
        await ctx.hub.start_server(spec.user, spec.server)

    if status.step == "starting":
        server = await _server(ctx, spec.user, spec.server)
        if server is None:  # the start was lost or failed: send it again (counted against backoffLimit)
            await ctx.hub.start_server(spec.user, spec.server)
        await _wait_started(ctx, spec, timeout)

    finished = datetime.now(UTC)
    seconds = (finished - (status.started_at or finished)).total_seconds()
    await ctx.event(KIND, obj.name, "Restarted", f"{label} restarted and ready in {seconds:.1f} s")
    status.phase, status.step, status.finished_at, status.seconds = "Succeeded", "done", finished, round(seconds, 2)
    return Result(status)
