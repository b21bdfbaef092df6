"""UserRemoval (one-shot): one person removed with care, by the steps every removal shares
(`user_removal`); the status says what was done, each step is an event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from .. import user_removal
from ..accounts import Accounts
from ..api.userremoval import UserRemovalSpec, UserRemovalStatus
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "UserRemoval"
WAIT = 5.0  # seconds between looks at the backup


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = UserRemovalSpec.model_validate(obj.spec)
    status = UserRemovalStatus.load(obj.status)
    status.phase, status.observed_generation, status.user = "Running", obj.generation, spec.user

    async def record(step: str, backup: str | None) -> None:
        status.step, status.backup = step, backup  # type: ignore[assignment]
        await ctx.progress(KIND, obj.name, status)

    accounts = Accounts(ctx.store)
    if status.step is None:
        if roster := await asyncio.to_thread(accounts.listed_by, spec.user):
            # The roster would make them again: its list is where they leave.
            message = f"{spec.user} is listed by roster/{roster}: remove them from its list"
            raise PermanentError(message, "ListedByRoster")
        if await ctx.hub.get_user(spec.user) is None:  # (no record of a name nobody had)
            raise PermanentError(f"no such user: {spec.user}", "NoSuchUser")
    removal = user_removal.Removal(KIND, obj.name, spec.user, spec.removal)
    done: list[str] = []
    try:
        await user_removal.advance(ctx, accounts, removal, status.step, status.backup, record, done)
    except user_removal.BackingUp:
        return Result(status, requeue_after=WAIT)
    finally:
        status.did = [*status.did, *done]
    now = datetime.now(UTC)
    status.phase, status.finished_at = "Succeeded", now
    status.set_condition("Ready", "True", "Removed", "; ".join(status.did), now)
    return Result(status)
