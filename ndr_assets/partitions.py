"""Partition definitions shared by assets, checks, schedules and sensors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start, window_starts

# Windows end at minutes 08/23/38/53 (spec 001 `WindowCronExpression` "8-59/15 * * * ? *", in Dagster's
# five-field cron); a partition is named by its window start.
FIFTEEN_MINUTE_CRON = "8-59/15 * * * *"
FIFTEEN_MINUTE_KEY_FORMAT = "%Y-%m-%d-%H:%M"
# A window of length L ending with partition E needs the L/15 - 1 partitions before it: 24 h = 95 more.
TRAILING_24H_PARTITIONS = 95


def fifteen_minute_partitions(project_start: datetime) -> dg.TimeWindowPartitionsDefinition:
    """15-minute windows from the project's own start date (snapped to the window grid)."""
    start = floor_to_window_start(project_start)
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=FIFTEEN_MINUTE_CRON,
        start=start.strftime(FIFTEEN_MINUTE_KEY_FORMAT),
        fmt=FIFTEEN_MINUTE_KEY_FORMAT,
        timezone="UTC",
    )


def trailing_day_before(first_window: datetime, project_start: datetime) -> list[datetime]:
    """Starts of the windows of the trailing 24 h before ``first_window`` (the 95 before it), from the
    project's first window on: what a window's 24-hour features and redelivery rule look back on."""
    earliest = floor_to_window_start(first_window - timedelta(minutes=SLICE_MINUTES * TRAILING_24H_PARTITIONS))
    return window_starts(max(floor_to_window_start(project_start), earliest), first_window)


def trailing_24h_mapping() -> dg.TimeWindowPartitionMapping:
    """A window plus the 95 windows before it: what FG-A's 24-hour features read."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-TRAILING_24H_PARTITIONS, end_offset=0, allow_nonexistent_upstream_partitions=True
    )


# ---------------------------------------------------------------- monthly baselines

MONTHLY_KEY_FORMAT = "%Y-%m-%d"


def next_month_start(ts: datetime) -> datetime:
    """First instant of the month after the one containing ``ts`` (UTC)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return datetime(ts.year + ts.month // 12, ts.month % 12 + 1, 1, tzinfo=UTC)


def first_baseline_month(project_start: datetime) -> datetime:
    """The first month that has a previous month of the project's windows: the month after the start."""
    return next_month_start(project_start)


def monthly_partitions(project_start: datetime) -> dg.MonthlyPartitionsDefinition:
    """Monthly partitions keyed by the month in which a baseline or inventory snapshot is USED.

    FG-B ``2026-04-01`` is computed from March's windows and serves April's FG-C windows, so the
    first partition is the month after the project's start.
    """
    first = first_baseline_month(project_start)
    return dg.MonthlyPartitionsDefinition(start_date=first.strftime(MONTHLY_KEY_FORMAT), timezone="UTC")


def correlation_partitions(project_start: datetime) -> dg.TimeWindowPartitionsDefinition:
    """FG-C's 15-minute windows: from the first window that starts inside the first baseline month."""
    first_month = first_baseline_month(project_start)
    start = floor_to_window_start(first_month)
    if start < first_month:
        start += timedelta(minutes=SLICE_MINUTES)
    return fifteen_minute_partitions(start)


def previous_month_windows_mapping() -> dg.TimeWindowPartitionMapping:
    """Monthly -> 15-minute: every window of the month before (offsets count in months on this side)."""
    return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)


# ---------------------------------------------------------------- monthly models


def add_months(month_start: datetime, months: int) -> datetime:
    """First instant of the month ``months`` away from the month starting at ``month_start`` (UTC)."""
    index = month_start.year * 12 + month_start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def training_range(month_of_use: datetime, *, lookback_months: int, gap_months: int,
                   in_month_days: float | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the windows the model of ``month_of_use`` learns from.

    ``lookback_months`` whole months ending ``gap_months`` before the month of use (4 and 1: the
    2026-06 model learns 2026-01-01 .. 2026-05-01 exclusive of May, i.e. January to April); with
    ``in_month_days`` the first N days of the month of use instead (short histories).
    """
    if in_month_days:
        return month_of_use, month_of_use + timedelta(days=in_month_days)
    end = add_months(month_of_use, -gap_months)
    return add_months(end, -lookback_months), end


def training_windows_mapping(*, lookback_months: int, gap_months: int,
                             in_month_days: float | None = None) -> dg.TimeWindowPartitionMapping:
    """Monthly model -> its 15-minute training windows (offsets count in months on the monthly side)."""
    if in_month_days:
        return dg.TimeWindowPartitionMapping(start_offset=0, end_offset=0, allow_nonexistent_upstream_partitions=True)
    return dg.TimeWindowPartitionMapping(
        start_offset=-(lookback_months + gap_months), end_offset=-(gap_months + 1),
        allow_nonexistent_upstream_partitions=True,
    )


def training_window_starts(month_of_use: datetime, *, lookback_months: int, gap_months: int,
                           in_month_days: float | None = None) -> list[datetime]:
    """Starts of the 15-minute windows of :func:`training_range` (the first holds the range's first
    instant), the same windows :func:`training_windows_mapping` maps the month to."""
    start, end = training_range(month_of_use, lookback_months=lookback_months, gap_months=gap_months,
                                in_month_days=in_month_days)
    return window_starts(floor_to_window_start(start), end)
