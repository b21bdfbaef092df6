"""The platform's REST API in the hub: desired-state resources, their status and events.

Scope-checked with the platform's custom scopes; errors are JSON (JupyterHub's APIHandler).
The hub only records intent here; the reconciler service does the work. Store calls run in
a worker thread: a write may wait for SQLite's lock, and the hub's event loop must not.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from reconciler.manifests import ManifestError, parse_manifests
from reconciler.resources import kind_from_name
from reconciler.store import ConflictError, StoredResource

from .. import naming
from ..backends import get_store

READ = "custom:jupyterhub-ds:read:resources"
WRITE = "custom:jupyterhub-ds:write:resources"
API_OWNERS = ("api", "cli")  # gitops and panel write through their own paths


def resource_name(prefix: str, username: str) -> str:
    """A fresh DNS-1123 name, e.g. `restart-alice-1764107000-3fa2`."""
    slug = naming.escape_name(username).strip("-")[:30].rstrip("-") or "user"
    return f"{prefix}-{slug}-{int(time.time())}-{secrets.token_hex(2)}"


class ResourceAPIHandler(APIHandler):
    def require(self, scope: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if scope not in self.expanded_scopes:
            raise web.HTTPError(403, f"Action is not authorized: needs the scope {scope}")

    @property
    def actor(self) -> str:
        user = self.current_user
        kind = "service" if getattr(user, "kind", "user") == "service" else "user"
        return f"{kind}:{user.name}"

    def kind(self, text: str) -> str:
        try:
            return kind_from_name(text)
        except ValueError as e:
            raise web.HTTPError(404, str(e)) from None

    def flag(self, name: str) -> bool:
        value = self.get_argument(name, "false").lower()
        if value not in ("true", "false", "1", "0", ""):
            raise web.HTTPError(400, f"?{name} must be true or false")
        return value in ("true", "1", "")

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying what is wrong."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return body

    def send(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """JupyterHub's JSON error, plus `error` (the original platform's field)."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps({"status": status_code, "message": message, "error": message}))
            return
        super().write_error(status_code, **kwargs)

    def fail(self, status: int, message: str, **extra: Any) -> None:
        """A JSON error in JupyterHub's shape, plus `error` (the original platform's)."""
        self.send({"status": status, "message": message, "error": message, **extra}, status)

    async def submit(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Record one resource for the reconciler (owner `panel`); an invalid spec is a 400
        naming the fields (the spec is what the request gave)."""
        doc = {
            "apiVersion": "jupyterhub-ds/v1",
            "kind": kind,
            "metadata": {"name": name, "labels": {"requested-by": self.current_user.name}},
            "spec": spec,
        }
        try:
            resources = parse_manifests(json.dumps(doc), self.request.path)
        except ManifestError as e:
            message = "; ".join(f"{i.path.removeprefix('spec.')}: {i.message}" for i in e.issues)
            raise web.HTTPError(400, "%s", message) from None
        await asyncio.to_thread(get_store().apply, resources, "panel", actor=self.actor)

    async def wait_for_phase(
        self, kind: str, name: str, phases: tuple[str, ...], timeout: float
    ) -> StoredResource | None:
        """Poll the store (bounded) until the reconciler has brought the resource to one of
        `phases`; the resource as it is then."""
        store = get_store()
        deadline = time.monotonic() + timeout
        while True:
            obj = await asyncio.to_thread(store.get, kind, name)
            if obj is None or obj.status.get("phase") in phases or time.monotonic() > deadline:
                return obj
            await asyncio.sleep(0.05)


class ManifestsHandler(ResourceAPIHandler):
    """POST /hub/api/manifests: apply one or many documents (YAML or JSON), atomically."""

    async def post(self) -> None:
        self.require(WRITE)
        owner = self.get_argument("owner", "api")
        if owner not in API_OWNERS:
            raise web.HTTPError(400, f"?owner must be one of {', '.join(API_OWNERS)}")
        dry_run, prune = self.flag("dryRun"), self.flag("prune")
        # Where the documents come from (hubctl sends the -f path): prune is limited to it.
        source = self.get_argument("source", None)
        if prune and not source:
            raise web.HTTPError(400, "?prune=true needs ?source= (only what was applied from there is pruned)")
        try:
            text = self.request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise web.HTTPError(400, "the body must be UTF-8 text (YAML or JSON)") from None
        try:
            resources = parse_manifests(text, source or "request")
        except ManifestError as e:
            self.send(
                {
                    "status": 422,
                    "message": f"{len(e.issues)} error(s); nothing was applied",
                    "errors": [
                        {"source": i.source, "line": i.line, "path": i.path, "message": i.message} for i in e.issues
                    ],
                },
                422,
            )
            return
        try:
            results = await asyncio.to_thread(
                get_store().apply,
                resources,
                owner,
                sources={(r.kind, r.metadata.name): source for r in resources} if source else None,
                dry_run=dry_run,
                prune=prune,
                prune_scope=source,
                actor=self.actor,
            )
        except ConflictError as e:
            self.send(
                {
                    "status": 409,
                    "message": "nothing was applied",
                    "errors": [{"message": p} for p in e.problems],
                },
                409,
            )
            return
        self.send({"dryRun": dry_run, "results": [r.as_dict() for r in results]})


class ResourceListHandler(ResourceAPIHandler):
    """GET /hub/api/resources/<kind>: every resource of a kind, with status."""

    async def get(self, kind: str) -> None:
        self.require(READ)
        items = [r.manifest() for r in await asyncio.to_thread(get_store().list, self.kind(kind))]
        self.send({"kind": "List", "items": items})


class ResourceHandler(ResourceAPIHandler):
    """GET / DELETE /hub/api/resources/<kind>/<name>."""

    async def get(self, kind: str, name: str) -> None:
        self.require(READ)
        obj = await asyncio.to_thread(get_store().get, self.kind(kind), name)
        if obj is None:
            raise web.HTTPError(404, f"{kind}/{name} not found")
        self.send(obj.manifest())

    async def delete(self, kind: str, name: str) -> None:
        self.require(WRITE)
        if not await asyncio.to_thread(get_store().delete, self.kind(kind), name, actor=self.actor):
            raise web.HTTPError(404, f"{kind}/{name} not found")
        self.set_status(204)
        self.finish()


class EventsHandler(ResourceAPIHandler):
    """GET /hub/api/resources/<kind>/<name>/events, and /hub/api/events for all."""

    async def get(self, kind: str | None = None, name: str | None = None) -> None:
        self.require(READ)
        try:
            limit = max(1, min(1000, int(self.get_argument("limit", "100"))))
        except ValueError:
            raise web.HTTPError(400, "?limit must be a number") from None
        canonical = self.kind(kind) if kind else None
        events = await asyncio.to_thread(get_store().events, canonical, name, limit=limit)
        self.send({"items": [e.as_dict() for e in events]})


handlers = [
    (r"/api/manifests", ManifestsHandler),
    (r"/api/events", EventsHandler),
    (r"/api/resources/([^/]+)", ResourceListHandler),
    (r"/api/resources/([^/]+)/([^/]+)", ResourceHandler),
    (r"/api/resources/([^/]+)/([^/]+)/events", EventsHandler),
]
