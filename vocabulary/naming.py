"""The one place where names are made and checked: Docker objects, labels, usernames.

The spawner names containers and volumes with these functions and the reconciler finds
them with the same functions, so a volume reset can never miss a volume or hit the wrong
one. The username rule is defined here once: the settings, the resource models and the
authenticator all use it.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import time
from pathlib import Path

from escapism import escape

# Labels on every container and volume the platform creates.
LABEL_PLATFORM = "io.jupyterhub-ds.platform"
LABEL_USER = "io.jupyterhub-ds.user"
LABEL_SERVER = "io.jupyterhub-ds.server"
LABEL_SOCKET = "io.jupyterhub-ds.docker-socket"
LABEL_SPAWN_HASH = "io.jupyterhub-ds.spawn-hash"
LABEL_VOLUME = "io.jupyterhub-ds.volume"
# What a server was started with, so drift can be told later (GroupPolicy, docs/policies.md):
# the effective policy (its hash, and itself as JSON for the difference), the image
# reference asked for and the image id it resolved to.
LABEL_POLICY_HASH = "io.jupyterhub-ds.policy-hash"
LABEL_POLICY = "io.jupyterhub-ds.policy"
LABEL_IMAGE = "io.jupyterhub-ds.image"
LABEL_IMAGE_ID = "io.jupyterhub-ds.image-id"
# What a user made through the Docker request policy (docs/docker-access.md): the policy sets
# both on every object it lets them create, overriding whatever the request carried, and no
# request may set any other label of ours (`LABEL_PREFIX`).
LABEL_DOCKER_OWNER = "io.jupyterhub-ds.docker-owner"
LABEL_DOCKER_PLATFORM = "io.jupyterhub-ds.docker-platform"
LABEL_PREFIX = "io.jupyterhub-ds."
# The built-in watch that surveys running servers for drift: one key.
SERVER_DRIFT_KIND = "ServerDrift"
SERVER_DRIFT_KEY = "servers"

# Swarm backend (docs/swarm.md): the node that holds a user's volumes, recorded in the store
# at their first start (one record per user), and the node labels the platform reads.
PLACEMENT_KIND = "Placement"
NODE_LABEL_SOCKET = "io.jupyterhub-ds.socket"  # the node's engine socket path on that host
LABEL_NODE_TASK = "io.jupyterhub-ds.node-task"  # a one-off task on one node (volumes, backups)

# The ids of the containers and services the platform itself made (servers, helpers, node
# tasks), recorded in the store when they are created: one row per id (`jhds_observed`).
# The engine-wide survey recognises the platform's own by these ids, never by labels,
# which anyone who can reach the engine can copy.
OWNED_KIND = "OwnedObject"
# Docker's limit for a Swarm service name (a DNS label); container names follow the same.
OBJECT_NAME_MAX = 63

PRIVILEGED_GROUP = "docker-privileged"
# The built-in watch that keeps the socket in step with that group: one key per user.
PRIVILEGED_ACCESS_KIND = "PrivilegedAccess"
# The built-in watch of `limited` Docker access (the platform's proxy): one key per user.
DOCKER_ACCESS_KIND = "DockerAccess"
# Where a `limited` lab mounts its user's proxy folder (`docker_proxy_dir`): the folder, not
# the socket file, so a socket made again (a restarted reconciler) shows in a running lab.
LAB_DOCKER_DIR = "/run/jhds-docker"
LAB_DOCKER_HOST = f"unix://{LAB_DOCKER_DIR}/docker.sock"

# A username: lowercase (NativeAuthenticator normalizes), no spaces, no '/', ',', braces or
# control characters, so it is safe in URLs, label values, Docker names and tables.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@+-]*$"
USERNAME_MAX = 255
_USERNAME_RE = re.compile(USERNAME_PATTERN)

# A key of the per-user volume map (`home`, `workspace`, `cache`): part of volume names.
VOLUME_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

# '-' is the escape character, so it is not in the safe set: distinct usernames always
# give distinct names ("a.b" -> "a-2eb", "a-b" -> "a-2db").
_SAFE = set(string.ascii_lowercase + string.digits)


def escape_name(text: str) -> str:
    """Escape a username or server name into [a-z0-9-], injectively."""
    return escape(text, safe=_SAFE, escape_char="-").lower()


def username_problem(value: str) -> str | None:
    """Why `value` is not a valid username, or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > USERNAME_MAX:
        return f"must be at most {USERNAME_MAX} characters (got {len(value)})"
    if value != value.lower():
        return f"usernames are lowercase (the authenticator normalizes them): write {value.lower()!r}, not {value!r}"
    if not _USERNAME_RE.match(value):
        return (
            "is not a valid username: lowercase letters, digits and . _ @ + -, "
            f"starting with a letter or digit (got {value!r})"
        )
    return None


def slug(username: str, limit: int = 30) -> str:
    """A short DNS-1123-safe rendering of a username, for resource names."""
    return escape_name(username).strip("-")[:limit].rstrip("-") or "user"


def resource_name(prefix: str, username: str) -> str:
    """A fresh resource name for a request of `username`, e.g. `restart-alice-1764107000-3fa2`."""
    return f"{prefix}-{slug(username)}-{int(time.time())}-{secrets.token_hex(2)}"


def container_name(prefix: str, username: str, server: str = "") -> str:
    name = f"{prefix}-{escape_name(username)}"
    return f"{name}--{escape_name(server)}" if server else name


def task_name(prefix: str, op: str, user: str | None, request: str, node: str = "") -> str:
    """The name of a helper container or one-off task: unique per platform, operation, user,
    request and node (a hash of them all), readable (prefix, operation, user slug), and
    within Docker's 63 characters however long the parts are."""
    digest = hashlib.sha256(json.dumps([prefix, op, user, request, node]).encode()).hexdigest()[:12]
    head = "-".join(p for p in (_readable(prefix, 24), _readable(op, 10), _readable(user or "", 14)) if p)
    return f"{head}-{digest}"  # at most 24 + 10 + 14 + 3 + 12 = 63


def _readable(text: str, limit: int) -> str:
    """[a-z0-9-], cut: only to help a reader (the hash beside it makes the name unique)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def docker_proxy_dir(root: Path, user: str) -> Path:
    """The folder holding `user`'s proxy socket (`docker.sock`). A socket's path must fit in
    108 bytes: a long name is cut and hashed, marked `-h` (never in an escaped name, where
    `-` is followed by two hex digits), so the folder stays one per user."""
    name = escape_name(user)
    if len(name) > 40:
        name = f"{name[:24]}-h{hashlib.sha256(user.encode()).hexdigest()[:12]}"
    return root / name


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
