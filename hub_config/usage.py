"""The hub's records of its servers' sessions in the usage ledger (docs/usage.md#sessions):
a start when the spawner's start succeeds, a stop when JupyterHub has stopped the server
(its post-stop hook runs for every stop, also of a server found dead). Written by the hub
itself, so nothing is missed while the reconciler is down; a failed write is logged and
left to the reconciler's resync, which squares the ledger with the hub's record."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from typing import Any

from reconciler.usage.times import utc_or_now

from .backends import get_usage


async def record_start(spawner: Any) -> None:
    """The session begins at the hub's own `started` (set before `Spawner.start`), so the
    ledger and the hub's REST record name the same time."""
    user, server = spawner.user.name, spawner.name or ""
    started = utc_or_now(spawner.orm_spawner.started)
    groups = [g.name for g in spawner.user.groups]
    try:
        await asyncio.to_thread(get_usage().open_session, user, server, started, groups)
    except Exception:  # the ledger must never fail a spawn; the resync records it
        spawner.log.exception("usage: could not record the start of %s's server %r", user, server)


async def finished_at(spawner: Any) -> datetime | None:
    """When a container that stopped on its own exited (the engine's FinishedAt); None if
    unknown (removed, a Swarm service)."""
    if not spawner.object_id or spawner.object_type != "container":
        return None
    try:
        attrs = await spawner.docker("inspect_container", spawner.object_id)
        text = (attrs.get("State") or {}).get("FinishedAt") or ""
        if not text or text.startswith("0001-"):
            return None
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00" if "." in text else text.replace("Z", "+00:00"))
    except Exception:  # gone, or unreadable: the best known time is used
        return None


async def record_stop(spawner: Any, stopped_by_hub: bool) -> None:
    """A stop the hub made is now; a server found dead ended when its container exited,
    else at the newest time the ledger saw it running."""
    user, server = spawner.user.name, spawner.name or ""
    stopped = datetime.now(UTC) if stopped_by_hub else await finished_at(spawner)
    try:
        await asyncio.to_thread(get_usage().close_session, user, server, stopped)
    except Exception:
        spawner.log.exception("usage: could not record the stop of %s's server %r", user, server)


class SessionRecords:
    """The spawner's part: `stop` sets `_stopped_by_hub`; every stop ends in the post-stop
    hook (JupyterHub calls `stop` only for a server still running), which closes the session
    and then runs any configured hook."""

    _stopped_by_hub = False

    async def run_post_stop_hook(self) -> Any:
        await record_stop(self, self._stopped_by_hub)
        self._stopped_by_hub = False
        result = super().run_post_stop_hook()  # type: ignore[misc]
        return await result if inspect.isawaitable(result) else result
