"""The usage report over REST (docs/usage.md#reports), the same query `hubctl usage` prints:

- `GET /api/usage?by=user|group&since=30d&until=DATE&user=NAME`: operators (the platform's
  read scope, which every operator role holds);
- `GET /api/users/<name>/usage?since=&until=`: the user themself, or an operator or a hub
  admin (`admin:users`); one row, zeros when nothing was recorded.

The query runs in a worker thread (it reads the roll-ups: a 30-day report over 1,000 users
is well under a second, benchmarks/usage.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from tornado import web

from reconciler.usage.report import UsageRow, report_json
from reconciler.usage.window import parse_window

from ..backends import get_usage
from .base import READ, ResourceAPIHandler

ADMIN_SCOPE = "admin:users"


class UsageReportHandler(ResourceAPIHandler):
    def window(self) -> tuple[datetime, datetime]:
        try:
            return parse_window(self.get_argument("since", None), self.get_argument("until", None))
        except ValueError as e:
            raise web.HTTPError(400, "%s", str(e)) from None


class UsageAPIHandler(UsageReportHandler):
    """GET /hub/api/usage"""

    async def get(self) -> None:
        self.require(READ)
        by = self.get_argument("by", "user")
        if by not in ("user", "group"):
            raise web.HTTPError(400, "by must be user or group")
        since, until = self.window()
        user = self.get_argument("user", None)
        users = [user] if user else None
        rows = await asyncio.to_thread(get_usage().report, by=by, since=since, until=until, users=users)
        self.send(report_json(rows, by=by, since=since, until=until))


class UserUsageAPIHandler(UsageReportHandler):
    """GET /hub/api/users/<name>/usage"""

    async def get(self, name: str) -> None:
        me = self.current_user
        if me is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        itself = getattr(me, "kind", "user") == "user" and me.name == name
        if not (itself or READ in self.expanded_scopes or ADMIN_SCOPE in self.expanded_scopes):
            raise web.HTTPError(403, f"Not allowed to read the usage of {name}")
        since, until = self.window()
        rows = await asyncio.to_thread(get_usage().report, by="user", since=since, until=until, users=[name])
        if not rows:
            user = self.find_user(name)
            groups = sorted(g.name for g in user.groups) if user is not None else []
            rows = [UsageRow(name, groups, 0.0, 0.0, 0.0, 0.0, 0)]
        self.send(report_json(rows, by="user", since=since, until=until))


handlers = [
    (r"/api/usage", UsageAPIHandler),
    (r"/api/users/([^/]+)/usage", UserUsageAPIHandler),
]
