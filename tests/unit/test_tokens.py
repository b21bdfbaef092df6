"""The details' token check: bounded cache (count and age) of digests, refused tokens not
asked again, tokens no hub issues never asked about, one question per token at a time."""

from __future__ import annotations

import asyncio
import hashlib

from reconciler.tokens import MAX_TOKEN, TokenCache, TokenCheck, Verdict, well_formed


def test_cache_is_bounded_by_count_and_age() -> None:
    now = [0.0]
    cache = TokenCache(ttl=10, max_entries=3, clock=lambda: now[0])
    for i in range(5):
        cache.put(bytes([i]), i % 2 == 0)
    assert len(cache) == 3
    assert cache.get(bytes([0])) is None  # the oldest went first
    assert cache.get(bytes([4])) is True and cache.get(bytes([3])) is False
    now[0] = 10.0
    assert cache.get(bytes([4])) is None


def test_recently_used_stays() -> None:
    cache = TokenCache(ttl=10, max_entries=2, clock=lambda: 0.0)
    cache.put(b"a", True)
    cache.put(b"b", True)
    cache.get(b"a")
    cache.put(b"c", True)
    assert cache.get(b"a") is True and cache.get(b"b") is None


def test_shapes_no_hub_issues_are_refused() -> None:
    assert well_formed("0123456789abcdef0123456789abcdef")
    assert not well_formed("")
    assert not well_formed("x" * (MAX_TOKEN + 1))
    assert not well_formed("abc def") and not well_formed("abc\x00")


def test_refused_token_is_not_asked_again_and_the_token_is_not_kept() -> None:
    asked: list[str] = []

    async def ask(token: str) -> bool:
        asked.append(token)
        return token == "good-token-1234"

    async def main() -> list[Verdict]:
        check = TokenCheck(ask)
        verdicts = [await check.check(t) for t in ["bad-token-1234"] * 5 + ["good-token-1234"] * 2 + ["x" * 8000]]
        assert set(check.cache._entries) == {hashlib.sha256(t.encode()).digest() for t in set(asked)}
        return verdicts

    verdicts = asyncio.run(main())
    assert asked == ["bad-token-1234", "good-token-1234"]
    assert verdicts[0] is Verdict.HUB_REFUSED and verdicts[1] is Verdict.CACHED_REFUSED
    assert verdicts[5] is Verdict.HUB_ALLOWED and verdicts[6] is Verdict.CACHED_ALLOWED
    assert verdicts[7] is Verdict.MALFORMED and not verdicts[7].allowed


def test_one_question_per_token_at_a_time() -> None:
    asked: list[str] = []

    async def ask(token: str) -> bool:
        asked.append(token)
        await asyncio.sleep(0.05)
        return False

    async def main() -> list[Verdict]:
        check = TokenCheck(ask)
        return await asyncio.gather(*(check.check("same-token-1234") for _ in range(50)))

    verdicts = asyncio.run(main())
    assert asked == ["same-token-1234"]
    assert verdicts.count(Verdict.HUB_REFUSED) == 1 and verdicts.count(Verdict.CACHED_REFUSED) == 49
