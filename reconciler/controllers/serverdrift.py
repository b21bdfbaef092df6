"""The drift survey (a built-in watch, one key `ServerDrift/servers`): which running servers
no longer match what they would get if started now. Reported, never acted on: a restart
is a RolloutRestart someone asks for.

A server is Drifted when the hash of its user's effective GroupPolicy differs from the one
it was started with (a policy edited, added or deleted; a membership changed), or when the
image reference it was started from now names another image (a rebuilt tag). Both were
written as labels by the spawner, so one survey costs one container listing, one image
inspection per distinct image reference and one hub listing, however many servers run.

Woken by GroupPolicy reconciles, GroupMembership changes and this platform's container
events; a membership changed by hand in the hub or a rebuilt tag (no event reaches us for
either) shows within SURVEY_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import docker.errors
from prometheus_client import Gauge

from vocabulary import naming

from ..api.serverdrift import ServerDriftStatus, ServerState
from ..context import Context
from ..effective import NamedGroupPolicy, combine, differences, policy_hash
from ..in_force import group_policies
from ..result import Result

KIND = naming.SERVER_DRIFT_KIND
KEY = naming.SERVER_DRIFT_KEY
SURVEY_SECONDS = 10.0
DRIFTED = Gauge("jhds_servers_drifted", "Running servers that no longer match their policy or image")
RUNNING = Gauge("jhds_servers_surveyed", "Running servers seen by the last drift survey")


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def survey(
    containers: Iterable[Mapping[str, Any]],
    groups_of: Mapping[str, list[str]],
    in_force: list[NamedGroupPolicy],
    image_ids: Mapping[str, str],
    previous: Mapping[str, ServerState],
    now: datetime,
) -> list[ServerState]:
    """One row per running server (pure): `groups_of` the hub's users with an active server,
    `image_ids` what each image reference names now, `previous` the last rows by container."""
    rows = []
    for c in containers:
        labels = c.get("Labels") or {}
        user = labels.get(naming.LABEL_USER)
        if user is None or user not in groups_of:
            continue  # not a server the hub counts as active (starting, or a stray)
        eff = combine(groups_of[user], in_force)
        current_hash = policy_hash(eff)
        image = labels.get(naming.LABEL_IMAGE, c.get("Image", ""))
        started_id = labels.get(naming.LABEL_IMAGE_ID) or c.get("ImageID", "")
        now_id = image_ids.get(image, "")
        diff: list[str] = []
        if labels.get(naming.LABEL_POLICY_HASH, current_hash) != current_hash:
            try:
                was = json.loads(labels.get(naming.LABEL_POLICY) or "{}")
            except ValueError:
                was = {}
            diff = differences(was, eff.as_dict()) or ["policy changed"]
        if now_id and started_id and now_id != started_id:
            diff.append(f"image {image}: rebuilt ({short(started_id)} -> {short(now_id)})")
        container = (c.get("Names") or ["/?"])[0].lstrip("/")
        before = previous.get(container)
        rows.append(
            ServerState(
                user=user,
                server=labels.get(naming.LABEL_SERVER, ""),
                container=container,
                image=image,
                image_id=started_id,
                current_image_id=now_id,
                policy_hash=labels.get(naming.LABEL_POLICY_HASH, ""),
                current_policy_hash=current_hash,
                policies=eff.policies,
                drifted=bool(diff),
                difference=diff,
                since=(before.since if before and before.drifted and before.since else now) if diff else None,
            )
        )
    return sorted(rows, key=lambda r: (r.user, r.server))


async def image_ids(ctx: Context, images: set[str]) -> dict[str, str]:
    """What each image reference names now (one inspection each); absent ones are left out."""

    def look() -> dict[str, str]:
        found = {}
        for image in sorted(images):
            try:
                found[image] = ctx.engine.client.api.inspect_image(image)["Id"]
            except docker.errors.NotFound:
                continue
        return found

    return await ctx.engine.call(look)


async def names(_ctx: Context) -> set[str]:
    return {KEY}


async def reconcile(_name: str, ctx: Context) -> Result:
    now = datetime.now(UTC)
    previous = ServerDriftStatus.load(await ctx.observed(KIND, KEY))
    containers = await ctx.engine.running_containers(ctx.settings.platform_id)
    users = await ctx.hub.paginated("users?state=active")  # live: a membership edit shows at once
    in_force = await asyncio.to_thread(group_policies, ctx.store)
    refs = {(c.get("Labels") or {}).get(naming.LABEL_IMAGE) or c.get("Image", "") for c in containers}
    ids = await image_ids(ctx, {r for r in refs if r})
    groups_of = {u["name"]: list(u.get("groups") or []) for u in users}
    before = {s.container: s for s in previous.servers}
    rows = survey(containers, groups_of, in_force, ids, before, now)
    for row in rows:
        old = before.get(row.container)
        if row.drifted and (old is None or not old.drifted or old.difference != row.difference):
            where = f"{row.user}/{row.server}" if row.server else f"{row.user}'s server"
            await ctx.event(KIND, KEY, "Drifted", f"{where}: {'; '.join(row.difference)}", type="Warning")
    drifted = sum(r.drifted for r in rows)
    DRIFTED.set(drifted)
    RUNNING.set(len(rows))
    status = ServerDriftStatus(
        phase="Drift" if drifted else "Ready",
        last_survey=now,
        servers=rows,
        engine_calls=1 + len({r for r in refs if r}),
    )
    status.set_condition("Ready", "True", "Surveyed", f"{len(rows)} running, {drifted} drifted", now)
    return Result(status, SURVEY_SECONDS)
