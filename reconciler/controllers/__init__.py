"""One module per kind, each exposing `async def reconcile(obj, ctx) -> Result`; and the
built-in watches, which reconcile keys derived from the world (`reconcile(name, ctx)`)."""

from __future__ import annotations

from ..api.common import Status
from ..api.dockeraccess import DockerAccessStatus
from ..api.engineaccess import EngineAccessStatus
from ..api.privilegedaccess import PrivilegedAccessStatus
from ..api.quota import QuotaStatus
from ..api.serverdrift import ServerDriftStatus
from ..api.usage import UsageStatus
from ..loop import Controller, Finalizer, Watch
from . import (
    backuphelpers,
    backupschedule,
    broadcast,
    dockeraccess,
    engineaccess,
    groupmembership,
    grouppolicy,
    idlecullpolicy,
    privilegedaccess,
    quota,
    rolloutrestart,
    roster,
    serverdrift,
    serverrestart,
    serverstop,
    usage,
    userremoval,
    userrename,
    volumebackup,
    volumereset,
    volumerestore,
)

CONTROLLERS: dict[str, Controller] = {
    "Broadcast": broadcast.reconcile,
    "GroupMembership": groupmembership.reconcile,
    "IdleCullPolicy": idlecullpolicy.reconcile,
    "GroupPolicy": grouppolicy.reconcile,
    "RolloutRestart": rolloutrestart.reconcile,
    "ServerRestart": serverrestart.reconcile,
    "VolumeReset": volumereset.reconcile,
    "VolumeBackup": volumebackup.reconcile,
    "VolumeRestore": volumerestore.reconcile,
    "BackupSchedule": backupschedule.reconcile,
    "ServerStop": serverstop.reconcile,
    "UserRename": userrename.reconcile,
    "Roster": roster.reconcile,
    "UserRemoval": userremoval.reconcile,
}

FINALIZERS: dict[str, Finalizer] = {"VolumeBackup": volumebackup.finalize}

WATCHES: list[Watch] = [
    Watch(privilegedaccess.KIND, PrivilegedAccessStatus, privilegedaccess.reconcile, privilegedaccess.names),
    Watch(dockeraccess.KIND, DockerAccessStatus, dockeraccess.reconcile, dockeraccess.names),
    Watch(engineaccess.KIND, EngineAccessStatus, engineaccess.reconcile, engineaccess.names),
    Watch(serverdrift.KIND, ServerDriftStatus, serverdrift.reconcile, serverdrift.names),
    Watch(backuphelpers.KIND, Status, backuphelpers.reconcile, backuphelpers.names),
    Watch(quota.KIND, QuotaStatus, quota.reconcile, quota.names),
    Watch(usage.KIND, UsageStatus, usage.reconcile, usage.names),
]
