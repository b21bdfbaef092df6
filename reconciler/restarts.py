"""Restarting a user's server through the hub (stop, then start), shared by the controllers
that restart servers: ServerRestart (a request, waited for) and the privileged-access watch
(the platform's own restart, one short step per reconcile).

Going through the hub's REST API keeps the hub's view true (no raw container restart behind
its back); the spawner recreates the container from the same volumes with what the user
may have now (the socket follows membership).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .clients.hub import HubClient
from .errors import PermanentError, TemporaryError

POLL = 0.2
Server = dict[str, Any] | None


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


async def wait(
    hub: HubClient, user: str, server: str, done: Callable[[Server], bool], timeout: float, what: str
) -> None:
    """Until `done` holds of the server's model; a TemporaryError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(await server_model(hub, user, server)):
            return
        await asyncio.sleep(POLL)
    raise TemporaryError(f"{label(user, server)} not {what} after {timeout:g} s")


async def wait_ready(hub: HubClient, user: str, server: str, timeout: float) -> None:
    """Until the server is ready; a start the hub gave up on (the server is gone again) is a
    failed attempt at once, not a wait for the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await server_model(hub, user, server)
        if found is None:
            raise TemporaryError(f"the start of {label(user, server)} failed (see the hub's log)")
        if found.get("ready"):
            return
        await asyncio.sleep(POLL)
    raise TemporaryError(f"{label(user, server)} not ready after {timeout:g} s")
