"""What every platform handler shares: scope checks, JSON bodies and errors, recording a
resource, and waiting (bounded) for the reconciler's answer.

The hub only records intent; the reconciler does the work. Store calls run in a worker
thread: a write may wait for SQLite's lock, and the hub's event loop must not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from reconciler.api import REGISTRY, kind_from_name
from reconciler.api.common import TERMINAL_PHASES
from reconciler.manifests import ManifestError, from_data
from reconciler.store import StoredResource
from vocabulary import scopes
from vocabulary.api import API_VERSION
from vocabulary.scopes import READ, WRITE

from ..backends import get_store

__all__ = ["READ", "WRITE", "ResourceAPIHandler"]
# The longest a request waits for the reconciler (the seed-compatible endpoints); past it
# the answer is 202 with the resource to follow.
WAIT_SECONDS = 30.0
WAIT_POLL = 0.25
# The largest request body read (a manifest apply, a JSON body); a larger one is a 413
# before anything is parsed.
MAX_BODY_BYTES = 1_048_576


class ResourceAPIHandler(APIHandler):
    def user_whose_servers(self, name: str, what: str) -> Any:
        """`name`'s hub user, if the requester may manage their servers (JupyterHub's
        `servers!user=`, which a user has for themself); 403 before 404, so nobody learns
        who exists."""
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if not has_scope(f"servers!user={name}", self.parsed_scopes, db=self.db):
            raise web.HTTPError(403, f"Not allowed to {what} of {name}")
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {name}")
        return user

    def holds(self, scope: str) -> bool:
        """Whether the request's token has `scope` (a filtered one, `read:users!user=ann`,
        also through a group filter of the token's)."""
        return has_scope(scope, self.parsed_scopes, db=self.db)

    def require(self, scope: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if scope not in self.expanded_scopes:
            raise web.HTTPError(403, f"Action is not authorized: needs the scope {scope}")

    def require_for(self, kind: str, spec: dict[str, Any] | None = None) -> None:
        """The scope to write `kind`; a protected group (the Docker socket, the operators)
        and a policy of a socket group are for hub admins only, whichever way the request
        comes (API, hubctl, panel): `scopes.admin_reason` says which."""
        self.require(REGISTRY[kind].scope)
        if problem := self.admin_refusal(kind, spec):
            raise web.HTTPError(403, "%s", problem)
        self.require_restore_source(kind, spec or {})

    def admin_refusal(self, kind: str, spec: dict[str, Any] | None) -> str | None:
        """Why this requester may not write, replace or delete that resource, or None."""
        if scopes.PROTECTED_GROUPS_SCOPE in self.expanded_scopes:
            return None
        return scopes.admin_reason(kind, spec)

    def authorizer(self) -> Callable[[str, str, dict[str, Any]], str | None]:
        """`admin_refusal` for the store, which judges in its transaction what an apply would
        replace or prune (the scopes are read here, on the hub's thread)."""
        admin = scopes.PROTECTED_GROUPS_SCOPE in self.expanded_scopes
        return lambda kind, name, spec: None if admin else scopes.admin_reason(kind, spec)

    def require_restore_source(self, kind: str, spec: dict[str, Any]) -> None:
        """Another user's archives into a user's volumes: hub admins only."""
        source = spec.get("sourceUser")
        cross = kind == "VolumeRestore" and source not in (None, spec.get("user"))
        if cross and scopes.CROSS_USER_RESTORE_SCOPE not in self.expanded_scopes:
            needs = scopes.CROSS_USER_RESTORE_SCOPE
            raise web.HTTPError(403, f"Only hub admins restore another user's backup ({source}; needs {needs})")

    async def require_for_stored(self, kind: str, name: str) -> None:
        """`require_for` a stored resource (its group decides); 404 if there is none."""
        self.require_any_write()
        obj = await asyncio.to_thread(get_store().get, kind, name)
        if obj is None:
            raise web.HTTPError(404, f"{kind.lower()}/{name} not found")
        self.require_for(kind, obj.spec)

    def require_any_write(self) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if not {info.scope for info in REGISTRY.values()} & set(self.expanded_scopes):
            raise web.HTTPError(403, f"Action is not authorized: needs a write scope such as {scopes.WRITE}")

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

    def body_bytes(self) -> bytes:
        """The request body, or a 413 naming the limit when it is larger."""
        body = self.request.body or b""
        if len(body) > MAX_BODY_BYTES:
            raise web.HTTPError(
                413, "request body too large: %d bytes; the limit is %d bytes (1 MiB)", len(body), MAX_BODY_BYTES
            )
        return body

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying what is wrong (413 if too large)."""
        try:
            body = json.loads(self.body_bytes() or b"{}")
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
        """Record one resource for the reconciler (owner `panel`). The spec is what the request
        gave, validated as a manifest is; an invalid one is a 400 naming its fields."""
        doc = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": name, "labels": {"requested-by": self.current_user.name}},
            "spec": spec,
        }
        try:
            resource = from_data(doc, self.request.path, relative_to=("spec",))
        except ManifestError as e:
            raise web.HTTPError(400, "%s", "; ".join(f"{i.path}: {i.message}" for i in e.issues)) from None
        await asyncio.to_thread(get_store().apply, [resource], "panel", actor=self.actor)

    async def wait_for(
        self, kind: str, name: str, done: Callable[[StoredResource | None], bool], timeout: float = WAIT_SECONDS
    ) -> tuple[bool, StoredResource | None]:
        """Read the resource every WAIT_POLL s until `done` holds or `timeout` (at most
        WAIT_SECONDS) passes; whether it held, and the resource as it was last read. The
        store is read in a worker thread and the wait is a sleep: no thread is held."""
        store, deadline = get_store(), time.monotonic() + min(timeout, WAIT_SECONDS)
        while True:
            obj = await asyncio.to_thread(store.get, kind, name)
            if done(obj):
                return True, obj
            if time.monotonic() >= deadline:
                return False, obj
            await asyncio.sleep(WAIT_POLL)

    async def wait_until_finished(self, kind: str, name: str) -> StoredResource | None:
        """The resource once the reconciler has finished it, or as it is after WAIT_SECONDS."""
        _, obj = await self.wait_for(kind, name, lambda o: o is None or o.status.get("phase") in TERMINAL_PHASES)
        return obj
