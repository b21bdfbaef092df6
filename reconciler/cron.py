"""Cron expressions as the scheduler fires them. One parser, APScheduler's own `CronTrigger`,
serves both a spec's validation (`fields.validate_cron`) and the job that fires it
(`schedules.trigger_for`), so what is accepted is exactly what fires.

Standard 5-field crontab syntax, UTC. Day-of-week numbers are cron's (0 and 7 are Sunday),
not APScheduler's (0 is Monday): that one field is spelled out as day names first. When both
day-of-month and day-of-week are restricted, a day must match both (APScheduler's rule).
Kept apart from `schedules` so that validating (which the hub does) loads only the trigger,
not the scheduler.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger

FIELDS = ("minute", "hour", "day", "month", "day_of_week")  # CronTrigger's names, in crontab order
_LABELS = dict(zip(FIELDS, ("minute", "hour", "day-of-month", "month", "day-of-week"), strict=True))
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_ITEM = re.compile(r"(?P<first>\*|\d+|[a-z]+)(?:-(?P<last>\d+|[a-z]+))?(?:/(?P<step>\d+))?", re.IGNORECASE)
# The Gregorian calendar repeats every 400 years: a day (e.g. 29 February, a Monday) that
# does not come in these never comes, and the search for it stops at their end.
_SINCE, _UNTIL = datetime(2000, 1, 1, tzinfo=UTC), datetime(2400, 1, 1, tzinfo=UTC)


def _day(text: str) -> int:
    """0-7 (7 kept, for ranges ending on Sunday) or a day's three-letter name."""
    if text.isdigit():
        if int(text) > 7:
            raise ValueError(f"day {text} is not 0-7 (0 and 7 are Sunday)")
        return int(text)
    if text.lower() not in _DAYS:
        raise ValueError(f"unknown day {text!r} (sun, mon, tue, wed, thu, fri, sat)")
    return _DAYS.index(text.lower())


def standard_day_of_week(field: str) -> str:
    """A crontab day-of-week field as APScheduler means it. Standard cron counts 0 (and 7) as
    Sunday; APScheduler counts 0 as Monday. Day names mean the same in both, so every item
    is spelled out as names: `1-5` -> `mon,tue,wed,thu,fri`, `0,6` -> `sun,sat`.
    ValueError if an item is not a day, a range or a step of cron's."""
    if field == "*":
        return field
    days: list[int] = []
    for item in field.split(","):
        match = _DAY_ITEM.fullmatch(item)
        if match is None or (match["first"] == "*" and match["last"]):
            raise ValueError(f"{item!r} is not a day, a range (mon-fri, 1-5) or a step (*/2)")
        step = int(match["step"] or 1)
        if step == 0:
            raise ValueError(f"{item!r}: the step must be higher than 0")
        if match["first"] == "*":
            first, last = 0, 6
        else:
            first = _day(match["first"])
            last = _day(match["last"]) if match["last"] else (6 if match["step"] else first)
            if last < first:
                raise ValueError(f"{item!r}: the range runs backwards")
        days += [d % 7 for d in range(first, last + 1, step)]
    return ",".join(_DAYS[d] for d in sorted(set(days)))


def cron_trigger(expr: str) -> CronTrigger:
    """The trigger of a standard 5-field cron expression (UTC); ValueError saying what is
    wrong if it is not one, or if it can never fire (e.g. 30 February)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            "must be a 5-field cron expression 'minute hour day-of-month month day-of-week', "
            f"e.g. '0 9 * * mon-fri' (got {len(fields)} field{'s' if len(fields) != 1 else ''})"
        )
    normalized = " ".join(fields)
    given = dict(zip(FIELDS, fields, strict=True))
    try:
        given["day_of_week"] = standard_day_of_week(given["day_of_week"])
    except ValueError as e:
        raise ValueError(f"invalid cron expression {normalized!r}: day-of-week: {e}") from None
    try:
        trigger = CronTrigger(**given, timezone=UTC)
    except ValueError as e:
        raise ValueError(f"invalid cron expression {normalized!r}: {_field_error(given) or e}") from None
    if CronTrigger(**given, timezone=UTC, end_date=_UNTIL).get_next_fire_time(None, _SINCE) is None:
        raise ValueError(f"cron expression {normalized!r} never fires (no such day in those months)")
    return trigger


def _field_error(given: dict[str, str]) -> str | None:
    """`minute: <why>` for the first field APScheduler refuses on its own: its messages name
    the value but not the field."""
    for name, value in given.items():
        try:
            CronTrigger(**{name: value}, timezone=UTC)
        except ValueError as e:
            return f"{_LABELS[name]}: {e}"
    return None
