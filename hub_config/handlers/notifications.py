"""Broadcast notifications in the hub: the admin panel, its JSON API, and the seed's API.

Submitting records a `Broadcast` resource (owner `panel`); the reconciler delivers it and
writes per-server outcomes to the delivery ledger, which the panel polls. Operators only
(the platform's write scope: the admin, and the `platform-operators` group).
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from reconciler.api.fields import MESSAGE_MAX
from vocabulary.naming import resource_name
from vocabulary.scopes import WRITE_BROADCASTS

from ..backends import get_ledger, get_store
from .base import WAIT_SECONDS, ResourceAPIHandler

TYPES = ("default", "info", "success", "warning", "error", "in-progress")


def summary(obj: Any) -> dict[str, Any]:
    status = obj.status or {}
    return {
        "name": obj.name,
        "owner": obj.owner,
        "created": obj.manifest()["metadata"]["creationTimestamp"],
        "message": obj.spec.get("message"),
        "type": obj.spec.get("type", "info"),
        "schedule": obj.spec.get("schedule"),
        "phase": status.get("phase") or "Pending",
        "nextRun": status.get("nextRun"),
        "validUntil": status.get("validUntil"),
        "counts": status.get("counts"),
        "runs": status.get("runs", []),
        "currentRun": status.get("currentRun"),
    }


class NotificationsPageHandler(BaseHandler):
    """GET /hub/notifications: the panel."""

    @web.authenticated
    async def get(self) -> None:
        if WRITE_BROADCASTS not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may send notifications")
        users = sorted(name for (name,) in self.db.query(orm.User.name))
        groups = sorted(name for (name,) in self.db.query(orm.Group.name))
        html = await self.render_template(
            "notifications.html", types=TYPES, max_length=MESSAGE_MAX, users=users, groups=groups
        )
        self.finish(html)


class NotificationsAPIHandler(ResourceAPIHandler):
    """POST /hub/api/notifications: submit (returns at once); GET: recent broadcasts."""

    async def get(self) -> None:
        self.require(WRITE_BROADCASTS)
        broadcasts = await asyncio.to_thread(get_store().list, "Broadcast")
        items = sorted(broadcasts, key=lambda o: o.created, reverse=True)[:50]
        self.send({"items": [summary(o) for o in items]})

    async def post(self) -> None:
        self.require(WRITE_BROADCASTS)
        name = resource_name("broadcast", self.current_user.name)
        await self.submit("Broadcast", name, self.json_object())  # the body is the spec
        url = f"{self.hub.base_url}api/notifications/{name}"
        self.set_header("Location", url)
        self.send({"name": name, "url": url}, 202)  # recorded; the panel follows its progress


class NotificationAPIHandler(ResourceAPIHandler):
    """GET /hub/api/notifications/<name>: status plus the per-server table (for polling)."""

    async def get(self, name: str) -> None:
        self.require(WRITE_BROADCASTS)
        obj = await asyncio.to_thread(get_store().get, "Broadcast", name)
        if obj is None:
            raise web.HTTPError(404, f"no broadcast {name}")
        run = self.get_argument("run", None) or ((obj.status.get("currentRun") or {}).get("id"))
        if run is None and obj.status.get("runs"):
            run = obj.status["runs"][0]["id"]
        rows = await asyncio.to_thread(get_ledger().rows, name, run) if run else []
        counts = await asyncio.to_thread(get_ledger().counts, name, run) if run else None
        self.send({**summary(obj), "run": run, "counts": counts, "deliveries": rows})


class SeedBroadcastHandler(ResourceAPIHandler):
    """POST /hub/api/notifications/broadcast: the original platform's API, kept working.

    Body `{"message", "variant" or "type", "autoClose", "recipients"?}`; waits (bounded)
    for the delivery and answers with per-user outcomes.
    """

    async def post(self) -> None:
        self.require(WRITE_BROADCASTS)
        body = self.json_object()
        unknown = set(body) - {"message", "variant", "type", "autoClose", "dismissButton", "recipients"}
        if unknown:
            raise web.HTTPError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        spec: dict[str, Any] = {"message": body.get("message", "")}
        if "type" in body or "variant" in body:
            spec["type"] = body.get("type", body.get("variant"))
        for key in ("autoClose", "dismissButton"):
            if key in body:
                spec[key] = body[key]
        if "recipients" in body:  # only a missing field means everyone
            recipients = body["recipients"]
            if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
                raise web.HTTPError(400, "recipients must be a list of usernames")
            if not recipients:
                raise web.HTTPError(400, "recipients: an empty list selects nobody; omit recipients to reach everyone")
            spec["targets"] = {"users": recipients}
        name = resource_name("broadcast", self.current_user.name)
        await self.submit("Broadcast", name, spec)
        obj = await self.wait_until_finished("Broadcast", name)
        runs = (obj.status.get("runs") if obj else None) or []
        if not runs:
            self.fail(504, f"delivery did not finish within {WAIT_SECONDS:g} s", name=name)
            return
        rows = await asyncio.to_thread(get_ledger().rows, name, runs[0]["id"])
        details = [
            {"username": r["user"], "server": r["server"], "status": "success"}
            if r["outcome"] == "delivered"
            else {"username": r["user"], "server": r["server"], "status": "failed", "error": r["error"] or r["outcome"]}
            for r in rows
        ]
        answer: dict[str, Any] = {
            "total": len(details),
            "successful": sum(d["status"] == "success" for d in details),
            "failed": sum(d["status"] == "failed" for d in details),
            "details": details,
            "name": name,
        }
        if not details:
            answer["message"] = "No active servers found"
        self.send(answer)


handlers = [
    (r"/notifications", NotificationsPageHandler),
    (r"/api/notifications", NotificationsAPIHandler),
    (r"/api/notifications/broadcast", SeedBroadcastHandler),
    (r"/api/notifications/([a-z0-9][-a-z0-9]*)", NotificationAPIHandler),
]
