"""Self-service REST API: restart my server, list and reset my volumes (admins: anyone's).

Each request records a resource (ServerRestart, VolumeReset) for the reconciler. Allowed for
whoever may start and stop the user's servers (JupyterHub's `servers` scope on that user:
the user, admins).

- `POST /api/users/<name>/server-restarts`, `POST /api/users/<name>/volume-resets`: answer
  202 at once with the request's URL; `GET` that URL follows it (the home page does).
- `POST /api/users/<name>/restart-server`, `DELETE /api/users/<name>/manage-volumes`: the
  original platform's endpoints, answered when the work is done, waiting at most 30 s
  (then 202 with the request's URL).
- `GET /api/users/<name>/manage-volumes`: the user's volumes (looked up by name), with sizes
  from the last survey of the engine's disk usage (`SIZES`: at most one in flight, renewed
  after VOLUME_SIZES_MAX_AGE s), and `sizesAge`, how old they are.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado import web

from reconciler.api.common import TERMINAL_PHASES
from reconciler.api.volumes import busy_servers, unknown_volume_keys
from reconciler.store import StoredResource
from vocabulary import naming
from vocabulary.naming import resource_name
from vocabulary.settings import get_settings

from ..backends import get_engine, get_store
from ..surveys import Survey, Taken
from .base import ResourceAPIHandler

# The request kinds, by the collection name of their URL (restores: recorded by backups.py).
COLLECTIONS = {"server-restarts": "ServerRestart", "volume-resets": "VolumeReset", "volume-restores": "VolumeRestore"}
# A request that could not even start within this long is dropped, not carried out hours
# later when the reconciler comes back (activeDeadlineSeconds of the resource).
REQUEST_DEADLINE_SECONDS = 300
BACKUP_FIRST_DEADLINE_SECONDS = 3600


async def _sizes() -> dict[str, int | None]:
    return await get_engine().volume_sizes()


# One per hub process: the engine's disk-usage scan, shared by every request.
SIZES: Survey[dict[str, int | None]] = Survey("volume sizes", _sizes, lambda: get_settings().volume_sizes_max_age)


def failure(obj: StoredResource | None) -> str:
    if obj is None:
        return "the request disappeared"
    for c in obj.status.get("conditions", []):
        if c.get("type") == "Ready" and c.get("status") == "False":
            return c.get("message") or c.get("reason", "failed")
    return f"not finished (phase: {obj.status.get('phase') or 'waiting for the reconciler'})"


def view(obj: StoredResource) -> dict[str, Any]:
    """A request as its owner follows it: phase, whether it is over, and what came of it."""
    status = obj.status
    phase = status.get("phase") or "Pending"
    answer = {"name": obj.name, "kind": obj.kind, "phase": phase, "finished": phase in TERMINAL_PHASES}
    shown = ("resetVolumes", "failedVolumes", "restoredVolumes", "seconds", "step")
    answer |= {k: status[k] for k in shown if k in status}
    if phase == "Failed":
        answer["message"] = failure(obj)
    return answer


class SelfServiceHandler(ResourceAPIHandler):
    def authorized_user(self, name: str) -> Any:
        """The target user, if the requester may manage its servers; else an HTTP error."""
        return self.user_whose_servers(name, "manage the servers")

    async def request_restart(self, name: str) -> str:
        """Check (for a quick answer) and record a restart of `name`'s default server."""
        user = self.authorized_user(name)
        spawner = user.spawners.get("")
        if spawner is None or not spawner.ready:
            raise web.HTTPError(400, f"The server of {name} is not running")
        await self.refuse_if_pending("ServerRestart", name)
        rname = resource_name("restart", name)
        await self.submit("ServerRestart", rname, {"user": name, "activeDeadlineSeconds": REQUEST_DEADLINE_SECONDS})
        return rname

    async def request_reset(self, name: str) -> str:
        """Check (for a quick answer) and record a reset of the volumes the body names."""
        user = self.authorized_user(name)
        body = self.json_object()
        volumes = body.get("volumes")
        if not isinstance(volumes, list) or not volumes or not all(isinstance(v, str) for v in volumes):
            raise web.HTTPError(400, 'Give the volumes to reset: {"volumes": ["home", ...]}')
        problem = unknown_volume_keys(volumes, get_settings())
        if problem:
            raise web.HTTPError(400, f"Cannot reset: {problem}")
        active = {sp.name: {"ready": sp.ready, "pending": sp.pending} for sp in user.spawners.values() if sp.active}
        if busy_servers(active):
            raise web.HTTPError(400, f"The server of {name} is running: stop it before resetting volumes")
        await self.refuse_if_pending("VolumeReset", name)
        rname = resource_name("reset", name)
        backup_first = body.get("backupFirst") is True
        spec = {
            "user": name,
            "volumes": list(dict.fromkeys(volumes)),
            # A backup first may take a while: its reset still ends, but not within 5 minutes.
            "activeDeadlineSeconds": BACKUP_FIRST_DEADLINE_SECONDS if backup_first else REQUEST_DEADLINE_SECONDS,
            "backupFirst": backup_first,
        }
        await self.submit("VolumeReset", rname, spec)
        return rname

    async def refuse_if_pending(self, kind: str, name: str) -> None:
        """One pending request of a kind per user: a second is a 409 naming the first."""
        pending = await asyncio.to_thread(get_store().open_requests, kind, name)
        if pending:
            what = "restart" if kind == "ServerRestart" else "volume reset"
            raise web.HTTPError(409, f"A {what} of {name} is already pending: {pending[0].name} (cancel it or wait)")

    def accepted(self, name: str, kind: str, rname: str, extra: dict[str, Any] | None = None) -> None:
        collection = next(c for c, k in COLLECTIONS.items() if k == kind)
        url = f"{self.hub.base_url}api/users/{name}/{collection}/{rname}"
        self.set_header("Location", url)
        self.send({"name": rname, "url": url, "phase": "Pending", **(extra or {})}, 202)


