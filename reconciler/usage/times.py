"""Times as the ledger keeps them: aware, in UTC, cut at whole hours or days (UTC has no
daylight saving, so an hour or a day is a fixed multiple of seconds since the epoch). One
place for the reports, the charts, the quotas' hourly buckets and the hub's session records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(t: datetime) -> datetime:
    """`t` in UTC; a naive time (SQLite's, the hub's ORM's) is taken to be UTC already."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def utc_or_now(t: datetime | None) -> datetime:
    return datetime.now(UTC) if t is None else utc(t)


def floor(t: datetime, width: timedelta) -> datetime:
    """The start of the hour or day (`width`) holding `t`."""
    t = utc(t)
    return EPOCH + (t - EPOCH) // width * width


def split(start: datetime, end: datetime, width: timedelta) -> Iterator[tuple[datetime, float]]:
    """[start, end) cut where the hours or days (`width`) begin: (the bucket's start, the
    seconds of the span in it), oldest first; nothing when `end` is not after `start`."""
    t, end = utc(start), utc(end)
    while t < end:
        bucket = floor(t, width)
        edge = min(bucket + width, end)
        yield bucket, (edge - t).total_seconds()
        t = edge
