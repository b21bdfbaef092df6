"""Backup archives through the engine: a short-lived helper container per user and operation.

The helper mounts the user's volumes (read-only for a backup) and the backup location, runs
`helper_script.py` as root with no network, prints its result, and is removed. Nothing here
reads the engine's data folder, so it works the same with the hub on the host or in a
container, and with the location a host folder or a named volume. At most
BACKUP_CONCURRENCY helpers copy data at once (backups and restores), per process, and at
most one per user where a controller asks for it (`user_slot`).

A helper working for a request (`Job`) is bounded by it: it runs under coreutils `timeout`
until the request's deadline (so the engine ends it even if the reconciler is gone), and is
stopped as soon as its request is deleted (looked at every WATCH_SECONDS) or the reconcile
waiting for it is cancelled. Every helper carries the label LABEL_REQUEST naming its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker.errors

from vocabulary import naming
from vocabulary.settings import Settings

from .docker import Engine, HelperMount

SCRIPT = (Path(__file__).parent / "helper_script.py").read_text()
LABEL_HELPER = "io.jupyterhub-ds.backup-helper"
LABEL_REQUEST = "io.jupyterhub-ds.backup-request"  # "<Kind>.<name>" of the request it works for
REFUSED = 3
TIMED_OUT = 124  # coreutils `timeout`: the command ran past its time
STOP_GRACE = 5  # seconds between SIGTERM (the helper removes what it wrote) and SIGKILL
WATCH_SECONDS = 1.0  # how often a running helper's request is looked up
_BOUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_USER_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


class HelperRefused(Exception):
    """The helper checked and refused (a corrupt or missing archive): nothing was changed."""


class HelperFailed(Exception):
    """The helper ended with an error (tar failed, disk full ...)."""


class HelperDeadline(HelperFailed):
    """The request's deadline (activeDeadlineSeconds) passed: the helper was killed."""


class HelperStopped(HelperFailed):
    """The request was deleted while its helper ran: the helper was stopped."""


@dataclass(frozen=True)
class Job:
    """The request a helper works for: its label, its deadline, whether it is still wanted."""

    kind: str
    name: str
    deadline: datetime | None = None
    wanted: Callable[[], Awaitable[bool]] | None = None  # False once the request is deleted

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def cancelled(self) -> str:
        return f"its request was cancelled ({self.label} or what it was for was deleted)"

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else (self.deadline - datetime.now(UTC)).total_seconds()

    async def bounded(self, command: list[str]) -> tuple[list[str], float | None]:
        """The command under this job's deadline, and how long to wait for it at most; an
        error instead if the job is gone or late (then no helper starts)."""
        if self.wanted is not None and not await self.wanted():
            raise HelperStopped(f"not started: {self.cancelled}")
        left = self.seconds_left()
        if left is None:
            return command, None
        if left <= 0:
            raise HelperDeadline(f"not started: the deadline of {self.label} has passed")
        # Run by the engine's clock, so it ends at the deadline even if this process is gone;
        # rounded up: never before the deadline, so the controller sees it passed.
        return ["timeout", "-k", str(STOP_GRACE), f"{math.ceil(left)}s", *command], left + 2 * STOP_GRACE + 30


def location(settings: Settings) -> str:
    """The backup location: `volume:<name>` or an absolute host folder."""
    return settings.backup_location or f"volume:{settings.platform_id}-backups"


