"""One module per kind, each exposing `async def reconcile(obj, ctx) -> status`."""

from __future__ import annotations

from ..loop import Controller
from . import groupmembership, serverrestart, volumereset

CONTROLLERS: dict[str, Controller] = {
    "GroupMembership": groupmembership.reconcile,
    "ServerRestart": serverrestart.reconcile,
    "VolumeReset": volumereset.reconcile,
}
