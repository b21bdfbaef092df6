"""Backup archives through the engine: a short-lived helper container per user and operation.

The helper mounts the user's volumes (read-only for a backup) and the backup location, runs
`helper_script.py` as root with no network, prints its result, and is removed. Nothing here
reads the engine's data folder, so it works the same with the hub on the host or in a
container, and with the location a host folder or a named volume. At most
BACKUP_CONCURRENCY helpers copy data at once (backups and restores), per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from pathlib import Path
from typing import Any

from vocabulary import naming
from vocabulary.settings import Settings

from .docker import Engine

SCRIPT = (Path(__file__).parent / "helper_script.py").read_text()
LABEL_HELPER = "io.jupyterhub-ds.backup-helper"
REFUSED = 3
_BOUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class HelperRefused(Exception):
    """The helper checked and refused (a corrupt or missing archive): nothing was changed."""


class HelperFailed(Exception):
    """The helper ended with an error (tar failed, disk full ...)."""


def location(settings: Settings) -> str:
    """The backup location: `volume:<name>` or an absolute host folder."""
    return settings.backup_location or f"volume:{settings.platform_id}-backups"


def bound(settings: Settings) -> asyncio.Semaphore:
    """The one bound on data-copying helpers of this event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _BOUNDS:
        _BOUNDS[loop] = asyncio.Semaphore(settings.backup_concurrency)
    return _BOUNDS[loop]


class Helpers:
    def __init__(self, engine: Engine, settings: Settings):
        self.engine, self.settings = engine, settings

    def _location_mount(self, mode: str) -> dict[str, dict[str, str]]:
        where = location(self.settings)
        source = where.removeprefix("volume:")
        return {source: {"bind": "/backup", "mode": mode}}

    async def _ensure_location(self) -> None:
        where = location(self.settings)
        if where.startswith("volume:") and not self.settings.swarm:  # on Swarm: made by the task's mount
            labels = {naming.LABEL_PLATFORM: self.settings.platform_id, LABEL_HELPER: "location"}
            await self.engine.ensure_volume(where.removeprefix("volume:"), labels)

    async def backup(self, backup: str, user: str, volumes: dict[str, str], slot_held: bool = False) -> dict[str, Any]:
        """Archive {key: volume name} of `user`; the manifest (with every archive).
        `slot_held`: the caller already holds a slot of `bound` (semaphores do not nest)."""
        await self._ensure_location()
        mounts = {name: {"bind": f"/src/{key}", "mode": "ro"} for key, name in volumes.items()}
        args = {"backup": backup, "user": user, "userDir": naming.escape_name(user), "volumes": list(volumes)}
        async with contextlib.nullcontext() if slot_held else bound(self.settings):
            return await self._run(f"backup-{backup}-{naming.escape_name(user)}", "backup", args, mounts, "rw", user)

    async def restore(
        self, name: str, archives: list[dict[str, Any]], volumes: dict[str, str], user: str | None = None
    ) -> dict[str, Any]:
        """Check every archive's sha256, then empty and fill {key: volume name}."""
        mounts = {vol: {"bind": f"/dst/{key}", "mode": "rw"} for key, vol in volumes.items()}
        async with bound(self.settings):
            return await self._run(f"restore-{name}", "restore", {"archives": archives}, mounts, "ro", user)

    async def delete(self, backups: list[str]) -> dict[str, Any]:
        """Remove the backups' folders (archives and manifests) from the location."""
        if not backups:
            return {"removed": []}
        await self._ensure_location()
        return await self._run(f"prune-{backups[0]}", "delete", {"backups": backups}, {}, "rw")

    async def _run(
        self,
        what: str,
        op: str,
        args: dict[str, Any],
        mounts: dict[str, dict[str, str]],
        location_mode: str,
        user: str | None = None,
    ) -> dict[str, Any]:
        name = naming.task_name(self.settings.platform_id, op, user, what)  # unique per user and request
        labels = {naming.LABEL_PLATFORM: self.settings.platform_id, LABEL_HELPER: op}
        volumes = mounts | self._location_mount(location_mode)
        command = ["python3", "-c", SCRIPT, op, json.dumps(args)]
        image = self.settings.backup_helper_image

        code, output = await self.engine.run_helper(name, image, command, volumes, labels, user)
        lines = output.strip().splitlines()
        if code == REFUSED:
            raise HelperRefused(json.loads(lines[-1])["refused"])
        if code != 0:
            raise HelperFailed((lines[-1] if lines else f"exit code {code}")[-500:])
        return json.loads(lines[-1])
