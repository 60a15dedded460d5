"""Hand-made FG-A and FG-B rows for FG-C tests: every column has a default, a test names only what it checks.

FG-A metrics default to 0; baseline stats default to ``DEFAULT_STATS`` (median 0, scale from
``mad`` 1); a row overrides single columns by their full name (``sessions_cnt_w_15m`` or
``sessions_cnt_w_15m_median``) or every metric's stats at once with ``stats={...}``.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from ndr_assets.transforms.fg_c import BaselineTables
from ndr_assets.transforms.schemas import (
    BASELINE_STATS,
    FG_B_IP_METADATA_SCHEMA,
    PAIR_COUNTS_SCHEMA,
    PAIR_RARITY_HOST_SCHEMA,
    PAIR_RARITY_SEGMENT_SCHEMA,
    curated_fg_c_columns,
    fg_a_schema,
    fg_b_host_schema,
    fg_b_segment_schema,
)
from ndr_resources.specs import FgCBuilderSpec

MONTH = "2026-02"
# A Tuesday in February 2026, 10:08 UTC: a window of the February baseline month.
WINDOW_END = datetime(2026, 2, 10, 10, 8)
DEFAULT_STATS = {
    "median": 0.0,
    "p25": 0.0,
    "p75": 0.0,
    "p95": 0.0,
    "p99": 0.0,
    "mad": 1.0,
    "iqr": 0.0,
    "support_count": 30,
}
BASELINE_START = datetime(2026, 1, 1, 0, 8)
BASELINE_END = datetime(2026, 2, 1, 0, 8)


def with_month(schema: T.StructType) -> T.StructType:
    """An FG-B schema plus the ``baseline_month`` the lead adds when reading a month's partition."""
    return T.StructType(list(schema.fields) + [T.StructField("baseline_month", T.StringType(), False)])


def _zero(data_type: T.DataType):
    return 0.0 if isinstance(data_type, T.DoubleType) else 0


def _frame(spark: SparkSession, schema: T.StructType, rows: list[dict], default) -> DataFrame:
    names = set(schema.fieldNames())
    for row in rows:
        unknown = set(row) - names - {"stats"}
        assert not unknown, f"unknown column(s) {unknown}"
    data = [tuple(row[f.name] if f.name in row else default(row, f) for f in schema.fields) for row in rows]
    return spark.createDataFrame(data, schema)


def fg_a(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """FG-A rows; ``host_ip`` required, ``window_end_ts`` defaults to WINDOW_END, label to work_hours."""
    keys = {"window_end_ts": WINDOW_END, "window_label": "work_hours"}
    return _frame(spark, fg_a_schema(), rows, lambda row, f: keys.get(f.name, _zero(f.dataType)))


def _stat_default(row: dict, field: T.StructField):
    stats = {**DEFAULT_STATS, **row.get("stats", {})}
    for stat in BASELINE_STATS:
        if field.name.endswith(f"_{stat}"):
            return stats[stat]
    return {
        "baseline_month": MONTH,
        "window_label": "work_hours",
        "host_count": 3,
        "baseline_start_ts": BASELINE_START,
        "baseline_end_ts": BASELINE_END,
    }[field.name]


def host_baselines(spark: SparkSession, rows: list[dict], metrics: list[str] | None = None) -> DataFrame:
    """``fg_b_host_schema`` rows (+ baseline_month); ``host_ip`` and ``segment_id`` required."""
    schema = with_month(fg_b_host_schema(metrics or curated_fg_c_columns()))
    return _frame(spark, schema, rows, _stat_default)


def segment_baselines(spark: SparkSession, rows: list[dict], metrics: list[str] | None = None) -> DataFrame:
    """``fg_b_segment_schema`` rows (+ baseline_month); ``segment_id`` required."""
    schema = with_month(fg_b_segment_schema(metrics or curated_fg_c_columns()))
    return _frame(spark, schema, rows, _stat_default)


def ip_metadata(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """Rows of ``FG_B_IP_METADATA_SCHEMA`` (+ month); ``host_ip``, ``segment_id``, ``is_cold_start`` required."""
    defaults = {
        "window_label": "work_hours",
        "baseline_month": MONTH,
        "machine_name": None,
        "support_count": 30,
        "is_non_persistent_machine": 0,
    }

    def default(row: dict, field: T.StructField):
        if field.name == "is_full_history":  # cold start by default means a short history
            return 1 - row["is_cold_start"]
        return defaults[field.name]

    return _frame(spark, with_month(FG_B_IP_METADATA_SCHEMA), rows, default)


def _pair_default(row: dict, field: T.StructField):
    return {
        "baseline_month": MONTH,
        "pair_seen_count": 10,
        "pair_last_seen_ts": datetime(2026, 1, 31, 23, 53),
        "active_days": 10,
        "pair_daily_avg": 1.0,
        "pair_rarity_score": 0.5,
        "is_new_pair_flag": 0,
        "is_rare_pair_flag": 0,
    }[field.name]


def pair_host(spark: SparkSession, rows: list[dict]) -> DataFrame:
    return _frame(spark, with_month(PAIR_RARITY_HOST_SCHEMA), rows, _pair_default)


def pair_segment(spark: SparkSession, rows: list[dict]) -> DataFrame:
    return _frame(spark, with_month(PAIR_RARITY_SEGMENT_SCHEMA), rows, _pair_default)


def tables(
    spark: SparkSession,
    host: list[dict] = (),
    segment: list[dict] = (),
    metadata: list[dict] = (),
    pairs_host: list[dict] = (),
    pairs_segment: list[dict] = (),
    metrics: list[str] | None = None,
) -> BaselineTables:
    """One horizon's tables from row lists (empty lists give empty tables of the right schema)."""
    return BaselineTables(
        host=host_baselines(spark, list(host), metrics),
        segment=segment_baselines(spark, list(segment), metrics),
        ip_metadata=ip_metadata(spark, list(metadata)),
        pair_host=pair_host(spark, list(pairs_host)),
        pair_segment=pair_segment(spark, list(pairs_segment)),
    )



SEGMENT_MAPPING = {
    "segments": [
        {"segment_id": "workstations", "cidr": "10.10.0.0/16"},
        {"segment_id": "servers", "cidr": "10.30.0.0/16"},
    ],
    "default_segment": "external",
}


def fg_c_spec(**overrides) -> FgCBuilderSpec:
    """An FG-C spec with the test segment mapping; keyword arguments override spec keys."""
    payload = {
        "fg_a_input": {"s3_prefix": "s3://lake/fg_a/"},
        "fg_b_input": {"s3_prefix": "s3://lake/fg_b/"},
        "fg_c_output": {"s3_prefix": "s3://lake/fg_c/"},
        "segment_mapping": SEGMENT_MAPPING,
        **overrides,
    }
    return FgCBuilderSpec.model_validate(payload)


def pair_counts(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """``(src_ip, dst_ip, dst_port, event_ts, sessions_cnt)`` tuples in ``PAIR_COUNTS_SCHEMA``."""
    return spark.createDataFrame(rows, PAIR_COUNTS_SCHEMA)
