"""Quotas and storage soft limits as users and operators see them (docs/usage.md#quotas).

- `GET /api/users/<name>/quota`: the user's quota against their use in the window, the
  thresholds crossed, whether a start is refused and when it frees up, their grants, and
  their volumes against the soft limits (the home page shows it), as the Quota watch last
  computed them (`at`; `quota_check.figures`). Readers: as for the usage, whoever may read that
  user in JupyterHub (`read:users!user=<name>`) or an operator (`usage_requests.require_reader`).
- `POST /api/users/<name>/quota-grants {"hours": 20, "kind": "server"}`: a one-off extension
  of the current window's limit (`hubctl quota grant`), recorded as an event on
  `Quota/<name>`; scope `custom:jupyterhub-ds:write:requests` (operators).
- `GET /api/quotas`: every user the Quota watch follows, as it last saw them (`hubctl get quotas`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tornado import web

from reconciler.api.quota import QuotaStatus
from reconciler.quotas import QUOTA_KIND, Grant
from vocabulary.scopes import READ, WRITE_REQUESTS
from vocabulary.settings import get_settings

from .. import quota_check
from .. import usage_requests as requests
from ..backends import get_store
from .base import ResourceAPIHandler

# The Quota watch's stored figures are served while younger than this many of its periods
# (QUOTA_CHECK_SECONDS); older, the reconciler is down or behind and they are computed anew.
FRESH_LOOKS = 3


class QuotaHandler(ResourceAPIHandler):
    async def get(self, name: str) -> None:
        requests.require_reader(name, self.current_user is not None, self.holds)
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {name}")
        groups = [g.name for g in user.groups]
        fresh_for = FRESH_LOOKS * get_settings().quota_check_seconds
        answer = await asyncio.to_thread(quota_check.figures, get_store(), name, groups, datetime.now(UTC), fresh_for)
        self.send(answer)


class QuotaGrantsHandler(ResourceAPIHandler):
    async def post(self, name: str) -> None:
        self.require(WRITE_REQUESTS)
        user = self.find_user(name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {name}")
        hours, kind = requests.grant_request(self.json_object())
        now, store = datetime.now(UTC), get_store()
        grant = Grant(now, kind, hours, self.actor)
        await asyncio.to_thread(quota_check.record_grant, store, name, grant, self.actor)
        groups = [g.name for g in user.groups]
        answer = await asyncio.to_thread(quota_check.view, store, name, groups, now)
        self.send(answer | {"granted": grant.as_dict()}, 201)


def overview() -> list[dict[str, Any]]:
    rows = []
    for name, body in sorted(get_store().observed_all(QUOTA_KIND).items()):
        status = QuotaStatus.load(body)
        if status.quota is None and not status.storage:
            continue
        rows.append({"user": name, **status.dump()})
    return rows


class QuotasHandler(ResourceAPIHandler):
    async def get(self) -> None:
        self.require(READ)
        self.send({"users": await asyncio.to_thread(overview)})


handlers = [
    (r"/api/users/([^/]+)/quota", QuotaHandler),
    (r"/api/users/([^/]+)/quota-grants", QuotaGrantsHandler),
    (r"/api/quotas", QuotasHandler),
]
