"""Orphaned backup helpers (a built-in watch, one key `BackupHelpers/orphans`): a helper
whose request (its label `io.jupyterhub-ds.backup-request`) no longer exists is stopped.

The reconcile waiting on a helper stops it itself within a second of a delete; this catches
what that cannot: a request deleted while the reconciler was down or restarting. Looked at
every resync (one filtered container listing); without it such a helper would run until its
deadline. Not on Swarm, where helpers are one-off tasks of the nodes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ..api.common import Status
from ..clients.backups import Helpers
from ..context import Context
from ..result import Result

KIND = "BackupHelpers"
KEY = "orphans"
REQUEST_KINDS = ("VolumeBackup", "VolumeRestore", "UserRename")


async def reconcile(name: str, ctx: Context) -> Result:
    status = Status(phase="Ready")
    stopped, helpers = [], Helpers(ctx.engine, ctx.settings)
    for container, request in (await helpers.working()).items():
        kind, _, rname = request.partition(".")
        if kind not in REQUEST_KINDS or await asyncio.to_thread(ctx.store.get, kind, rname) is not None:
            continue
        await helpers.discard(container)
        message = f"helper {container} stopped and removed: {kind.lower()}/{rname} no longer exists"
        await ctx.event(KIND, name, "OrphanStopped", message, type="Warning")
        stopped.append(container)
    summary = f"stopped {len(stopped)} helpers of deleted requests" if stopped else "no orphaned helper"
    status.set_condition("Ready", "True", "Surveyed", summary, datetime.now(UTC))
    return Result(status)


async def names(ctx: Context) -> set[str]:
    return set() if ctx.settings.swarm else {KEY}
