"""Which backups a schedule keeps: restic's `forget --keep-last/--keep-daily/--keep-weekly`,
as a pure function of (name, time) pairs, so it is tested with any clock.

- keepLast n: the n newest;
- keepDaily n: the newest of each of the n newest calendar days (UTC) that have a backup;
- keepWeekly n: the newest of each of the n newest ISO weeks that have a backup.

A backup is kept if any rule keeps it. Only successful backups count; a failed one is
pruned once a newer backup succeeded (its partial archives restore nothing anyone asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

Dated = tuple[str, datetime]


def _newest_per_bucket(ordered: list[Dated], count: int, bucket: Callable[[datetime], Hashable]) -> set[str]:
    kept: set[str] = set()
    seen: set[Hashable] = set()
    for name, time in ordered:
        if len(seen) >= count:
            break
        key = bucket(time)
        if key not in seen:
            seen.add(key)
            kept.add(name)
    return kept


def keep(backups: list[Dated], keep_last: int = 0, keep_daily: int = 0, keep_weekly: int = 0) -> set[str]:
    """The names the rules keep."""
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    kept = {name for name, _ in ordered[:keep_last]}
    kept |= _newest_per_bucket(ordered, keep_daily, lambda t: t.date())
    kept |= _newest_per_bucket(ordered, keep_weekly, lambda t: tuple(t.isocalendar())[:2])
    return kept


@dataclass(frozen=True)
class Plan:
    keep: list[str]  # newest first
    delete: list[str]


def plan(succeeded: list[Dated], failed: list[Dated], keep_last: int, keep_daily: int, keep_weekly: int) -> Plan:
    """What a prune after a successful run keeps and deletes. Nothing is deleted while no
    backup succeeded, so a schedule that keeps failing never eats its last good backup."""
    if not succeeded:
        return Plan(keep=[], delete=[])
    kept = keep(succeeded, keep_last, keep_daily, keep_weekly)
    newest = max(t for _, t in succeeded)
    ordered = sorted(succeeded, key=lambda b: (b[1], b[0]), reverse=True)
    delete = [name for name, _ in ordered if name not in kept]
    delete += sorted(name for name, t in failed if t < newest)
    return Plan(keep=[name for name, _ in ordered if name in kept], delete=delete)
