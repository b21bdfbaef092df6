"""The platform's custom JupyterHub scopes and built-in groups, by name.

JupyterHub's convention for a project's own scopes is `custom:<project>:<action>:<resource>`;
the hub declares them (`hub_config`), handlers require them, `hubctl` documents them.
"""

from __future__ import annotations

READ = "custom:jupyterhub-ds:read:resources"
WRITE = "custom:jupyterhub-ds:write:resources"

DEFINITIONS = {
    READ: {"description": "Read the platform's desired-state resources, their status and events."},
    WRITE: {
        "description": "Create, change and delete the platform's desired-state resources.",
        "subscopes": [READ],
    },
}

# Users who operate the platform: the configured admin, and members of this group.
OPERATORS_GROUP = "platform-operators"
