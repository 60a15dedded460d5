"""The 15-minute window grid: windows end at minutes 08, 23, 38 and 53 (spec 001, cron ``8-59/15``).

A window is named by its start (the Dagster partition key). Window lengths of FG-A are multiples of
the 15-minute slice. A raw mini-batch belongs to the window that contains its landing time, which
our forwarders and generator put at the front of ``mini_batch_id`` (``%Y%m%dT%H%M%SZ``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pyspark.sql import Column
from pyspark.sql import functions as F

SLICE_MINUTES = 15
SLICE_SECONDS = SLICE_MINUTES * 60
# Windows start (and end) 8 minutes past each quarter hour.
GRID_OFFSET_SECONDS = 8 * 60
WINDOW_LENGTHS_MINUTES: dict[str, int] = {"w_15m": 15, "w_30m": 30, "w_1h": 60, "w_8h": 480, "w_24h": 1440}
WINDOW_LABELS = tuple(WINDOW_LENGTHS_MINUTES)
MINI_BATCH_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_MINI_BATCH_RE = re.compile(r"^(\d{8}T\d{6}Z)(?:[-_.][A-Za-z0-9_.-]{1,64})?$")


def floor_to_window_start(ts: datetime) -> datetime:
    """The start of the 15-minute window containing ``ts`` (UTC)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    epoch = int(ts.timestamp())
    start = (epoch - GRID_OFFSET_SECONDS) // SLICE_SECONDS * SLICE_SECONDS + GRID_OFFSET_SECONDS
    return datetime.fromtimestamp(start, tz=UTC)


def window_starts(start: datetime, end: datetime) -> list[datetime]:
    """Every window start in ``[start, end)``; ``start`` must be on the grid."""
    if floor_to_window_start(start) != start.astimezone(UTC):
        raise ValueError(f"{start.isoformat()} is not a window start (minutes 08/23/38/53)")
    out, current = [], start.astimezone(UTC)
    while current < end:
        out.append(current)
        current += timedelta(minutes=SLICE_MINUTES)
    return out


def slice_start_col(ts: Column) -> Column:
    """Spark: the start of the window containing timestamp column ``ts``."""
    epoch = F.unix_timestamp(ts)
    start = F.floor((epoch - F.lit(GRID_OFFSET_SECONDS)) / F.lit(SLICE_SECONDS)) * SLICE_SECONDS + GRID_OFFSET_SECONDS
    return F.timestamp_seconds(start)


def window_end_col(window_start: Column) -> Column:
    """Spark: the end of the window starting at timestamp column ``window_start`` (start + 15 min)."""
    return window_start + F.expr(f"INTERVAL {SLICE_MINUTES} MINUTES")


def partition_values(window_start: datetime) -> tuple[tuple[str, str], tuple[str, str]]:
    """Physical partition columns of a window: ``dt=YYYY-MM-DD/window=HHMM`` (window start, UTC)."""
    ws = window_start.astimezone(UTC)
    return (("dt", ws.strftime("%Y-%m-%d")), ("window", ws.strftime("%H%M")))


def dt_col(window_start: Column) -> Column:
    return F.date_format(window_start, "yyyy-MM-dd")


def window_col(window_start: Column) -> Column:
    return F.date_format(window_start, "HHmm")


def mini_batch_landing_time(mini_batch_id: str) -> datetime | None:
    """Landing time encoded at the front of a mini-batch id, or None if the id does not carry one."""
    match = _MINI_BATCH_RE.match(mini_batch_id)
    if not match:
        return None
    return datetime.strptime(match.group(1), MINI_BATCH_TIME_FORMAT).replace(tzinfo=UTC)


def mini_batch_id_for(landing_time: datetime, suffix: str | None = None) -> str:
    stamp = landing_time.astimezone(UTC).strftime(MINI_BATCH_TIME_FORMAT)
    return f"{stamp}-{suffix}" if suffix else stamp
