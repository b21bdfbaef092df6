"""The hub's side of Rosters and of deleting with care (docs/roster.md): the platform's
account records, and what JupyterHub's own admin delete leaves behind, said in an event."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from jupyterhub.utils import url_path_join

from reconciler.accounts import REMOVED, REMOVING, Accounts
from reconciler.engines import present_volumes
from vocabulary.settings import get_settings

from . import refusals
from .backends import get_engine, get_store
from .refusals import SpawnRefused

# The events of a delete outside the platform's removals are written under this kind.
USER_KIND = "User"
CHANGE_PASSWORD = "change-password"  # NativeAuthenticator's page, where a one-time password is replaced


@lru_cache(maxsize=1)
def accounts() -> Accounts:
    return Accounts(get_store())


async def hub_deleted(name: str) -> None:
    """JupyterHub deletes `name`: unless the platform is removing them (its own step), the
    name is refused from now on (a new sign-up would get the kept volumes) and an event says
    which volumes are kept (JupyterHub's delete never touches them)."""
    if await asyncio.to_thread(accounts().state, name) == REMOVING:
        return
    await asyncio.to_thread(accounts().set_state, [name], REMOVED)
    present = sorted((await present_volumes(get_engine(), get_settings(), name)).values())
    kept = f"volumes kept: {', '.join(present)}" if present else "no volumes"
    message = f"{name} deleted through JupyterHub's own admin (not the platform's removal): {kept}; sign-up refused"
    await asyncio.to_thread(get_store().add_event, USER_KIND, name, "VolumesKept", message, "Warning", "hub-admin")


async def refuse_while_one_time(spawner: Any) -> None:
    """A person whose password is still the one-time one a Roster gave starts no server until
    they set their own: whoever else read that password (a mailed list, a shared screen) gets
    a login cookie at most, not a running lab with the person's files."""
    name = spawner.user.name
    if await asyncio.to_thread(accounts().must_change, name):
        where = url_path_join(spawner.hub.base_url, CHANGE_PASSWORD)
        raise SpawnRefused(
            f"Your password is still the one-time password you were given: set your own at {where} first.",
            reason=refusals.ONE_TIME_PASSWORD,
            status_code=403,
        )
