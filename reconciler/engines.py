"""The engine client for the configured backend (Docker, or Swarm with its placements kept
in the store), recording in the store the ids of what it creates. The reconciler's context
and the hub's handles both build it here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vocabulary import naming
from vocabulary.settings import Settings

from .clients.docker import Engine
from .clients.swarm import Placements, SwarmEngine
from .store import Store


def owned_recorder(store: Store) -> Callable[[str, dict[str, Any]], None]:
    """Writes down an object the platform created (id -> what it is), for the survey."""

    def record(object_id: str, body: dict[str, Any]) -> None:
        store.write_observed(naming.OWNED_KIND, object_id, {**body, "recorded": time.time()})

    return record


async def present_volumes(engine: Engine, settings: Settings, user: str) -> dict[str, str]:
    """{key: volume name} of the user's per-user volumes that exist (by the platform's naming)."""
    names = naming.user_volume_names(settings.volume_name_template, user, list(settings.user_volumes))
    existing = await engine.existing_volumes(list(names.values()))
    return {key: name for key, name in names.items() if name in existing}


def make_engine(settings: Settings, store: Store) -> Engine:
    """The engine for the backend (on Swarm, with the placements kept in the store); it
    records in the store the ids of the helpers and tasks it creates."""
    if not settings.swarm:
        return Engine(recorder=owned_recorder(store))
    placements = Placements(
        read_all=lambda: store.observed_all(naming.PLACEMENT_KIND),
        write=lambda user, body: store.write_observed(naming.PLACEMENT_KIND, user, body),
    )
    return SwarmEngine(
        placements,
        settings.backup_helper_image,
        settings.docker_socket,
        platform=settings.platform_id,
        recorder=owned_recorder(store),
    )
