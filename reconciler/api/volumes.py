"""What the volume kinds (VolumeReset, VolumeBackup, VolumeRestore) share: the volume list's
rule, the helpers' deadline, and the checks both the hub (for a quick, friendly answer) and a
controller (for the truth) make: one definition each, so the two can never disagree."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vocabulary.settings import Settings

from .fields import unique

# A helper past this (from the request's creation) is killed and the request ends Failed,
# DeadlineExceeded: long enough for hundreds of GB at the measured 30 MB/s.
DEADLINE_SECONDS = 6 * 3600


def volume_list(value: list[str]) -> list[str]:
    """A spec's list of volume keys: at least one, none twice."""
    if not value:
        raise ValueError("must list at least one volume key, e.g. [home]")
    return unique(value)


def unknown_volume_keys(keys: list[str], settings: Settings) -> str | None:
    """Why `keys` are not all resettable per-user volume keys, or None if they are."""
    unknown = [key for key in keys if key not in settings.user_volumes]
    if not unknown:
        return None
    return f"not a per-user volume: {', '.join(unknown)} (resettable: {', '.join(settings.user_volumes)})"


def busy_servers(servers: Mapping[str, Mapping[str, Any]], reset_created: datetime | None = None) -> list[str]:
    """The servers (as the hub's REST API describes them) that forbid a volume reset.

    Every listed server counts, except a spawn requested after the reset was recorded: the
    spawner waits for the reset to finish, so that one is no reason to refuse."""
    return sorted(name or "(default)" for name, server in servers.items() if not _waits_for(server, reset_created))


def _waits_for(server: Mapping[str, Any], reset_created: datetime | None) -> bool:
    started = server.get("started")
    if reset_created is None or server.get("pending") != "spawn" or server.get("ready") or not started:
        return False
    return datetime.fromisoformat(str(started).replace("Z", "+00:00")) >= reset_created
