"""Restarting a user's server through the hub (stop, then start), written once for every
controller that restarts servers: ServerRestart (a request, waited for), RolloutRestart
(a batch at a time), consistent backups (stopped for the copy, started after) and the
privileged-access watch (the platform's own restart, one short step per reconcile).

Going through the hub's REST API keeps the hub's view true (no raw container restart behind
its back); the spawner recreates the container from the same volumes with what the user
may have now (the socket follows membership). Every wait polls the hub every `POLL` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from .clients.hub import HubClient, NotFound
from .errors import PermanentError, TemporaryError

POLL = 0.25  # seconds between looks at a server being stopped or started (and a watch's requeue)
Server = dict[str, Any] | None
Step = Literal["stopping", "starting"]


def label(user: str, server: str) -> str:
    return f"{user}/{server}" if server else f"{user}'s default server"


async def server_model(hub: HubClient, user: str, server: str) -> Server:
    """The hub's model of that server, None when it is not running (or starting)."""
    model = await hub.get_user(user)
    if model is None:
        raise PermanentError(f"no such user: {user}", reason="UnknownUser")
    return (model.get("servers") or {}).get(server)


async def start(hub: HubClient, user: str, server: str) -> None:
    """Ask the hub to start the server; one started meanwhile (by its user) is as good."""
    try:
        await hub.start_server(user, server)
    except PermanentError:
        if await server_model(hub, user, server) is None:
            raise


async def until(done: Callable[[], Awaitable[bool]], timeout: float, failure: str) -> None:
    """Until `done()` holds, looking every POLL s; a TemporaryError(`failure`) after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await done():
            return
        await asyncio.sleep(POLL)
    raise TemporaryError(failure)


async def wait_stopped(hub: HubClient, user: str, server: str, timeout: float) -> None:
    async def stopped() -> bool:
        return await server_model(hub, user, server) is None

    await until(stopped, timeout, f"{label(user, server)} not stopped after {timeout:g} s")


async def wait_ready(hub: HubClient, user: str, server: str, timeout: float) -> None:
    """Until the server is ready; a start the hub gave up on (the server is gone again) is a
    failed attempt at once, not a wait for the timeout."""

    async def ready() -> bool:
        found = await server_model(hub, user, server)
        if found is None:
            raise TemporaryError(f"the start of {label(user, server)} failed (see the hub's log)")
        return bool(found.get("ready"))

    await until(ready, timeout, f"{label(user, server)} not ready after {timeout:g} s")


async def restart(
    hub: HubClient,
    user: str,
    server: str,
    timeout: float,
    step: Step | None,
    record: Callable[[Step], Awaitable[None]],
) -> None:
    """Stop, then start one server and wait until it is ready. `step` is how far an earlier
    attempt got (None: not begun); `record(step)` runs before that step's side effect (the
    caller writes its progress there, so a crash resumes from it, and says so)."""
    if step is None:
        step = "stopping"
        await record(step)
        await hub.stop_server(user, server)
    if step == "stopping":
        await wait_stopped(hub, user, server, timeout)
        step = "starting"
        await record(step)
        await start(hub, user, server)
    if await server_model(hub, user, server) is None:
        await start(hub, user, server)  # the start was lost (a crash) or failed: sent again
    await wait_ready(hub, user, server, timeout)


async def stop_all(hub: HubClient, user: str, servers: Sequence[str], timeout: float) -> None:
    """Stop these servers of one user and wait until none of them runs; one already gone is
    stopped (a resumed caller asks again)."""
    for server in servers:
        with contextlib.suppress(NotFound):
            await hub.stop_server(user, server)

    async def stopped() -> bool:
        model = await hub.get_user(user) or {}
        return not set(servers) & set(model.get("servers") or {})

    await until(stopped, timeout, f"the servers of {user} did not stop within {timeout:g} s")