def bound(settings: Settings) -> asyncio.Semaphore:
    """The one bound on data-copying helpers of this event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _BOUNDS:
        _BOUNDS[loop] = asyncio.Semaphore(settings.backup_concurrency)
    return _BOUNDS[loop]


@contextlib.asynccontextmanager
async def user_slot(user: str) -> AsyncIterator[None]:
    """One helper at a time for this user (e.g. their own backups, their restores), so
    cancelling and recreating a request cannot run two side by side."""
    # One lock per user for the loop's life (a few bytes each): dropping a released lock
    # would let a newcomer take a fresh one while a waiter is about to take the old.
    slots = _USER_SLOTS.setdefault(asyncio.get_running_loop(), {})
    async with slots.setdefault(user, asyncio.Lock()):
        yield


class Helpers:
    def __init__(self, engine: Engine, settings: Settings, job: Job | None = None):
        self.engine, self.settings, self.job = engine, settings, job

    def _location_mount(self, mode: str) -> list[HelperMount]:
        return [HelperMount(location(self.settings).removeprefix("volume:"), "/backup", mode == "ro")]

    async def _ensure_location(self) -> None:
        where = location(self.settings)
        if where.startswith("volume:") and not self.settings.swarm:  # on Swarm: made by the task's mount
            labels = {naming.LABEL_PLATFORM: self.settings.platform_id, LABEL_HELPER: "location"}
            await self.engine.ensure_volume(where.removeprefix("volume:"), labels)

    async def backup(self, backup: str, user: str, volumes: dict[str, str], slot_held: bool = False) -> dict[str, Any]:
        """Archive {key: volume name} of `user`; the manifest (with every archive).
        `slot_held`: the caller already holds a slot of `bound` (semaphores do not nest)."""
        await self._ensure_location()
        mounts = [HelperMount(name, f"/src/{key}", read_only=True) for key, name in volumes.items()]
        args = {"backup": backup, "user": user, "userDir": naming.escape_name(user), "volumes": list(volumes)}
        async with contextlib.nullcontext() if slot_held else bound(self.settings):
            return await self._run(f"backup-{backup}-{naming.escape_name(user)}", "backup", args, mounts, "rw", user)

    async def restore(
        self, name: str, archives: list[dict[str, Any]], volumes: dict[str, str], user: str | None = None
    ) -> dict[str, Any]:
        """Check every archive's sha256, then empty and fill {key: volume name}."""
        mounts = [HelperMount(vol, f"/dst/{key}") for key, vol in volumes.items()]
        async with bound(self.settings):
            return await self._run(f"restore-{name}", "restore", {"archives": archives}, mounts, "ro", user)

    async def delete(self, backups: list[str]) -> dict[str, Any]:
        """Remove the backups' folders (archives and manifests) from the location."""
        if not backups:
            return {"removed": []}
        await self._ensure_location()
        return await self._run(f"prune-{backups[0]}", "delete", {"backups": backups}, [], "rw")

    async def _run(
        self,
        what: str,
        op: str,
        args: dict[str, Any],
        mounts: list[HelperMount],
        location_mode: str,
        user: str | None = None,
    ) -> dict[str, Any]:
        name = naming.task_name(self.settings.platform_id, op, user, what)  # unique per user and request
        volumes = mounts + self._location_mount(location_mode)
        return await self.run_program(name, op, ["python3", "-c", SCRIPT, op, json.dumps(args)], volumes, user)

    async def run_program(
        self, name: str, op: str, command: list[str], volumes: list[HelperMount], user: str | None = None
    ) -> dict[str, Any]:
        """Run a helper program that prints one JSON object last (bounded by this job, if
        any): that object, or HelperRefused (exit 3), HelperStopped, HelperDeadline or
        HelperFailed."""
        labels = {naming.LABEL_PLATFORM: self.settings.platform_id, LABEL_HELPER: op}
        image = self.settings.backup_helper_image
        job, wait = self.job, None
        if job is not None:
            labels[LABEL_REQUEST] = job.label
            command, wait = await job.bounded(command)
        code, output, stopped = await self._watched(name, image, command, volumes, labels, user, wait)
        lines = output.strip().splitlines()
        if job is not None and stopped:
            raise HelperStopped(f"stopped: {job.cancelled}")
        if job is not None and wait is not None and code == TIMED_OUT:
            raise HelperDeadline(f"killed at the deadline of {job.label} (activeDeadlineSeconds)")
        if code == REFUSED:
            raise HelperRefused(json.loads(lines[-1])["refused"])
        if code != 0:
            raise HelperFailed(_failure(lines, code))
        return dict(json.loads(lines[-1]))

    async def working(self) -> dict[str, str]:
        """{container name: "<Kind>.<name>"} of this platform's helpers working for a request."""
        filters = {"label": [f"{naming.LABEL_PLATFORM}={self.settings.platform_id}", LABEL_REQUEST]}
        found = await self.engine.call(self.engine.client.api.containers, all=True, filters=filters)
        return {c["Names"][0].lstrip("/"): (c.get("Labels") or {}).get(LABEL_REQUEST, "") for c in found}

    async def discard(self, name: str) -> None:
        """Stop a helper nobody waits for (as a deleted request does), then remove it."""
        await self.engine.stop_helper(name, STOP_GRACE)
        with contextlib.suppress(docker.errors.NotFound):  # already gone is done
            await self.engine.call(self.engine.client.api.remove_container, name, force=True)

    async def _watched(
        self,
        name: str,
        image: str,
        command: list[str],
        volumes: list[HelperMount],
        labels: dict[str, str],
        user: str | None,
        wait: float | None,
    ) -> tuple[int, str, bool]:
        """Run the helper; stop it when its request is deleted or this wait is cancelled.
        (exit code, output, whether it was stopped)."""
        run = asyncio.ensure_future(self.engine.run_helper(name, image, command, volumes, labels, user, wait))
        stopped = False
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=WATCH_SECONDS)
                if not run.done() and not stopped and self.job and self.job.wanted and not await self.job.wanted():
                    stopped = True
                    await self.engine.stop_helper(name, STOP_GRACE)
        except asyncio.CancelledError:  # the reconcile was cancelled: its helper goes too
            await asyncio.shield(self.engine.stop_helper(name, STOP_GRACE))
            raise
        code, output = run.result()
        return code, output, stopped


def _failure(lines: list[str], code: int) -> str:
    """A failed helper's last line: its own `{"failed": ...}`, or whatever it printed."""
    if not lines:
        return f"exit code {code}"
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(lines[-1])["failed"])[-500:]
    return lines[-1][-500:]
