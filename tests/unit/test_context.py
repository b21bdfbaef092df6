"""The context's reads of the hub: the caller says whether a resync pass's snapshot will do
(`cached=`); nothing switches it behind the caller's back."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.context import Context
from vocabulary.settings import load_settings


class FakeHub:
    """Groups and users; every request counted."""

    def __init__(self) -> None:
        self.groups = {"g": {"name": "g", "users": ["ann"]}}
        self.users = {"ann", "bob"}
        self.requests: list[str] = []

    async def list_groups(self) -> dict[str, dict[str, Any]]:
        self.requests.append("list_groups")
        return {name: dict(g) for name, g in self.groups.items()}

    async def get_group(self, name: str) -> dict[str, Any] | None:
        self.requests.append(f"get_group {name}")
        return self.groups.get(name)

    async def list_usernames(self) -> set[str]:
        self.requests.append("list_usernames")
        return set(self.users)

    async def user_exists(self, name: str) -> bool:
        self.requests.append(f"user_exists {name}")
        return name in self.users


def context(hub: FakeHub, snapshot_ttl: float = 10.0) -> Context:
    return Context(store=None, hub=hub, settings=load_settings({}), snapshot_ttl=snapshot_ttl)  # type: ignore[arg-type]


def test_cached_reads_use_a_fresh_snapshot_and_live_reads_never_do() -> None:
    hub = FakeHub()
    ctx = context(hub)

    async def main() -> tuple[Any, ...]:
        await ctx.refresh_snapshot()
        hub.groups["g"] = {"name": "g", "users": ["ann", "bob"]}  # a hand edit after the pass
        cached = await ctx.group("g", cached=True)
        live = await ctx.group("g", cached=False)
        known_cached = await ctx.existing_users({"bob", "cid"}, cached=True)
        known_live = await ctx.existing_users({"bob", "cid"}, cached=False)
        return cached, live, known_cached, known_live

    cached, live, known_cached, known_live = asyncio.run(main())
    assert cached["users"] == ["ann"] and live["users"] == ["ann", "bob"]
    assert known_cached == known_live == {"bob"}
    assert hub.requests == [
        "list_groups", "get_group g",
        "list_usernames", "user_exists cid",  # cached: the listing, and only about the rest
        "user_exists bob", "user_exists cid",  # live: each name asked
    ]  # fmt: skip


def test_a_stale_snapshot_is_not_used_even_when_cached_will_do() -> None:
    hub = FakeHub()
    ctx = context(hub, snapshot_ttl=0.0)

    async def main() -> dict[str, Any] | None:
        await ctx.refresh_snapshot()
        return await ctx.group("g", cached=True)

    assert asyncio.run(main()) == hub.groups["g"]
    assert hub.requests == ["list_groups", "get_group g"]
