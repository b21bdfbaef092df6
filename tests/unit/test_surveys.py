"""The hub's surveys: one in flight, reused until stale, the age said."""

from __future__ import annotations

import asyncio

from hub_config.surveys import Survey, Taken


def test_concurrent_callers_share_one_survey_and_a_stale_one_is_renewed_in_the_background() -> None:
    async def main() -> None:
        calls = 0

        async def take() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            return calls

        max_age = [60.0]
        survey = Survey("n", take, lambda: max_age[0])
        first = await asyncio.gather(*(survey.get() for _ in range(10)))
        assert calls == 1 and {t.value for t in first} == {1}
        assert (await survey.get()).value == 1 and calls == 1  # fresh: reused
        max_age[0] = 0.0
        stale = await asyncio.gather(*(survey.get() for _ in range(10)))
        assert {t.value for t in stale} == {1}  # answered at once with the last one ...
        await asyncio.sleep(0.1)
        assert calls == 2 and survey.last is not None and survey.last.value == 2  # ... one renewal

    asyncio.run(main())


def test_wait_for_a_changed_one() -> None:
    async def main() -> None:
        values = iter([1, 2])

        async def take() -> int:
            return next(values)

        async def changed(last: Taken[int]) -> bool:
            return last.value == 1

        survey = Survey("n", take, lambda: float("inf"))
        assert (await survey.get()).value == 1
        assert (await survey.get(stale=changed, wait=True)).value == 2

    asyncio.run(main())


def test_an_old_survey_that_has_what_the_caller_needs_is_not_waited_for() -> None:
    async def main() -> None:
        calls = 0

        async def take() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.2)
            return calls

        async def never(last: Taken[int]) -> bool:
            return False

        survey = Survey("n", take, lambda: 0.0)  # always old
        assert (await survey.get()).value == 1
        assert (await survey.get(stale=never, wait=True)).value == 1  # served at once ...
        await asyncio.sleep(0.3)
        assert calls == 2  # ... and renewed behind it

    asyncio.run(main())
