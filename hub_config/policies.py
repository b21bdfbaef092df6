"""The hub's side of GroupPolicy: a user's effective policy at spawn, and the image form."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from reconciler.effective import Effective, NamedGroupPolicy, allowed_images, applying, combine
from reconciler.in_force import group_policies
from reconciler.server_caps import GroupCap, group_caps

from .backends import get_store


def effective_for_groups(groups: list[str]) -> Effective:
    """The effective policy of a member of `groups`, from the store (one query)."""
    return combine(groups, group_policies(get_store()))


def explained_for_groups(groups: list[str]) -> tuple[list[NamedGroupPolicy], Effective]:
    """The policies that apply to a member of `groups` (highest priority first) and what
    they combine to, from one read of the store."""
    in_force = group_policies(get_store())
    return applying(groups, in_force), combine(groups, in_force)


def caps_for_groups(groups: list[str]) -> list[GroupCap]:
    """The `maxActiveServers` caps on a member of `groups`, from the store (one query)."""
    return group_caps(groups, group_policies(get_store()))


async def effective_for(user: Any) -> Effective:
    groups = [g.name for g in user.groups]
    return await asyncio.to_thread(effective_for_groups, groups)


async def image_form(spawner: Any) -> str:
    """The spawn form: a choice among the images the user may start, only when there is a
    choice (one image: no form, the server starts at once, as without policies)."""
    eff = await effective_for(spawner.user)
    images = allowed_images(eff, spawner.settings.notebook_image)
    if len(images) <= 1:
        return ""
    options = "".join(
        f'<option value="{html.escape(i)}"{" selected" if n == 0 else ""}>{html.escape(i)}</option>'
        for n, i in enumerate(images)
    )
    return (
        '<label for="image-select">Image (allowed by your groups\' policies)</label>'
        f'<select class="form-control" id="image-select" name="image" required autofocus>{options}</select>'
    )
