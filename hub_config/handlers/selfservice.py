"""Self-service REST API: restart my server, list and reset my volumes (admins: anyone's).

Each call records a resource (ServerRestart, VolumeReset) for the reconciler and waits,
bounded, for its outcome; the hub does no slow work itself. Allowed for whoever may start
and stop the user's servers (JupyterHub's `servers` scope on that user: the user, admins).
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.scopes import has_scope
from tornado import web

from reconciler.store import StoredResource

from .. import naming
from ..backends import get_engine
from ..settings import get_settings
from .resources import ResourceAPIHandler, resource_name

TERMINAL = ("Succeeded", "Failed")


class SelfServiceHandler(ResourceAPIHandler):
    def authorized_user(self, name: str) -> Any:
        """The target user, if the requester may manage its servers; else an HTTP error."""
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if not has_scope(f"servers!user={name}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(403, f"Not allowed to manage the servers of {name}")
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {name}")
        return user


def _failure(obj: StoredResource | None) -> str:
    if obj is None:
        return "the request disappeared"
    for c in obj.status.get("conditions", []):
        if c.get("type") == "Ready" and c.get("status") == "False":
            return c.get("message") or c.get("reason", "failed")
    return f"not finished (phase: {obj.status.get('phase') or 'waiting for the reconciler'})"


class RestartServerHandler(SelfServiceHandler):
    """POST /hub/api/users/<name>/restart-server: 200 when the server is back and ready."""

    async def post(self, name: str) -> None:
        user = self.authorized_user(name)
        spawner = user.spawners.get("")
        if spawner is None or not spawner.ready:
            self.fail(400, f"The server of {name} is not running")
            return
        timeout = 2 * get_settings().spawn_timeout + 30
        rname = resource_name("restart", name)
        await self.submit("ServerRestart", rname, {"user": name})
        obj = await self.wait_for_phase("ServerRestart", rname, TERMINAL, timeout)
        if obj is None or obj.status.get("phase") != "Succeeded":
            code = 504 if obj is not None and obj.status.get("phase") not in TERMINAL else 500
            self.fail(code, f"Restart of {name}'s server failed: {_failure(obj)}", resource=rname)
            return
        self.finish({"status": "restarted", "resource": rname, "seconds": obj.status.get("seconds")})


class ManageVolumesHandler(SelfServiceHandler):
    """GET: the user's volumes that exist; DELETE {"volumes": [...]}: reset them."""

    async def get(self, name: str) -> None:
        self.authorized_user(name)
        s = get_settings()
        names = naming.user_volume_names(s.volume_name_template, name, list(s.user_volumes))
        found = await get_engine().existing_volumes(list(names.values()), sizes=True)
        volumes = [
            {
                "key": key,
                "name": vname,
                "mount": s.user_volumes[key],
                "description": s.volume_descriptions.get(key, ""),
                "size": found[vname]["size"],
            }
            for key, vname in names.items()
            if vname in found
        ]
        self.finish({"user": name, "volumes": volumes})

    async def delete(self, name: str) -> None:
        user = self.authorized_user(name)
        s = get_settings()
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.fail(400, 'The body must be JSON: {"volumes": ["home", ...]}')
            return
        volumes = body.get("volumes") if isinstance(body, dict) else None
        if not isinstance(volumes, list) or not volumes or not all(isinstance(v, str) for v in volumes):
            self.fail(400, 'Give the volumes to reset: {"volumes": ["home", ...]}')
            return
        bad = [v for v in volumes if v not in s.user_volumes]
        if bad:
            allowed = ", ".join(s.user_volumes)
            self.fail(400, f"Not a resettable volume: {', '.join(bad)} (resettable: {allowed})")
            return
        if any(spawner.active for spawner in user.spawners.values()):
            self.fail(400, f"The server of {name} is running: stop it before resetting volumes")
            return
        rname = resource_name("reset", name)
        spec = {"user": name, "volumes": list(dict.fromkeys(volumes))}
        await self.submit("VolumeReset", rname, spec)
        obj = await self.wait_for_phase("VolumeReset", rname, TERMINAL, timeout=60)
        status = obj.status if obj else {}
        if status.get("phase") not in TERMINAL:
            self.fail(504, f"The reset did not finish in time: {_failure(obj)}", resource=rname)
            return
        failed = list(status.get("failedVolumes", []))
        if status.get("phase") == "Failed" and not failed and not status.get("resetVolumes"):
            self.fail(400, _failure(obj), resource=rname)
            return
        self.finish(
            {
                "reset_volumes": status.get("resetVolumes", []),
                "failed_volumes": [{"volume": f["volume"], "reason": f["reason"]} for f in failed],
                "resource": rname,
            }
        )


handlers = [
    (r"/api/users/([^/]+)/restart-server", RestartServerHandler),
    (r"/api/users/([^/]+)/manage-volumes", ManageVolumesHandler),
]
