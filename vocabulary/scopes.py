"""The platform's custom JupyterHub scopes and built-in groups, by name.

JupyterHub's convention for a project's own scopes is `custom:<project>:<action>:<resource>`;
the hub declares them (`hub_config`), handlers require them, `hubctl` documents them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

READ = "custom:jupyterhub-ds:read:resources"
# One write scope per kind of power: sending notices is not managing groups.
WRITE_BROADCASTS = "custom:jupyterhub-ds:write:broadcasts"
WRITE_REQUESTS = "custom:jupyterhub-ds:write:requests"
WRITE_GROUPS = "custom:jupyterhub-ds:write:groupmemberships"
WRITE_POLICIES = "custom:jupyterhub-ds:write:policies"
WRITE = "custom:jupyterhub-ds:write:resources"  # all of the above
# Which of them writes a kind: its `KindInfo.scope` (reconciler/api/<kind>.py).
# JupyterHub's own scope of hub admins: also needed to manage a protected group.
PROTECTED_GROUPS_SCOPE = "admin:groups"
# JupyterHub's own scope of creating and deleting users: a Roster's (it makes and removes
# accounts, volumes included), and the reconciler's that carries it out.
ADMIN_USERS = "admin:users"
# A VolumeRestore of another user's archives (`sourceUser` not the user restored into)
# hands one user's files to another: for hub admins only, not for operators.
CROSS_USER_RESTORE_SCOPE = ADMIN_USERS

DEFINITIONS = {
    READ: {"description": "Read the platform's desired-state resources, their status and events."},
    WRITE_BROADCASTS: {"description": "Send and schedule broadcast notifications.", "subscopes": [READ]},
    WRITE_REQUESTS: {
        "description": "Restart and stop servers; reset, back up and restore volumes.",
        "subscopes": [READ],
    },
    WRITE_GROUPS: {
        "description": "Manage group memberships (not the protected groups: those need admin:groups).",
        "subscopes": [READ],
    },
    WRITE_POLICIES: {
        "description": "Write standing policies over servers (idle culling, group policies).",
        "subscopes": [READ],
    },
    WRITE: {
        "description": "Write every kind of the platform's resources.",
        "subscopes": [WRITE_BROADCASTS, WRITE_REQUESTS, WRITE_GROUPS, WRITE_POLICIES, READ],
    },
}

# Users who operate the platform: the configured admin, and members of this group.
OPERATORS_GROUP = "platform-operators"
# Groups that grant power (the Docker socket is root on the host; operators hold the
# platform's scopes): managed by hub admins only, and never granted to a name that does
# not exist yet.
PROTECTED_GROUPS = frozenset({"docker-privileged", OPERATORS_GROUP})
# The protected groups a GroupPolicy may give the Docker socket (`dockerAccess: privileged`,
# or its synonym `dockerSocket: true`): the
# one whose membership the privileged-access watch enforces (it takes the socket from
# anyone outside it), so a policy can never hand it to anyone the watch would not allow.
SOCKET_GROUPS = frozenset({"docker-privileged"})


def admin_reason(kind: str, spec: Mapping[str, Any] | None) -> str | None:
    """Why writing, replacing or deleting (prune included) a resource of `kind` with `spec`
    needs PROTECTED_GROUPS_SCOPE, or None. The one rule the API, hubctl and the panel use.

    A GroupPolicy naming a socket group decides what runs in a container holding the
    Docker socket (images, environment, volumes). Policies naming only other groups never
    do: for a server that gets the socket the spawner takes those fields from socket-group
    policies alone (`reconciler.effective.combine`), so whoever writes policies with
    WRITE_POLICIES reaches no container that holds the socket, whatever its priority or
    groups, and whatever the memberships are when the server starts."""
    spec = spec or {}
    if kind == "GroupMembership" and spec.get("group") in PROTECTED_GROUPS:
        return f"Only hub admins manage the group {spec['group']} (needs {PROTECTED_GROUPS_SCOPE})"
    if kind == "Roster":
        users = spec.get("users")
        users = users if isinstance(users, list) else []
        named = {g for u in users if isinstance(u, Mapping) for g in u.get("groups") or []}
        if protected := sorted(PROTECTED_GROUPS.intersection(named)):
            return f"Only hub admins manage the group {', '.join(protected)} (needs {PROTECTED_GROUPS_SCOPE})"
    if kind != "GroupPolicy":
        return None
    groups = spec.get("groups")
    named = sorted(SOCKET_GROUPS.intersection(groups if isinstance(groups, list) else []))
    if named:
        return (
            f"Only hub admins write a GroupPolicy of {', '.join(named)} (needs {PROTECTED_GROUPS_SCOPE}): "
            "it decides what runs in containers that hold the Docker socket (root on the host)"
        )
    # `limited` (the platform's proxy) is WRITE_POLICIES' to give; `privileged` (the engine
    # socket) only the admins': said here too, whatever groups the spec names.
    if spec.get("dockerAccess") == "privileged" or spec.get("dockerSocket") is True:
        return (
            f"Only hub admins give dockerAccess: privileged (needs {PROTECTED_GROUPS_SCOPE}): "
            "the raw Docker socket is root on the host; dockerAccess: limited needs only "
            f"{WRITE_POLICIES}"
        )
    return None
