"""The usage ledger's watch (docs/usage.md): three keys, each its own pass.

- `Usage/sessions` (every resync): squares the ledger's sessions with the hub's record
  (`GET /hub/api/users?state=active`): a ready server without a session gets one from the
  hub's `started`; an open session whose server is gone is closed at its last sample;
- `Usage/samples` (every USAGE_SAMPLE_SECONDS): one sampling round of the running servers
  (`usage/sampler.py`), the roll-ups updated with it; the live Prometheus counter of
  server-seconds per group;
- `Usage/storage` (every STORAGE_SURVEY_SECONDS): the user volumes' sizes, one engine call.

A resync wakes every watch key: a sampling or survey pass not yet due is skipped and
requeued for when it is, so a resync costs the engine nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from vocabulary import naming

from ..api.usage import UsageStatus
from ..context import Context
from ..errors import TemporaryError
from ..result import Result
from ..usage import storage
from ..usage.report import NO_GROUP
from ..usage.sampler import Sampler, StatsClient
from ..usage.sessions import ActiveServer

KIND = "Usage"
SESSIONS, SAMPLES, STORAGE = "sessions", "samples", "storage"
SERVER_SECONDS = Counter(
    "jhds_usage_server_seconds", "Server time counted live, per hub group (the ledger's is exact)", ["group"]
)
STORAGE_BYTES = Gauge("jhds_usage_storage_bytes", "User volumes' bytes in the last survey, per hub group", ["group"])
STORAGE_VOLUMES = Gauge("jhds_usage_storage_volumes", "User volumes sized by the last survey")
SAMPLED = Gauge("jhds_usage_sampled_servers", "Servers sampled in the last round")


@dataclass
class _Runtime:
    sampler: Sampler
    resumed: bool = False  # the counters of the last round before this process were loaded


_runtimes: dict[int, _Runtime] = {}


def engine_socket() -> str:
    """The engine's Unix socket, as docker-py finds it (DOCKER_HOST, else the default)."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


def _runtime(ctx: Context) -> _Runtime:
    rt = _runtimes.get(id(ctx))
    if rt is None:
        s = ctx.settings
        client = StatsClient(engine_socket(), timeout=max(1.0, s.usage_sample_seconds))
        rt = _runtimes[id(ctx)] = _Runtime(Sampler(client, s.usage_sample_seconds, s.usage_sample_concurrency))
    return rt


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def active_servers(users: list[dict[str, Any]]) -> list[ActiveServer]:
    """The servers in the hub's active-users listing (ready or pending). A user listed without `servers`
    means the reconciler's token may not read them: refused, rather than every open
    session closed for want of a field."""
    found = []
    for u in users:
        if "servers" not in u:
            raise TemporaryError("the hub's user listing has no servers (the reconciler's token lacks read:servers)")
        for name, server in (u.get("servers") or {}).items():
            if server.get("started"):
                groups = tuple(u.get("groups") or [])
                found.append(ActiveServer(u["name"], name, _time(server["started"]), groups, bool(server.get("ready"))))
    return found


async def names(_ctx: Context) -> set[str]:
    return {SESSIONS, SAMPLES, STORAGE}


async def reconcile(name: str, ctx: Context) -> Result:
    s = ctx.settings
    now = datetime.now(UTC)
    previous = UsageStatus.load(await ctx.observed(KIND, name))
    period = {SAMPLES: s.usage_sample_seconds, STORAGE: s.storage_survey_seconds}.get(name)
    if period is not None and previous.last_pass is not None:
        due = period - (now - previous.last_pass).total_seconds()
        if due > 0.1 * period:  # woken early (a resync): come back when due
            return Result(previous, due)
    if name == SESSIONS:
        status = await _square(ctx, now)
    elif name == SAMPLES:
        status = await _sample(ctx, now, previous, s.usage_sample_seconds)
    elif name == STORAGE:
        status = await _survey(ctx, now)
    else:
        return Result(UsageStatus(phase="Ready"))
    return Result(status, period)


