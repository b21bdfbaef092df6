"""Renaming a user through the platform: `POST /hub/api/users/<name>/rename` with `{"name":
"<new>"}` (JupyterHub's `admin:users`, as its own `PATCH /hub/api/users/<name>` needs).

JupyterHub's PATCH renames only the hub's record; this records a `UserRename` (owner `panel`)
that the reconciler carries out with everything the platform keeps of the user, and answers
202 with the resource's URL to follow (`hubctl rename-user` waits on it). The quick checks
here (no such user, the name taken, a server running) give an immediate answer; the
controller makes them again for the truth (docs/users.md).
"""

from __future__ import annotations

from tornado import web

from reconciler.api.userrename import SCOPE
from vocabulary.naming import resource_name

from .base import ResourceAPIHandler


class RenameHandler(ResourceAPIHandler):
    async def post(self, user_name: str) -> None:
        self.require(SCOPE)
        new = self.json_object().get("name")
        if not isinstance(new, str) or not new:
            raise web.HTTPError(400, 'the body must be {"name": "<new name>"}')
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"no such user: {user_name}")
        if self.find_user(new) is not None:
            raise web.HTTPError(409, f"the name {new} is taken")
        running = sorted(name or "(default)" for name, spawner in user.spawners.items() if spawner.active)
        if running:
            raise web.HTTPError(409, f"{user_name} has a running server ({', '.join(running)}): stop it first")
        name = resource_name("rename", user_name)
        await self.submit("UserRename", name, {"user": user_name, "newName": new})
        url = f"{self.hub.base_url}api/resources/userrename/{name}"
        self.set_header("Location", url)
        self.send({"name": name, "url": url, "user": user_name, "newName": new}, 202)


handlers = [(r"/api/users/([^/]+)/rename", RenameHandler)]
