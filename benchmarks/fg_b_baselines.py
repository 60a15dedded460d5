"""Seconds per stage of the FG-B baselines (``ndr_assets.transforms.baselines.build_fg_b``).

    .venv/bin/python -m benchmarks.fg_b_baselines [--rows N] [--metrics K] [--days D] [--no-capping] [--json out.json]

Writes N synthetic FG-A rows (all 480 metric columns, Parquet, in a temp folder) for one horizon of
D days, reads them back and times each stage the way the FG-B asset runs them: the sorted host value
arrays (aggregation + capping, persisted), the host table (persisted, as the asset does), the segment table
and ip_metadata. Each table stage executes its whole plan into Spark's ``noop`` sink. Baseline
metrics: the first K of the curated FG-C list (default all 440).

Synthetic values: counts are log-normal with a share of zeros (mean grows with the window length),
doubles are uniform in [0, 1) (every value distinct). Hosts are active
in about 400 of the horizon's windows each, spread over the five synthetic segments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

BASELINE_END = datetime(2026, 2, 1, tzinfo=UTC)
ACTIVE_WINDOWS_PER_HOST = 400
SEGMENT_PREFIXES = ("10.10", "10.20", "10.30", "10.40", "10.50")
LOG_MEAN_BY_WINDOW = {"w_15m": 0.5, "w_30m": 1.0, "w_1h": 1.6, "w_8h": 3.0, "w_24h": 4.0}


def synthetic_fg_a(spark, rows: int, days: int, seed: int = 7):
    """``rows`` FG-A rows (fg_a_schema) inside a ``days``-day horizon before BASELINE_END."""
    from pyspark.sql import functions as F

    from ndr_assets.transforms.schemas import fg_a_schema

    windows = days * 96
    hosts = max(1, rows // ACTIVE_WINDOWS_PER_HOST)
    per_host = -(-rows // hosts)
    stride = max(1, windows // per_host)
    first_end = BASELINE_END - timedelta(days=days) + timedelta(minutes=23)  # grid: windows end at :08/:23/:38/:53
    h = F.col("id") % hosts
    window = F.least((F.col("id") / hosts).cast("long") * stride + h % stride, F.lit(windows - 1))
    end = F.timestamp_seconds(F.lit(int(first_end.timestamp())) + window * 900)
    hour, dow = F.hour(end), F.dayofweek(end)
    label = (
        F.when(dow.isin(1, 7), "weekend").when(hour < 6, "night").when((hour >= 8) & (hour < 18), "work_hours")
        .otherwise("after_hours")
    )
    prefix = F.element_at(F.array(*[F.lit(p) for p in SEGMENT_PREFIXES]), (h % len(SEGMENT_PREFIXES) + 1).cast("int"))
    host_ip = F.concat_ws(".", prefix, (h / 250).cast("long").cast("string"), (h % 250 + 1).cast("string"))
    columns = {"host_ip": host_ip, "window_label": label, "window_end_ts": end, "hour_of_day": hour}
    for flag, band in (("is_working_hours", "work_hours"), ("is_after_hours", "after_hours"),
                       ("is_night", "night"), ("is_weekend", "weekend")):
        columns[flag] = (label == band).cast("int")
    for i, field in enumerate(f for f in fg_a_schema().fields if f.name not in columns):
        if field.dataType.simpleString() == "double":
            columns[field.name] = F.rand(seed + i)
        else:
            mu = LOG_MEAN_BY_WINDOW[field.name.rsplit("_", 2)[-2] + "_" + field.name.rsplit("_", 1)[-1]]
            count = F.floor(F.exp(F.randn(seed + i) * 1.2 + mu))
            columns[field.name] = F.when(F.rand(seed + 1000 + i) < 0.4, 0).otherwise(count).cast("long")
    df = spark.range(rows).select(*[c.alias(n) for n, c in columns.items()])
    return df.select(*[F.col(f.name).cast(f.dataType) for f in fg_a_schema().fields])


def _timed(label: str, fn, figures: dict) -> None:
    start = time.perf_counter()
    fn()
    figures[label] = round(time.perf_counter() - start, 2)
    print(f"{label:<40} {figures[label]:>8.2f} s", flush=True)


def _noop(df) -> None:
    df.write.format("noop").mode("overwrite").save()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--metrics", type=int, default=440, help="first K curated FG-C columns (max 440)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-capping", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from ndr_assets.transforms.baselines import build_fg_b
    from ndr_assets.transforms.schemas import curated_fg_c_columns
    from ndr_resources.spark import build_spark_session
    from ndr_resources.specs import FgBBuilderSpec

    spark = build_spark_session("local[2]", app_name="bench-fg-b")
    metrics = curated_fg_c_columns()[: args.metrics]
    spec = FgBBuilderSpec.model_validate(
        {
            "horizons": ["30d"],
            "horizon_days": {"30d": args.days},
            "fg_a_input": {"s3_prefix": "s3://bench/fg_a/"},
            "fg_b_output": {"s3_prefix": "s3://bench/fg_b/"},
            "baseline_metrics": metrics,
            "anomaly_capping": {"enabled": not args.no_capping},
            "segment_mapping": {
                "segments": [{"segment_id": f"seg{i}", "cidr": f"{p}.0.0/16"} for i, p in enumerate(SEGMENT_PREFIXES)],
                "default_segment": "external",
            },
        }
    )
    inventory = spark.createDataFrame(
        [("10.20.0.1", "VDI-0001", "2026-01"), ("10.10.0.1", "WS-0001", "2026-01")],
        "ip string, machine_name string, snapshot_month string",
    )
    figures: dict = {"rows": args.rows, "metrics": len(metrics), "days": args.days, "capping": not args.no_capping,
                     "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    print(f"{args.rows:,} FG-A rows x {len(metrics)} metrics, {args.days}-day horizon, capping "
          f"{'off' if args.no_capping else 'on'}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    folder = tempfile.mkdtemp(prefix="bench-fg-b-")
    try:
        path = os.path.join(folder, "fg_a")
        _timed("generate + write FG-A parquet (setup)", lambda: synthetic_fg_a(spark, args.rows, args.days)
               .write.parquet(path), figures)
        fg_a = spark.read.parquet(path)
        _timed("read + horizon rows (count)", lambda: figures.setdefault("rows_in_horizon", fg_a.where(
            F.col("window_end_ts") <= F.lit(BASELINE_END)).count()), figures)
        total = time.perf_counter()
        frames = {}
        _timed("build_fg_b (plan construction)", lambda: frames.setdefault(
            "f", build_fg_b(fg_a, inventory, spec, horizon="30d", baseline_end=BASELINE_END)), figures)
        f = frames["f"]
        _timed("host value arrays + capping (persist)", lambda: figures.setdefault(
            "value_array_rows", f._persisted[0].count()), figures)
        tables = {}
        # As the FG-B asset does: the host table is persisted (ip_metadata reads its support columns).
        _timed("host table (persist + noop write)", lambda: _noop(
            tables.setdefault("host", f.host.persist(StorageLevel.MEMORY_AND_DISK))), figures)
        _timed("segment table (noop write)", lambda: _noop(f.segment), figures)
        _timed("ip_metadata (noop write)", lambda: _noop(f.ip_metadata), figures)
        figures["total_fg_b_s"] = round(time.perf_counter() - total, 2)
        _timed("counters()", lambda: figures.setdefault("counters", f.counters()), figures)
        print(f"{'total (plan .. ip_metadata)':<40} {figures['total_fg_b_s']:>8.2f} s")
        figures["load_average_end"] = os.getloadavg()[0]
        print(f"load average at the end {figures['load_average_end']:.1f} (other processes share the CPUs)")
        print(f"host x label x metric rows {figures['value_array_rows']:,} for {figures['rows_in_horizon']:,} rows x "
              f"{len(metrics)} metrics; counters {figures['counters']}")
        tables["host"].unpersist()
        f.unpersist()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)
    return figures


if __name__ == "__main__":
    main()
