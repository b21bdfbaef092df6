"""A spawn the platform's policy refuses (image not allowed, a user's own volume shared, GPU
on Swarm, the user's node down, a volume reset under way, a group's maxActiveServers full, a quota used up, a
one-time password not yet replaced):
JupyterHub 6's `SpawnException` with a `reason`, so the hub counts it as `status=failure, reason=<reason>` in
`jupyterhub_server_spawn_duration_seconds` and logs one line without a traceback. On 5.x,
which lacks it, the fallback of JupyterHub's upgrade notes: an HTTP 4xx error carrying the
message, likewise logged without a traceback.

Either way the user reads the message itself ("Spawn failed: <message>"), as before.
"""

from __future__ import annotations

from tornado.web import HTTPError

try:
    from jupyterhub.spawner import SpawnException as _HubRefusal
except ImportError:  # JupyterHub 5.x

    class _HubRefusal(HTTPError):  # type: ignore[no-redef]
        def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
            super().__init__(status_code, message.replace("%", "%%"), reason=reason)


HUB_HAS_SPAWN_EXCEPTION = _HubRefusal.__module__ == "jupyterhub.spawner"

# The `reason` labels (short, stable: they are metric label values).
IMAGE_NOT_ALLOWED = "image-not-allowed"
VOLUME_NOT_SHAREABLE = "volume-not-shareable"
GPU_UNSUPPORTED = "gpu-unsupported"
NODE_DOWN = "node-down"
VOLUME_RESET_PENDING = "volume-reset-pending"
GROUP_SERVER_LIMIT = "group-server-limit"  # GroupPolicy maxActiveServers
QUOTA_USED_UP = "quota-used-up"  # GroupPolicy quota at 100 %
ONE_TIME_PASSWORD = "one-time-password"  # a Roster's one-time password not yet replaced


class SpawnRefused(_HubRefusal):
    """The platform's policy refuses this start; `message` is for the user."""

    def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
        super().__init__(message, reason=reason, status_code=status_code)
        # What the spawn page shows (JupyterHub reads it on 5.x and 6.x), not "400 ...(reason=...)".
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message
