"""Quiet hours in a person's local time: shared by the plan (campaigns) and the dispatcher (messaging)."""

from __future__ import annotations

from datetime import datetime, time, timedelta


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the usual case: the quiet night spans midnight


def out_of_quiet_hours(local_dt: datetime, start: time, end: time) -> datetime:
    """The first moment at or after ``local_dt`` outside quiet hours (same zone)."""
    if not in_quiet_hours(local_dt.timetz().replace(tzinfo=None), start, end):
        return local_dt
    day = local_dt.date()
    if start > end and local_dt.time() >= start:
        day = day + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local_dt.tzinfo)
