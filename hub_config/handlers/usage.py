"""The usage report over REST (docs/usage.md#reports), the same query `hubctl usage` prints:

- `GET /api/usage?by=user|group&since=30d&until=DATE&user=NAME`: operators (the platform's
  read scope, which every operator role holds);
- `GET /api/users/<name>/usage?since=&until=`: whoever may read that user in JupyterHub
  (`read:users!user=<name>`: the user themself, a hub admin) or an operator
  (`usage_requests.require_reader`); one row, zeros when nothing was recorded.

The query runs in a worker thread (it reads the roll-ups: a 30-day report over 1,000 users
is well under a second, benchmarks/usage.py).
"""

from __future__ import annotations

import asyncio

from reconciler.usage.report import UsageRow, report_json

from .. import usage_requests as requests
from ..backends import get_usage
from .base import READ, ResourceAPIHandler


class UsageAPIHandler(ResourceAPIHandler):
    """GET /hub/api/usage"""

    async def get(self) -> None:
        self.require(READ)
        by = requests.grouping(self.get_argument("by", "user"))
        since, until = requests.window(self.get_argument("since", None), self.get_argument("until", None))
        user = self.get_argument("user", None)
        users = [user] if user else None
        rows = await asyncio.to_thread(get_usage().report, by=by, since=since, until=until, users=users)
        self.send(report_json(rows, by=by, since=since, until=until))


class UserUsageAPIHandler(ResourceAPIHandler):
    """GET /hub/api/users/<name>/usage"""

    async def get(self, name: str) -> None:
        requests.require_reader(name, self.current_user is not None, self.holds)
        since, until = requests.window(self.get_argument("since", None), self.get_argument("until", None))
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
