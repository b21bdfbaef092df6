"""ServerStop (one-shot): stop the running servers a selector picks, each lab told first.

1. The targets are chosen once, among the servers running when the resource was created
   (one started since is not taken), each with its start time as the hub reports it.
2. The stop time (now + `warnBefore`) is written to the status, then every target's lab
   gets one notice with the reason and that time. A reconciler restarted meanwhile finds
   the stop time and waits for it: the notice is sent at most once and no server is stopped
   early. The wait is a requeue, not a sleep.
3. At the stop time each target still running is stopped through the hub
   (`restarts.stop_all`, a few users at once). One no longer running, or whose server now
   running started after it was chosen, stopped by itself: `Gone`, done, the new one left
   alone.

A server that does not stop within the spawn timeout is `Failed` in this attempt, and the
attempt fails: retried with backoff (the stopped ones are not asked again), past
`backoffLimit` the ServerStop ends `Failed` with those servers `Failed`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from vocabulary import naming

from .. import restarts
from ..api.serverstop import DONE_STATES, ServerStopSpec, ServerStopStatus, StopTarget
from ..clients import lab
from ..context import Context
from ..culling import as_utc
from ..errors import TemporaryError
from ..result import Result
from ..store import StoredResource

KIND = "ServerStop"
STOP_CONCURRENCY = 10  # users stopped at once: their containers go on the same engine and cores
Running = dict[tuple[str, str], dict[str, Any]]


def servers_of(active: list[dict[str, Any]]) -> Running:
    return {(u["name"], n): s for u in active for n, s in (u.get("servers") or {}).items()}


async def _running(ctx: Context) -> Running:
    return servers_of(await ctx.active_users(max_age=0))


def chosen(
    spec: ServerStopSpec, active: list[dict[str, Any]], survey: dict[str, Any], since: datetime
) -> list[StopTarget]:
    """The selector's running servers that had started by `since` (the resource's creation)."""
    running = servers_of(active)
    found = []
    for user, server in spec.selector.pick(active, survey):
        model = running.get((user, server))
        started = as_utc((model or {}).get("started"))
        if model is not None and (started is None or started <= since):
            found.append(StopTarget(user=user, server=server, server_started=model.get("started")))
    return found


def same_server(t: StopTarget, model: dict[str, Any] | None) -> bool:
    """The server running under that name is the one chosen (not one started since)."""
    if model is None:
        return False
    now, then = as_utc(model.get("started")), as_utc(t.server_started)
    return now is None or then is None or now == then


def in_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def notice(reason: str, seconds: float, at: datetime) -> str:
    sentence = reason if reason[-1] in ".!?" else reason + "."
    return (
        f"Your server will be stopped in about {in_words(seconds)} (at {at:%H:%M} UTC): {sentence} "
        "Save your work; your files are kept, and you can start it again afterwards."
    )


async def choose(obj: StoredResource, ctx: Context, spec: ServerStopSpec, status: ServerStopStatus) -> None:
    survey = await ctx.observed(naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY) if spec.selector.drifted else {}
    status.targets = chosen(spec, await ctx.active_users(max_age=0), survey, obj.created)
    status.chosen_at, status.phase = datetime.now(UTC), "Pending"
    await ctx.progress(KIND, obj.name, status)
    await ctx.event(KIND, obj.name, "Started", f"{len(status.targets)} servers to stop: {spec.reason}")


async def reachable(ctx: Context, status: ServerStopStatus) -> list[lab.Target]:
    """The targets' labs that can be told (running, with a token): read before anything is
    recorded, so a failure here is retried whole."""
    s = ctx.settings
    tokens = await ctx.engine.server_tokens(s.platform_id)
    running = await _running(ctx)
    return [
        lab.Target(t.user, t.server, lab.ingest_url(s.proxy_url, running[key]["url"]), tok)
        for t in status.targets
        if (key := (t.user, t.server)) in running and (tok := tokens.get(key))
    ]


async def warn(ctx: Context, status: ServerStopStatus, spec: ServerStopSpec, name: str, labs: list[lab.Target]) -> None:
    """One notice to every reachable lab, delivered or not (a lab that cannot hear does not
    hold the stop back), within the time left before the stop."""
    assert status.stop_at is not None
    s = ctx.settings
    body = lab.payload(
        notice(spec.reason, spec.warn_before, status.stop_at), "warning", False, True, {"serverStop": name}
    )
    left = (status.stop_at - datetime.now(UTC)).total_seconds()
    limits = lab.Limits(
        concurrency=s.broadcast_concurrency,
        attempt_timeout=s.broadcast_attempt_timeout,
        deadline=max(1.0, min(float(s.broadcast_deadline), left)),
    )
    results = (
        {(r.target.user, r.target.server): r for r in await lab.deliver_all(labs, body, limits=limits)} if labs else {}
    )
    status.warned_at = datetime.now(UTC)
    for t in status.targets:
        r = results.get((t.user, t.server))
        t.state = "Warned"
        t.message = (
            "notice not sent (not running, or no token)" if r is None else f"notice {r.outcome} {r.error}".strip()
        )
    delivered = sum(r.outcome == "delivered" for r in results.values())
    when = f"{status.stop_at:%Y-%m-%d %H:%M:%S} UTC"
    await ctx.event(KIND, name, "Warned", f"{delivered} of {len(status.targets)} labs told: stopped at {when}")


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = ServerStopSpec.model_validate(obj.spec)
    status = ServerStopStatus.load(obj.status)
    status.observed_generation = obj.generation
    if status.chosen_at is None:
        await choose(obj, ctx, spec, status)
    notify = bool(spec.warn_before and status.targets)
    if status.stop_at is None:
        labs = await reachable(ctx, status) if notify else []
        status.stop_at = datetime.now(UTC) + timedelta(seconds=spec.warn_before)
        status.phase = "Warning" if notify else "Stopping"
        await ctx.progress(KIND, obj.name, status)  # before any notice: a restart waits, never re-warns
        if notify:
            await warn(ctx, status, spec, obj.name, labs)
            await ctx.progress(KIND, obj.name, status)
    elif notify and status.warned_at is None:
        for t in status.targets:  # the reconciler stopped while sending: not sent again
            t.message = t.message or "notice may not have been sent (the reconciler restarted while sending)"
    remaining = (status.stop_at - datetime.now(UTC)).total_seconds()
    if remaining > 0 and status.targets:
        status.phase = "Warning"
        return Result(status, remaining)
    status.phase = "Stopping"
    await stop(ctx, obj.name, status)
    message = finish(status)
    await ctx.event(KIND, obj.name, "Completed", message)
    return Result(status)


async def stop(ctx: Context, name: str, status: ServerStopStatus) -> None:
    """Stop what is left; the state of each is written before its stop (a resumed pass asks
    again, which is harmless). Raises TemporaryError when some did not stop."""
    running = await _running(ctx)
    todo: dict[str, list[StopTarget]] = defaultdict(list)
    for t in status.targets:
        if t.state in DONE_STATES:
            continue
        model = running.get((t.user, t.server))
        if same_server(t, model):
            todo[t.user].append(t)
        elif t.state in ("Stopping", "Failed"):  # asked in an earlier attempt: done since
            t.state, t.stopped_at, t.message = "Stopped", datetime.now(UTC), "stopped"
        else:
            t.state = "Gone"
            t.message = "stopped by itself before its turn" + (
                "; the server running now started since and is left alone" if model is not None else ""
            )
            await ctx.event(KIND, name, "Gone", f"{restarts.label(t.user, t.server)} {t.message}")
    for t in (t for targets in todo.values() for t in targets):
        t.state, t.message = "Stopping", ""
    await ctx.progress(KIND, name, status)
    gate = asyncio.Semaphore(STOP_CONCURRENCY)
    timeout = float(ctx.settings.spawn_timeout)

    async def stop_user(user: str, targets: list[StopTarget]) -> None:
        async with gate:
            try:
                await restarts.stop_all(ctx.hub, user, [t.server for t in targets], timeout)
            except TemporaryError as e:
                for t in targets:
                    t.state, t.message = "Failed", str(e)
                    await ctx.event(KIND, name, "StopFailed", f"{restarts.label(user, t.server)}: {e}", type="Warning")
                return
        for t in targets:
            t.state, t.stopped_at, t.message = "Stopped", datetime.now(UTC), "stopped"
            await ctx.event(KIND, name, "Stopped", f"{restarts.label(user, t.server)} stopped")

    await asyncio.gather(*(stop_user(user, targets) for user, targets in todo.items()))
    count(status)
    if status.failed:
        await ctx.progress(KIND, name, status)
        raise TemporaryError(f"{status.failed} of {len(status.targets)} servers did not stop; tried again")


def count(status: ServerStopStatus) -> None:
    status.stopped = sum(t.state == "Stopped" for t in status.targets)
    status.gone = sum(t.state == "Gone" for t in status.targets)
    status.failed = sum(t.state == "Failed" for t in status.targets)


def finish(status: ServerStopStatus) -> str:
    """Completed; what it did, in words."""
    now = datetime.now(UTC)
    count(status)
    status.phase, status.finished_at = "Completed", now
    message = f"{status.stopped} stopped, {status.gone} had stopped by themselves"
    status.set_condition("Complete", "True", "Finished", message, now)
    return message
