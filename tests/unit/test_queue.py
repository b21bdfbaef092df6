"""The work queue and the backoff, on a fake clock."""

from __future__ import annotations

import random

from reconciler.queue import Backoff, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_duplicate_wakeups_collapse() -> None:
    q = WorkQueue(FakeClock())
    for _ in range(5):
        q.add(("GroupMembership", "a"))
    q.add(("GroupMembership", "b"))
    assert len(q) == 2
    assert q.pop() == ("GroupMembership", "a")
    assert q.pop() == ("GroupMembership", "b")
    assert q.pop() is None


def test_a_key_is_never_processed_twice_at_once() -> None:
    q = WorkQueue(FakeClock())
    key = ("GroupMembership", "a")
    q.add(key)
    assert q.pop() == key
    q.add(key)  # a change arrives while the key is being reconciled
    q.add(key)
    assert q.pop() is None  # not handed to a second worker
    q.done(key)
    assert q.pop() == key  # but reconciled once more afterwards
    q.done(key)
    assert q.pop() is None


def test_delayed_retry_becomes_ready_when_due() -> None:
    clock = FakeClock()
    q = WorkQueue(clock)
    key = ("GroupMembership", "a")
    q.add_after(key, 2.0)
    assert q.pop() is None
    assert q.next_due_in() == 2.0
    clock.now += 1.9
    assert q.pop() is None
    clock.now += 0.2
    assert q.pop() == key


def test_earlier_retry_wins_and_forget_cancels() -> None:
    clock = FakeClock()
    q = WorkQueue(clock)
    key = ("k", "1")
    q.add_after(key, 10)
    q.add_after(key, 1)
    q.add_after(key, 5)
    clock.now += 1
    assert q.pop() == key
    q.done(key)
    q.add_after(key, 3)
    q.forget(key)
    clock.now += 10
    assert q.pop() is None


def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    b = Backoff(base=0.5, cap=8, rng=random.Random(7))
    key = ("k", "1")
    delays = [b.next_delay(key) for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered: retries of many keys do not align
    assert b.attempts(key) == 8
    b.reset(key)
    assert b.attempts(key) == 0
    assert b.next_delay(key) <= 0.5


def test_backoff_is_per_key() -> None:
    b = Backoff(base=1, cap=60, rng=random.Random(1))
    for _ in range(5):
        b.next_delay(("k", "noisy"))
    assert b.next_delay(("k", "quiet")) <= 1
