"""Partition definitions shared by assets, checks, schedules and sensors."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from ndr_assets.transforms.windows import floor_to_window_start

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


def trailing_24h_mapping() -> dg.TimeWindowPartitionMapping:
    """A window plus the 95 windows before it: what FG-A's 24-hour features read."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-TRAILING_24H_PARTITIONS, end_offset=0, allow_nonexistent_upstream_partitions=True
    )
