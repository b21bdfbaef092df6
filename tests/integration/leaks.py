"""What a test module leaves on the shared session hub (`hub` fixture): standing resources,
groups and their members, running servers. A module that leaves something changes what the
modules after it see, and with lanes that order is not fixed (two leaks found so far were
tests assuming alphabetical order). Reported as a `LeftOnTheSessionHub` warning in the run's
summary, naming the module and what it left; then put back as it was, so the modules after
it start from what they would have met in any order: the standing resources and groups it
added are deleted, members it added to older groups taken out, servers it left stopped."""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import quote

from reconciler.api import REGISTRY
from tests.harness import Hub

STANDING = sorted(kind for kind, info in REGISTRY.items() if not info.one_shot)


class LeftOnTheSessionHub(UserWarning):
    pass


def snapshot(hub: Hub) -> dict[str, Any]:
    """The session hub's state a later module could trip over, as comparable sets."""
    resources = set()
    for kind in STANDING:
        r = hub.api("GET", f"resources/{kind}")
        if r.status_code == 200:
            resources |= {(kind, item["metadata"]["name"]) for item in r.json()["items"]}
    groups = {(g["name"], u) for g in hub.api("GET", "groups").json() for u in g.get("users") or [""]}
    active = hub.api("GET", "users", params={"state": "active"}).json()
    servers = {(u["name"], s) for u in active for s in (u.get("servers") or {})}
    files = {(p.name,) for p in hub.manifests_dir.glob("*")} if hub.manifests_dir.is_dir() else set()
    return {"resources": resources, "group members": groups, "running servers": servers, "manifest files": files}


def report(module: str, before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """What `module` added, or None."""
    added = {what: sorted(after[what] - before[what]) for what in before}
    parts = [
        f"{what}: {', '.join('/'.join(x for x in item if x) for item in items)}"
        for what, items in added.items()
        if items
    ]
    return f"{module} left on the session hub: {'; '.join(parts)}" if parts else None


def restore(hub: Hub, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Undo what a module left (best effort: each call's answer is not checked). Its manifest
    files go first, or GitOps would put their resources back."""
    for (name,) in after["manifest files"] - before["manifest files"]:
        (hub.manifests_dir / name).unlink(missing_ok=True)
    for kind, name in after["resources"] - before["resources"]:
        hub.api("DELETE", f"resources/{kind}/{quote(name)}")
    old_groups = {group for group, _ in before["group members"]}
    for group in {group for group, _ in after["group members"]} - old_groups:
        hub.api("DELETE", f"groups/{quote(group)}")
    for group, user in after["group members"] - before["group members"]:
        if group in old_groups and user:
            hub.api("DELETE", f"groups/{quote(group)}/users", json={"users": [user]})
    for user, server in after["running servers"] - before["running servers"]:
        hub.api("DELETE", f"users/{quote(user)}/servers/{quote(server)}" if server else f"users/{quote(user)}/server")


def check(module: str, hub: Hub, before: dict[str, Any]) -> None:
    try:
        after = snapshot(hub)
        found = report(module, before, after)
        if found:
            restore(hub, before, after)
    except Exception as e:  # the hub a module stopped on purpose: nothing to compare
        found = None
        warnings.warn(
            f"{module}: the session hub could not be surveyed after it: {e}", LeftOnTheSessionHub, stacklevel=1
        )
    if found:
        warnings.warn(found, LeftOnTheSessionHub, stacklevel=1)
