"""The one place where Docker names and labels of user objects are made.

The spawner names containers and volumes with these functions and the reconciler finds
them with the same functions, so a volume reset can never miss a volume or hit the wrong
one. A leaf module: it imports nothing from the project.
"""

from __future__ import annotations

import hashlib
import json
import string

from escapism import escape

# Labels on every container and volume the platform creates.
LABEL_PLATFORM = "io.jupyterhub-ds.platform"
LABEL_USER = "io.jupyterhub-ds.user"
LABEL_SERVER = "io.jupyterhub-ds.server"
LABEL_SOCKET = "io.jupyterhub-ds.docker-socket"
LABEL_SPAWN_HASH = "io.jupyterhub-ds.spawn-hash"
LABEL_VOLUME = "io.jupyterhub-ds.volume"

PRIVILEGED_GROUP = "docker-privileged"

# '-' is the escape character, so it is not in the safe set: distinct usernames always
# give distinct names ("a.b" -> "a-2eb", "a-b" -> "a-2db").
_SAFE = set(string.ascii_lowercase + string.digits)


def escape_name(text: str) -> str:
    """Escape a username or server name into [a-z0-9-], injectively."""
    return escape(text, safe=_SAFE, escape_char="-").lower()


def container_name(prefix: str, username: str, server: str = "") -> str:
    name = f"{prefix}-{escape_name(username)}"
    return f"{name}--{escape_name(server)}" if server else name


def volume_name(template: str, username: str, key: str) -> str:
    """Docker volume of one per-user volume key ('home', 'workspace', ...)."""
    return template.format(username=escape_name(username), volume=key)


def user_volume_names(template: str, username: str, keys: list[str]) -> dict[str, str]:
    """{key: volume name} for every configured per-user volume of a user."""
    return {key: volume_name(template, username, key) for key in keys}


def object_labels(platform: str, username: str, server: str | None = None) -> dict[str, str]:
    labels = {LABEL_PLATFORM: platform, LABEL_USER: username}
    if server is not None:
        labels[LABEL_SERVER] = server
    return labels


def spawn_hash(config: dict) -> str:
    """Stable short hash of the parts of a spawn that matter (key order does not)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
