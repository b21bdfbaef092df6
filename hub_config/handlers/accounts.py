"""Rosters' one-time passwords and deleting a person with care (docs/roster.md), for hub
admins (`admin:users`):

- `POST /api/rosters/<name>/passwords`: the one-time passwords of the roster's new accounts
  not read yet, this once (after it only their hashes are kept): JSON
  `{"roster", "passwords": [{"user", "password"}]}`, or a CSV download (`?format=csv`).
  A POST: reading them consumes them.
- `DELETE /api/users/<name>/account?removal=keep|backup|delete`: records a UserRemoval (the
  reconciler signs them out, stops their servers, refuses their login, and keeps, backs up
  then removes, or removes their volumes); 202 with its name and the URL to follow.
"""

from __future__ import annotations

import asyncio
import csv
import io

from tornado import web

from vocabulary import scopes
from vocabulary.naming import resource_name

from ..accounts import accounts
from .base import ResourceAPIHandler


def passwords_csv(found: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", "password"])
    writer.writerows(found)
    return out.getvalue()


class RosterPasswordsHandler(ResourceAPIHandler):
    async def post(self, roster: str) -> None:
        self.require(scopes.ADMIN_USERS)
        found = await asyncio.to_thread(accounts().read_passwords, roster)
        self.log.info("%s read %d one-time passwords of roster %s", self.actor, len(found), roster)
        if self.get_query_argument("format", "json") == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{roster}-passwords.csv"')
            self.set_header("Cache-Control", "no-store")
            self.finish(passwords_csv(found))
            return
        self.set_header("Cache-Control", "no-store")
        self.send({"roster": roster, "passwords": [{"user": u, "password": p} for u, p in found]})


class UserAccountHandler(ResourceAPIHandler):
    async def delete(self, name: str) -> None:
        self.require(scopes.ADMIN_USERS)
        removal = self.get_query_argument("removal", "keep")
        if removal not in ("keep", "backup", "delete"):
            raise web.HTTPError(400, "removal must be keep, backup or delete (got %r)", removal)
        rname = resource_name("remove", name)
        await self.submit("UserRemoval", rname, {"user": name, "removal": removal})
        self.send({"name": rname, "url": f"{self.hub.base_url}api/resources/UserRemoval/{rname}"}, 202)


handlers = [
    (r"/api/rosters/([a-z0-9][-a-z0-9]*)/passwords", RosterPasswordsHandler),
    (r"/api/users/([^/]+)/account", UserAccountHandler),
]
