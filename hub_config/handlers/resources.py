"""The platform's REST API in the hub: desired-state resources, their status and events,
and Flux's and kubectl's controls over them: suspend, resume, reconcile now, wait.

Scope-checked with the platform's custom scopes; errors are JSON (JupyterHub's APIHandler).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado import web

from reconciler.api import REGISTRY
from reconciler.manifests import APPLY_MAX_DOCUMENTS, ManifestError, TooManyDocuments, parse_manifests
from reconciler.store import ConflictError, ForbiddenError
from reconciler.waiting import FOR_FORMS, parse_for
from vocabulary.durations import parse_duration

from ..backends import get_store
from .base import READ, WAIT_SECONDS, WRITE, ResourceAPIHandler

API_OWNERS = ("api", "cli")  # gitops and panel write through their own paths
# The kinds whose spec has `suspend` (Store.set_suspend refuses the others).
SUSPENDABLE = tuple(k for k, info in REGISTRY.items() if "suspend" in info.spec.model_fields)


class ManifestsHandler(ResourceAPIHandler):
    """POST /hub/api/manifests: apply one or many documents (YAML or JSON), atomically."""

    async def post(self) -> None:
        self.require_any_write()  # and, once parsed, the scope of each document's kind
        owner = self.get_argument("owner", "api")
        if owner not in API_OWNERS:
            raise web.HTTPError(400, f"?owner must be one of {', '.join(API_OWNERS)}")
        dry_run, prune = self.flag("dryRun"), self.flag("prune")
        # Where the documents come from (hubctl sends the -f path): prune is limited to it.
        source = self.get_argument("source", None)
        if prune and not source:
            raise web.HTTPError(400, "?prune=true needs ?source= (only what was applied from there is pruned)")
        try:
            text = self.body_bytes().decode("utf-8")  # at most MAX_BODY_BYTES, else 413
        except UnicodeDecodeError:
            raise web.HTTPError(400, "the body must be UTF-8 text (YAML or JSON)") from None
        try:  # in a worker thread: a large body must not hold the hub's other requests
            resources = await asyncio.to_thread(
                parse_manifests, text, source or "request", max_documents=APPLY_MAX_DOCUMENTS
            )
        except TooManyDocuments as e:
            raise web.HTTPError(413, "%s", str(e)) from None
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
        for r in resources:  # every document's kind (and group) is the requester's to write
            self.require_for(r.kind, r.spec.model_dump(by_alias=True))
        if prune:
            self.require(WRITE)  # pruning may delete any kind
        try:  # what it replaces or prunes needs what DELETE needs (judged in the store's transaction)
            results = await asyncio.to_thread(
                get_store().apply,
                resources,
                owner,
                sources={(r.kind, r.metadata.name): source for r in resources} if source else None,
                dry_run=dry_run,
                prune=prune,
                prune_scope=source,
                actor=self.actor,
                authorize=self.authorizer(),
            )
        except ForbiddenError as e:
            self.refused(403, f"Action is not authorized: {'; '.join(e.problems)}; nothing was applied", e.problems)
            return
        except ConflictError as e:
            self.refused(409, "nothing was applied", e.problems)
            return
        self.send({"dryRun": dry_run, "results": [r.as_dict() for r in results]})

    def refused(self, status: int, message: str, problems: list[str]) -> None:
        self.send({"status": status, "message": message, "errors": [{"message": p} for p in problems]}, status)


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
        self.require_any_write()
        canonical = self.kind(kind)
        obj = await asyncio.to_thread(get_store().get, canonical, name)
        if obj is None:
            raise web.HTTPError(404, f"{kind}/{name} not found")
        self.require_for(canonical, obj.spec)
        if not await asyncio.to_thread(get_store().delete, canonical, name, actor=self.actor):
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


class SuspendHandler(ResourceAPIHandler):
    """POST /hub/api/resources/<kind>/<name>/suspend and .../resume: set spec.suspend."""

    async def post(self, kind: str, name: str, verb: str) -> None:
        canonical = self.kind(kind)
        self.require_any_write()
        if canonical not in SUSPENDABLE:
            raise web.HTTPError(
                400, "%s", f"{canonical} has no spec.suspend; kinds that have it: {', '.join(SUSPENDABLE)}"
            )
        await self.require_for_stored(canonical, name)
        try:
            obj = await asyncio.to_thread(get_store().set_suspend, canonical, name, verb == "suspend", self.actor)
        except ConflictError as e:
            self.send({"status": 409, "message": f"not {verb}d", "errors": [{"message": p} for p in e.problems]}, 409)
            return
        if obj is None:
            raise web.HTTPError(404, f"{kind}/{name} not found")
        self.send(obj.manifest())


class ReconcileHandler(ResourceAPIHandler):
    """POST /hub/api/resources/<kind>/<name>/reconcile[?withSource=true]: reconcile now.

    202 with the request's time; the status's `lastHandledReconcileAt` says when it was handled."""

    async def post(self, kind: str, name: str) -> None:
        await self.require_for_stored(self.kind(kind), name)
        with_source = self.flag("withSource")
        at = await asyncio.to_thread(get_store().request_reconcile, self.kind(kind), name, with_source, self.actor)
        if at is None:
            raise web.HTTPError(404, f"{kind}/{name} not found")
        self.send({"requested": at}, 202)


class WaitHandler(ResourceAPIHandler):
    """GET /hub/api/resources/<kind>/<name>/wait?for=<cond>&timeout=<seconds>: until it holds.

    Waits at most 30 s whatever the timeout (hubctl wait polls instead, for any timeout), and
    answers at once when it can no longer hold (a finished one-shot): `never` says why."""

    async def get(self, kind: str, name: str) -> None:
        self.require(READ)
        canonical = self.kind(kind)
        text = self.get_argument("for", "")
        try:
            condition = parse_for(text)
        except ValueError:
            raise web.HTTPError(400, "%s", f"?for={text!r} is not one of: {FOR_FORMS}") from None
        try:
            timeout = parse_duration(self.get_argument("timeout", str(WAIT_SECONDS)))
        except ValueError:
            raise web.HTTPError(400, "?timeout must be seconds (e.g. 20) or a duration (e.g. 20s)") from None

        def settled(o: Any) -> bool:  # it holds, or it never will (a finished one-shot)
            manifest = o.manifest() if o else None
            return condition.holds(manifest) or condition.never(manifest) is not None

        _, obj = await self.wait_for(canonical, name, settled, timeout)
        manifest = obj.manifest() if obj else None
        answer = {"met": condition.holds(manifest), "resource": manifest}
        never = condition.never(manifest)
        if never:
            answer["never"] = never
        self.send(answer)


handlers = [
    (r"/api/manifests", ManifestsHandler),
    (r"/api/events", EventsHandler),
    (r"/api/resources/([^/]+)", ResourceListHandler),
    # tornado takes the first match; these are anchored, so order is only for the reader
    (r"/api/resources/([^/]+)/([^/]+)/(suspend|resume)", SuspendHandler),
    (r"/api/resources/([^/]+)/([^/]+)/reconcile", ReconcileHandler),
    (r"/api/resources/([^/]+)/([^/]+)/wait", WaitHandler),
    (r"/api/resources/([^/]+)/([^/]+)", ResourceHandler),
    (r"/api/resources/([^/]+)/([^/]+)/events", EventsHandler),
]
