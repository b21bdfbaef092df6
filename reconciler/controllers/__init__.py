"""One module per kind, each exposing `async def reconcile(obj, ctx) -> status`."""

from __future__ import annotations

from ..loop import Controller
from . import broadcast, groupmembership, serverrestart, volumereset

CONTROLLERS: dict[str, Controller] = {
    "Broadcast": broadcast.reconcile,
    "GroupMembership": groupmembership.reconcile,
    "ServerRestart": serverrestart.reconcile,
    "VolumeReset": volumereset.reconcile,
}
