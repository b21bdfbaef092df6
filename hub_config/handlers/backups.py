"""Self-service backups: a user lists their own backups and restores one into their stopped
server's volumes (admins: anyone's). Allowed for whoever may start and stop the user's
servers (`servers!user=<name>`), as restarts and resets are.

- `GET /api/users/<name>/backups`: the finished backups that hold archives of `name`
  (newest first): name, time, volumes with sizes. Another user's backups are never listed:
  only archives of `name` are shown, even from a backup of many users. Read from an index
  by user (`surveys.Survey`), rebuilt once per change of the store's backups, not per
  request; `indexedAt` says when it was built.
- `POST /api/users/<name>/backups/<backup>/restore` `{"volumes": [...]}` (default: every
  volume in it): records a VolumeRestore of `name`'s own archives into `name`'s volumes,
  answers 202 with the URL to follow (`GET /api/users/<name>/volume-restores/<rname>`).

Restoring one user's backup into another user is the admins' (`hubctl apply` a
VolumeRestore with `sourceUser`: needs `admin:users`), never this API's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from reconciler.api.volumes import busy_servers, unknown_volume_keys
from reconciler.store import StoredResource
from vocabulary.naming import resource_name
from vocabulary.settings import get_settings

from ..backends import get_store
from ..surveys import Survey, Taken
from .base import READ
from .selfservice import SelfServiceHandler


def backups_of(objs: list[StoredResource], user: str) -> list[dict[str, Any]]:
    """The finished backups holding archives of `user`, newest first, with only those archives."""
    found = []
    for obj in objs:
        status = obj.status
        archives = [a for a in status.get("archives", []) if a.get("user") == user]
        if status.get("phase") not in ("Succeeded", "Failed") or not archives:
            continue
        entry = next((u for u in status.get("users", []) if u.get("user") == user), {})
        found.append(
            {
                "name": obj.name,
                "time": entry.get("startedAt") or status.get("startedAt"),
                "volumes": [{"volume": a["volume"], "bytes": a["bytes"]} for a in archives],
                "bytes": sum(a["bytes"] for a in archives),
                "consistent": bool(obj.spec.get("consistent")),
            }
        )
    return sorted(found, key=lambda b: b["time"] or "", reverse=True)


def index_by_user(objs: list[StoredResource]) -> dict[str, list[dict[str, Any]]]:
    """{user: backups_of(objs, user)} for every user with an archive in a finished backup."""
    users = {a.get("user") for obj in objs for a in obj.status.get("archives", [])}
    return {user: backups_of(objs, user) for user in users if user}


async def _index() -> tuple[tuple[int, int, str], dict[str, list[dict[str, Any]]]]:
    store = get_store()
    key = await asyncio.to_thread(store.fingerprint, "VolumeBackup")  # taken first: a change after it rebuilds
    return key, index_by_user(await asyncio.to_thread(store.list, "VolumeBackup"))


async def _changed(last: Taken[tuple[tuple[int, int, str], Any]]) -> bool:
    return await asyncio.to_thread(get_store().fingerprint, "VolumeBackup") != last.value[0]


# One per hub process: every backup loaded once per change of the backups, not per request.
INDEX: Survey[tuple[tuple[int, int, str], dict[str, list[dict[str, Any]]]]] = Survey(
    "backups by user", _index, lambda: float("inf")
)


class BackupsHandler(SelfServiceHandler):
    """GET /api/users/<name>/backups"""

    async def get(self, name: str) -> None:
        self.authorized_user(name)
        taken = await INDEX.get(stale=_changed, wait=True)
        items = taken.value[1].get(name, [])
        self.send({"user": name, "items": items, "indexedAt": taken.at, "indexAge": round(taken.age, 3)})


class RestoreHandler(SelfServiceHandler):
    """POST /api/users/<name>/backups/<backup>/restore"""

    async def post(self, name: str, backup: str) -> None:
        user = self.authorized_user(name)
        obj = await asyncio.to_thread(get_store().get, "VolumeBackup", backup)
        found = backups_of([obj], name) if obj is not None else []  # one backup: read live
        if not found:  # another user's backup is as good as none
            raise web.HTTPError(404, f"No backup of {name}: {backup}")
        mine = found[0]
        body = self.json_object() if self.request.body else {}
        volumes = body.get("volumes") or [v["volume"] for v in mine["volumes"]]
        if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
            raise web.HTTPError(400, 'Give the volumes to restore: {"volumes": ["home", ...]}')
        problem = unknown_volume_keys(volumes, get_settings())
        missing = sorted(set(volumes) - {v["volume"] for v in mine["volumes"]})
        if problem or missing:
            raise web.HTTPError(400, f"Cannot restore: {problem or 'not in this backup: ' + ', '.join(missing)}")
        active = {sp.name: {"ready": sp.ready, "pending": sp.pending} for sp in user.spawners.values() if sp.active}
        if busy_servers(active):
            raise web.HTTPError(400, f"The server of {name} is running: stop it before restoring volumes")
        pending = await asyncio.to_thread(get_store().open_requests, "VolumeRestore", name)
        if pending:
            raise web.HTTPError(409, f"A restore of {name} is already pending: {pending[0].name}")
        rname = resource_name("restore", name)
        spec = {
            "backup": backup,
            "user": name,
            "sourceUser": name,
            "volumes": list(dict.fromkeys(volumes)),
            # activeDeadlineSeconds: the restores' default (hours): past it the helper is killed.
        }
        await self.submit("VolumeRestore", rname, spec)
        self.accepted(name, "VolumeRestore", rname)


def catalogue(objs: list[StoredResource]) -> list[dict[str, Any]]:
    """Every backup for the operators' page: newest first, with each user's outcome."""
    rows = []
    for obj in objs:
        status = obj.status
        users = status.get("users", [])
        rows.append(
            {
                "name": obj.name,
                "phase": status.get("phase") or "Pending",
                "started": status.get("startedAt") or obj.created.isoformat(),
                "schedule": obj.labels.get("jupyterhub-ds/backup-schedule", ""),
                "users": [
                    {"user": u["user"], "outcome": u.get("outcome"), "message": u.get("message", "")} for u in users
                ],
                "archives": len(status.get("archives", [])),
                "bytes": status.get("bytes", 0),
            }
        )
    return sorted(rows, key=lambda r: r["started"], reverse=True)


class BackupsPageHandler(BaseHandler):
    """GET /backups: every backup (operators: the platform's read scope)."""

    @web.authenticated
    async def get(self) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may see every backup")
        objs = await asyncio.to_thread(get_store().list, "VolumeBackup")
        self.finish(await self.render_template("backups.html", backups=catalogue(objs)))


handlers = [
    (r"/backups", BackupsPageHandler),
    (r"/api/users/([^/]+)/backups", BackupsHandler),
    (r"/api/users/([^/]+)/backups/([a-z0-9][-a-z0-9]*)/restore", RestoreHandler),
]
