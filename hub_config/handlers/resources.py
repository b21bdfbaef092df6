"""The platform's REST API in the hub: desired-state resources, their status and events.

Scope-checked with the platform's custom scopes; errors are JSON (JupyterHub's APIHandler).
"""

from __future__ import annotations

import asyncio

from tornado import web

from reconciler.manifests import ManifestError, parse_manifests
from reconciler.store import ConflictError

from ..backends import get_store
from .base import READ, WRITE, ResourceAPIHandler

API_OWNERS = ("api", "cli")  # gitops and panel write through their own paths


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