class RequestsHandler(SelfServiceHandler):
    """POST /api/users/<name>/server-restarts | volume-resets: record, answer 202 at once;
    GET: the user's requests of that kind that have not finished."""

    async def get(self, name: str, collection: str) -> None:
        self.authorized_user(name)
        pending = await asyncio.to_thread(get_store().open_requests, COLLECTIONS[collection], name)
        self.send({"items": [view(obj) for obj in pending]})

    async def post(self, name: str, collection: str) -> None:
        kind = COLLECTIONS[collection]
        rname = await (self.request_restart(name) if kind == "ServerRestart" else self.request_reset(name))
        self.accepted(name, kind, rname)


class RequestHandler(SelfServiceHandler):
    """GET /api/users/<name>/server-restarts/<rname> (or volume-resets): follow one request;
    DELETE: cancel it while it has not finished."""

    async def find_request(self, name: str, collection: str, rname: str) -> StoredResource:
        self.authorized_user(name)
        obj = await asyncio.to_thread(get_store().get, COLLECTIONS[collection], rname)
        if obj is None or obj.spec.get("user") != name:
            raise web.HTTPError(404, f"No such request of {name}: {rname}")
        return obj

    async def get(self, name: str, collection: str, rname: str) -> None:
        self.send(view(await self.find_request(name, collection, rname)))

    async def delete(self, name: str, collection: str, rname: str) -> None:
        obj = await self.find_request(name, collection, rname)
        if obj.status.get("phase") in TERMINAL_PHASES:
            raise web.HTTPError(409, f"{rname} has already finished ({obj.status['phase']})")
        # Cancelling one that is under way stops what remains of it (a volume removed stays
        # removed); it no longer holds up the user's spawns either way.
        await asyncio.to_thread(get_store().delete, obj.kind, rname, self.actor)
        self.set_status(204)
        self.finish()


class RestartServerHandler(SelfServiceHandler):
    """POST /api/users/<name>/restart-server (the original platform's): 200 when the server
    is back and ready."""

    async def post(self, name: str) -> None:
        rname = await self.request_restart(name)
        obj = await self.wait_until_finished("ServerRestart", rname)
        phase = obj.status.get("phase") if obj else None
        if phase not in TERMINAL_PHASES:
            self.accepted(name, "ServerRestart", rname, {"message": "the restart is still under way"})
        elif phase != "Succeeded":
            self.fail(500, f"Restart of {name}'s server failed: {failure(obj)}", resource=rname)
        else:
            self.finish({"status": "restarted", "resource": rname, "seconds": obj.status.get("seconds")})


class ManageVolumesHandler(SelfServiceHandler):
    """GET: the user's volumes that exist; DELETE {"volumes": [...]}: reset them (the
    original platform's endpoint: answered when done)."""

    async def get(self, name: str) -> None:
        self.authorized_user(name)
        s = get_settings()
        names = naming.user_volume_names(s.volume_name_template, name, list(s.user_volumes))
        found = await get_engine().existing_volumes(list(names.values()))  # by name: no scan
        present = [vname for vname in names.values() if vname in found]

        async def misses_one(last: Taken[dict[str, int | None]]) -> bool:
            # A volume created since the last survey: a fresh one (at most one in flight, and
            # not more than once a second) rather than "no size" for a new user's volumes.
            return last.age >= 1 and any(v not in last.value for v in present)

        sizes = await SIZES.get(stale=misses_one, wait=True)
        volumes = [
            {
                "key": key,
                "name": vname,
                "mount": s.user_volumes[key],
                "description": s.volume_descriptions.get(key, ""),
                "size": sizes.value.get(vname),  # None: the engine has no figure for it
            }
            for key, vname in names.items()
            if vname in found
        ]
        self.finish({"user": name, "volumes": volumes, "sizesAt": sizes.at, "sizesAge": round(sizes.age, 3)})

    async def delete(self, name: str) -> None:
        rname = await self.request_reset(name)
        obj = await self.wait_until_finished("VolumeReset", rname)
        status = obj.status if obj else {}
        if status.get("phase") not in TERMINAL_PHASES:
            self.accepted(name, "VolumeReset", rname, {"message": "the reset is still under way"})
            return
        failed = list(status.get("failedVolumes", []))
        if status.get("phase") == "Failed" and not failed and not status.get("resetVolumes"):
            self.fail(400, failure(obj), resource=rname)
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
    (r"/api/users/([^/]+)/(server-restarts|volume-resets)", RequestsHandler),
    (r"/api/users/([^/]+)/(server-restarts|volume-resets|volume-restores)/([a-z0-9][-a-z0-9]*)", RequestHandler),
]
