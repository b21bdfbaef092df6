"""One module per kind, each exposing `async def reconcile(obj, ctx) -> Result`; and the
built-in watches, which reconcile keys derived from the world (`reconcile(name, ctx)`)."""

from __future__ import annotations

from ..loop import Controller, Watch
from ..status import EngineAccessStatus, PrivilegedAccessStatus
from . import (
    broadcast,
    engineaccess,
    groupmembership,
    idlecullpolicy,
    privilegedaccess,
    serverrestart,
    volumereset,
)

CONTROLLERS: dict[str, Controller] = {
    "Broadcast": broadcast.reconcile,
    "GroupMembership": groupmembership.reconcile,
    "IdleCullPolicy": idlecullpolicy.reconcile,
    "ServerRestart": serverrestart.reconcile,
    "VolumeReset": volumereset.reconcile,
}

WATCHES: list[Watch] = [
    Watch(privilegedaccess.KIND, PrivilegedAccessStatus, privilegedaccess.reconcile, privilegedaccess.names),
    Watch(engineaccess.KIND, EngineAccessStatus, engineaccess.reconcile, engineaccess.names),
]
