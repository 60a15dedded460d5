"""Tiny FG-A frames and FG-B specs for the baseline tests (two metrics, a handful of host-windows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import types as T

from ndr_assets.transforms.schemas import fg_a_metric_column_types
from ndr_resources.specs import FgBBuilderSpec

SESSIONS = "sessions_cnt_w_15m"  # a long FG-A column
DENY = "deny_ratio_w_15m"  # a double FG-A column
METRICS = [SESSIONS, DENY]
# FG-B 2026-02 serves February: built from windows before 2026-02-01 00:00 UTC.
BASELINE_END = datetime(2026, 2, 1, tzinfo=UTC)
SEGMENTS = {
    "segments": [
        {"segment_id": "workstations", "cidr": "10.10.0.0/16"},
        {"segment_id": "vdi", "cidr": "10.20.0.0/16"},
        {"segment_id": "servers", "cidr": "10.30.0.0/16"},
    ],
    "default_segment": "external",
}


def ts(day: int, hour: int, minute: int) -> datetime:
    """A January 2026 instant (UTC)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def window_ends(count: int, first: datetime = ts(26, 10, 8)) -> list[datetime]:
    """``count`` consecutive 15-minute window ends (grid minutes 08/23/38/53)."""
    return [first + timedelta(minutes=15 * i) for i in range(count)]


def fg_a_frame(spark, rows: list[tuple], metrics: list[str] = METRICS):
    """FG-A rows ``(host_ip, window_label, window_end_ts, *metric values)`` with FG-A's column types."""
    types = fg_a_metric_column_types()
    schema = T.StructType(
        [
            T.StructField("host_ip", T.StringType(), False),
            T.StructField("window_label", T.StringType(), False),
            T.StructField("window_end_ts", T.TimestampType(), False),
        ]
        + [T.StructField(m, types[m], False) for m in metrics]
    )
    return spark.createDataFrame(rows, schema)


def fg_b_spec(**overrides) -> FgBBuilderSpec:
    payload = {
        "horizons": ["7d"],
        "fg_a_input": {"s3_prefix": "s3://lake/fg_a/"},
        "fg_b_output": {"s3_prefix": "s3://lake/fg_b/"},
        "baseline_metrics": METRICS,
        "anomaly_capping": {"enabled": False},
        "segment_mapping": SEGMENTS,
        "support_min": 5,
    }
    payload.update(overrides)
    return FgBBuilderSpec.model_validate(payload)
