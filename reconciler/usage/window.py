"""A report's window from what a person types (`hubctl usage --since/--until`, the REST
API's `?since=&until=`), parsed once for both.

- `since`: a duration back from `until` (`30d`, `12h`, `1d12h`), or a DATE (`2026-11-01`,
  that day's 00:00 UTC) or a time (`2026-11-01T08:00:00Z`); default 30d;
- `until`: a DATE (the end of that day: the day is included) or a time; default now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from vocabulary.durations import parse_duration

from .times import utc

DEFAULT_SINCE = "30d"
# The longest window a report reads: the daily roll-ups' default retention (USAGE_DAILY_DAYS)
# and a day; a longer one (since=0001-01-01) would make every request scan the whole ledger.
MAX_WINDOW = timedelta(days=731)


def _moment(text: str, end_of_day: bool) -> datetime:
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"must be a date (2026-11-01) or a time (2026-11-01T08:00:00Z), got {text!r}") from None
    return utc(t)


def parse_window(since: str | None, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(since, until) in UTC; ValueError saying which bound is wrong and how."""
    now = now or datetime.now(UTC)
    try:
        end = _moment(until, end_of_day=True) if until else now
    except (ValueError, OverflowError) as e:  # 9999-12-31 has no end of day
        raise ValueError(f"until {e}") from None
    text = (since or DEFAULT_SINCE).strip()
    try:
        start = end - timedelta(seconds=parse_duration(text))
    except (ValueError, OverflowError):  # not a duration, or one before the year 1
        try:
            start = _moment(text, end_of_day=False)
        except ValueError:
            raise ValueError(
                f"since must be a duration back from until (30d, 12h) or a date or time, got {text!r}"
            ) from None
    if start >= end:
        raise ValueError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    if end - start > MAX_WINDOW:
        raise ValueError(f"the window is at most {MAX_WINDOW.days} days (the daily roll-ups' retention)")
    return start, end
