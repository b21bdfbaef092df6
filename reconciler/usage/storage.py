"""The storage survey: each user volume's size from the engine's disk-usage report (one
`GET /system/df` per host), kept one row per volume per day.

Only the platform's own user volumes count: those whose names the platform gives a hub
user's volumes (`naming.user_volume_names`: the template, the user, each configured key),
never a volume found by its labels, which anyone with the engine can set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vocabulary import naming


def user_volumes(
    sizes: Mapping[str, int | None], usernames: Iterable[str], template: str, keys: list[str]
) -> list[tuple[str, str, str, int]]:
    """(volume, user, kind, bytes) of each existing user volume the engine could size."""
    found = []
    for user in sorted(usernames):
        for key, volume in naming.user_volume_names(template, user, keys).items():
            size = sizes.get(volume)
            if size is not None:
                found.append((volume, user, key, int(size)))
    return found
