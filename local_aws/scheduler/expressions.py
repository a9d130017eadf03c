"""EventBridge Scheduler's schedule expressions: when a schedule is due.

    due_times("cron(0 2 * * ? *)", "Europe/Stockholm", after, until)   # -> [aware UTC datetimes in (after, until]]

As the Scheduler user guide ("Schedule types") defines them:
- `cron(minutes hours day-of-month month day-of-week year)`: six fields, in ScheduleExpressionTimezone. One of
  day-of-month and day-of-week is `?`. Day-of-week is 1-7 = SUN-SAT (or SUN..SAT), `#` for the nth weekday;
  `L` is accepted in day-of-month. The minute..day-of-week fields are evaluated by croniter (after mapping
  AWS's day numbers to croniter's 0-6), the year field here. `W` and `L` in day-of-week are refused, naming them.
- `rate(value unit)`: minute(s), hour(s), day(s), counted from the schedule's anchor (its StartDate, else its
  creation); a value of 1 takes the singular unit, as AWS requires.
- `at(yyyy-mm-ddThh:mm:ss)`: once, in the timezone.
A malformed expression raises ExpressionError with the expected form.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minutes?|hours?|days?)\)$")
AT = re.compile(r"^at\((?P<when>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
CRON = re.compile(r"^cron\((?P<fields>[^)]*)\)$")
UNITS = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
MAX_FIRINGS = 10_000  # per call: a schedule every minute over a week, with room


class ExpressionError(ValueError):
    pass


def zone(timezone: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(
            f"ScheduleExpressionTimezone {timezone!r} is not an IANA time zone (e.g. Europe/Stockholm)"
        ) from None


def due_times(
    expression: str,
    timezone: str | None,
    after: dt.datetime,
    until: dt.datetime,
    *,
    anchor: dt.datetime | None = None,
) -> list[dt.datetime]:
    """The times in (after, until] at which the schedule is due, oldest first, as aware UTC datetimes."""
    tz = zone(timezone)
    after, until = after.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= after:
        return []
    expression = expression.strip()
    if match := AT.match(expression):
        when = dt.datetime.fromisoformat(match["when"]).replace(tzinfo=tz).astimezone(dt.UTC)
        return [when] if after < when <= until else []
    if match := RATE.match(expression):
        return _rate(int(match["value"]), match["unit"], after, until, anchor or after)
    if match := CRON.match(expression):
        return _cron(match["fields"], tz, after, until)
    raise ExpressionError(
        f"schedule expression {expression!r} is not at(yyyy-mm-ddThh:mm:ss), rate(value unit) or"
        " cron(minutes hours day-of-month month day-of-week year)"
    )


def _rate(value: int, unit: str, after: dt.datetime, until: dt.datetime, anchor: dt.datetime) -> list[dt.datetime]:
    if value < 1:
        raise ExpressionError(f"rate({value} {unit}): the value must be a positive whole number")
    if (value == 1) != (not unit.endswith("s")):
        wanted = unit.rstrip("s") if value == 1 else unit.rstrip("s") + "s"
        raise ExpressionError(f"rate({value} {unit}): write rate({value} {wanted}) (singular only for 1)")
    period = UNITS[unit.rstrip("s")] * value
    anchor = anchor.astimezone(dt.UTC)
    first = max(1, int((after - anchor) / period) + 1)
    times = []
    when = anchor + period * first
    while when <= until and len(times) < MAX_FIRINGS:
        if when > after:
            times.append(when)
        when += period
    return times


def _cron(fields: str, tz: ZoneInfo, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    parts = fields.split()
    if len(parts) != 6:
        raise ExpressionError(
            f"cron({fields}) has {len(parts)} fields: EventBridge Scheduler takes six,"
            " cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 2 * * ? *)"
        )
    minutes, hours, day_of_month, month, day_of_week, year = parts
    if "?" not in (day_of_month, day_of_week):
        raise ExpressionError(f"cron({fields}): one of day-of-month and day-of-week must be '?'")
    if "W" in day_of_month.upper() or "L" in day_of_week.upper() or "W" in day_of_week.upper():
        raise ExpressionError(f"cron({fields}): W, and L in day-of-week, are not evaluated by the local stack")
    standard = " ".join(
        [minutes, hours, day_of_month.replace("?", "*"), month, _day_of_week(day_of_week.replace("?", "*"))]
    )
    if not croniter.is_valid(standard):
        raise ExpressionError(f"cron({fields}) is not a valid cron expression")
    years = _years(year, fields)
    iterator = croniter(standard, after.astimezone(tz))
    times = []
    while len(times) < MAX_FIRINGS:
        when = iterator.get_next(dt.datetime).astimezone(dt.UTC)
        if when > until:
            break
        if when.astimezone(tz).year in years:
            times.append(when)
    return times


def _day_of_week(field: str) -> str:
    """AWS's 1-7 (SUN-SAT) as croniter's 0-6; names and `#n` as they are."""

    def shift(match: re.Match) -> str:
        number = int(match[0])
        if not 1 <= number <= 7:
            raise ExpressionError(f"day-of-week {number} is outside 1-7 (SUN-SAT)")
        return str(number - 1)

    if "#" in field:
        day, nth = field.split("#", 1)
        return re.sub(r"\d+", shift, day) + "#" + nth
    return re.sub(r"(?<![/\d])\d+", shift, field)


def _years(field: str, fields: str) -> range | set[int]:
    if field in ("*", "?"):
        return range(1970, 2200)
    years: set[int] = set()
    for part in field.split(","):
        match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?(?:/(\d+))?", part)
        if match is None:
            raise ExpressionError(f"cron({fields}): year field {field!r} is not a year, range or list (1970-2199)")
        start = int(match[1])
        end = int(match[2] or (2199 if match[3] else start))
        years |= set(range(start, end + 1, int(match[3] or 1)))
    return years