async def _square(ctx: Context, now: datetime) -> UsageStatus:
    candidates = await asyncio.to_thread(ctx.usage.open_ids)  # before the hub is asked
    active = active_servers(await ctx.active_users(max_age=0))
    squared = await asyncio.to_thread(ctx.usage.square, active, now, candidates)
    for user, server in squared.opened:
        await ctx.event(
            KIND, SESSIONS, "SessionOpened", f"{user}/{server}: running, recorded from the hub's start time"
        )
    for user, server in squared.closed:
        await ctx.event(KIND, SESSIONS, "SessionClosed", f"{user}/{server}: gone, closed at its last sample")
    status = UsageStatus(
        phase="Ready", last_pass=now, servers=len(active), opened=len(squared.opened), closed=len(squared.closed)
    )
    status.set_condition("Ready", "True", "Squared", f"{len(active)} running servers", now)
    return status


async def _sample(ctx: Context, now: datetime, previous: UsageStatus, period: float) -> UsageStatus:
    rt = _runtime(ctx)
    sampler = rt.sampler
    if not rt.resumed:  # where the counters stood at the last round (a restart of the reconciler)
        sampler.previous = {
            cid: (datetime.fromtimestamp(t, UTC), total) for cid, (t, total) in previous.counters.items()
        }
        rt.resumed = True
    owned = await asyncio.to_thread(ctx.store.observed_all, naming.OWNED_KIND)
    try:
        result = await sampler.round(owned, deadline=0.8 * min(period, ctx.settings.reconcile_deadline))
    except (OSError, TimeoutError) as e:
        raise TemporaryError(f"usage sampling: engine unreachable ({e})") from e
    await asyncio.to_thread(ctx.usage.record_samples, result.samples)
    since = previous.last_pass
    for session in await asyncio.to_thread(ctx.usage.open_sessions):
        start = max(session.started, since) if since is not None else session.started
        seconds = max(0.0, (now - start).total_seconds())
        for group in session.groups or [NO_GROUP]:
            SERVER_SECONDS.labels(group).inc(seconds)
    SAMPLED.set(len(result.samples))
    status = UsageStatus(
        phase="Ready",
        last_pass=now,
        servers=len(result.samples),
        engine_calls=result.engine_calls,
        errors=result.errors,
        timed_out=result.timed_out,
        seconds=round(result.seconds, 4),
        counters={cid: [t.timestamp(), total] for cid, (t, total) in sampler.previous.items()},
    )
    status.set_condition("Ready", "True", "Sampled", f"{len(result.samples)} servers", now)
    return status


async def _survey(ctx: Context, now: datetime) -> UsageStatus:
    s = ctx.settings
    sizes = await ctx.engine.volume_sizes()
    usernames = await ctx.hub.list_usernames()
    rows = storage.user_volumes(sizes, usernames, s.volume_name_template, list(s.user_volumes))
    await asyncio.to_thread(ctx.usage.record_storage, rows, now)
    groups = await ctx.hub.list_groups()
    per_user: dict[str, int] = defaultdict(int)
    for _volume, user, _kind, size in rows:
        per_user[user] += size
    per_group: dict[str, int] = defaultdict(int)
    grouped: set[str] = set()
    for group, body in groups.items():
        for user in body.get("users") or []:
            per_group[group] += per_user.get(user, 0)
            grouped.add(user)
    per_group[NO_GROUP] = sum(size for user, size in per_user.items() if user not in grouped)
    STORAGE_BYTES.clear()
    for group, size in per_group.items():
        STORAGE_BYTES.labels(group).set(size)
    STORAGE_VOLUMES.set(len(rows))
    status = UsageStatus(phase="Ready", last_pass=now, servers=len(rows), engine_calls=1)
    status.set_condition("Ready", "True", "Surveyed", f"{len(rows)} user volumes", now)
    return status
