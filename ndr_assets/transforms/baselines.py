"""FG-B monthly baselines: per host and per segment, exact quantiles, MAD and IQR of FG-A metrics.

A baseline partition is keyed by the month in which it is USED: ``baseline_end`` is the first instant
of that month (UTC), and a horizon of ``D`` days with a safety gap of ``G`` days takes the FG-A rows
(host-windows) with

    window start = window_end_ts - 15 min >= baseline_end - D days   and   window_end_ts <= baseline_end - G days.

Statistics are exact, with linear interpolation between order statistics (numpy's default
'linear' method, the same as Spark's ``percentile``): MAD = median(|x - median|), IQR = p75 - p25.

How it stays cheap with ~440 metrics (figures: ``benchmarks/fg_b_baselines.py``). Per-value rows
(exploding 440 columns into (key, metric, value) rows, or ``percentile`` aggregations over them) cost
Spark about a microsecond per value per stage; instead the values travel as sorted arrays:

1. One aggregation of the wide FG-A rows per (host_ip, window_label) collects the host-windows as
   arrays; a higher-order function transposes them into one ascending array per metric, exploded to
   one row per (host, label, metric). Written as SQL expressions, so building the plan costs a few
   calls whatever the number of metrics.
2. Anomaly capping (``cap_anomalies``): the exact upper quantile per (window_label, metric) from the
   per-host array tails (a count and a tail aggregation, a few rows per metric), one broadcast join,
   then ``least(x, cap)`` inside the arrays (which keeps them sorted).
3. Quantiles are array lookups; MAD sorts |x - median| inside the array: no join, no second pass.
4. Segment baselines concatenate the host arrays of a segment (pooling host-windows) and reuse 3.
5. Back to wide: per key, the index-sorted list of stat structs; the ``<metric>_<stat>`` columns are
   one ``selectExpr`` (no Python loop issuing a job or a call per metric).

``build_fg_b`` persists the host arrays and the caps (the host and segment tables both read them);
call ``FgBFrames.unpersist()`` (or use the frames as a context manager) once the tables are written.

Scaling note: a segment's pooled array of one metric and time band holds all its host-windows
(e.g. 1,000 hosts x 2,880 windows = 2.9 M doubles, 23 MB): fine for tenants of this size; far larger
segments would want a histogram (value, count) form instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.schemas import (
    BASELINE_STATS,
    FG_B_IP_METADATA_SCHEMA,
    curated_fg_c_columns,
    enforce_schema,
    fg_a_metric_column_types,
    fg_b_host_schema,
    fg_b_segment_schema,
)
from ndr_assets.transforms.segments import assign_segment
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start
from ndr_resources.errors import InputDataError
from ndr_resources.specs import AnomalyCapping, FgBBuilderSpec, SegmentMapping

# Quantile statistics and their percentages.
QUANTILE_STATS = {"p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
INVENTORY_COLUMNS = ("ip", "machine_name", "snapshot_month")
FG_A_KEYS = ("host_ip", "window_label", "window_end_ts")
HOST_KEYS = ("host_ip", "window_label")
SEGMENT_KEYS = ("segment_id", "window_label")
_METRIC_IDX = "metric_idx"
_SLICE = timedelta(minutes=SLICE_MINUTES)

# Formula of every FG-B column, read by the feature catalog. Keys: a statistic name (column
# ``<metric>_<stat>`` of the host and segment tables), a column name, or ``<table>.<column>`` where
# the same column name means something else in another table. x = the metric's FG-A values in the
# horizon, capped (anomaly_capping); D = horizon days, G = safety gap days.
_EXACT = "exact {}th percentile of x over the host-windows (linear interpolation between order statistics)"
FORMULAS: dict[str, str] = {
    "horizon": "FG-A rows with window_end_ts - 15 min >= baseline_end - D days and window_end_ts <= "
    "baseline_end - G days; baseline_end = first instant (UTC) of the month the baseline is used in",
    "anomaly_capping": "x = min(x, exact upper_quantile of x per (window_label, metric) over all hosts of the "
    "horizon), before every statistic, when anomaly_capping.enabled",
    "median": _EXACT.format(50),
    "p25": _EXACT.format(25),
    "p75": _EXACT.format(75),
    "p95": _EXACT.format(95),
    "p99": _EXACT.format(99),
    "mad": "median(|x - median(x)|) (unscaled; 0 when at least half the values equal the median)",
    "iqr": "p75 - p25",
    "support_count": "number of host-windows (FG-A rows) of the horizon with a value of the metric",
    "segment_id": "segment of host_ip by segment_mapping (longest CIDR prefix wins, else default_segment)",
    "host_count": "distinct hosts whose host-windows of the time band are pooled into the segment's statistics",
    "baseline_start_ts": "end of the first 15-minute grid window with start >= baseline_end - D days",
    "baseline_end_ts": "last 15-minute grid window end <= baseline_end - G days",
    "machine_name": "machine name of host_ip in the latest inventory snapshot listing the IP; null if none does",
    "ip_metadata.support_count": "min over baseline_required_metrics of <metric>_support_count of the host table",
    "is_full_history": "1 if ip_metadata.support_count >= support_min of the horizon, else 0",
    "is_non_persistent_machine": "1 if machine_name starts with one of non_persistent_machine_prefixes "
    "(case-insensitive), else 0",
    "is_cold_start": "1 if is_full_history == 0 or is_non_persistent_machine == 1, else 0",
}


class BaselineMetricError(ValueError):
    """A baseline metric list names something that is not an FG-A metric column; ``key`` is the spec key."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


# ---------------------------------------------------------------- horizon


@dataclass(frozen=True)
class HorizonBounds:
    """Which FG-A windows a horizon takes, and the grid window ends it admits (UTC)."""

    min_window_start: datetime  # baseline_end - D days
    max_window_end: datetime  # baseline_end - G days
    first_window_end: datetime  # baseline_start_ts
    last_window_end: datetime  # baseline_end_ts


def horizon_bounds(baseline_end: datetime, days: int, gap_days: int) -> HorizonBounds:
    """Bounds of a horizon of ``days`` days ending ``gap_days`` days before ``baseline_end``."""
    if days <= gap_days:
        raise ValueError(f"a horizon of {days} day(s) with a safety gap of {gap_days} day(s) has no windows")
    end = baseline_end.astimezone(UTC) if baseline_end.tzinfo else baseline_end.replace(tzinfo=UTC)
    min_start = end - timedelta(days=days)
    max_end = end - timedelta(days=gap_days)
    # Grid points are both window starts and window ends: the first admitted window starts at the
    # first grid point >= min_start; the last admitted end is the last grid point <= max_end.
    first_start = floor_to_window_start(min_start)
    if first_start < min_start:
        first_start += _SLICE
    return HorizonBounds(min_start, max_end, first_start + _SLICE, floor_to_window_start(max_end))


def in_horizon(ts: Column, bounds: HorizonBounds) -> Column:
    """Window-end timestamp column ``ts`` is inside the horizon (also used for pair counts' event_ts)."""
    return (ts >= F.lit(bounds.min_window_start + _SLICE)) & (ts <= F.lit(bounds.max_window_end))


def baseline_rows(fg_a: DataFrame, *, baseline_end: datetime, days: int, gap_days: int) -> DataFrame:
    """The FG-A rows of one horizon: window start >= baseline_end - days, window_end_ts <= baseline_end - gap_days."""
    return fg_a.where(in_horizon(F.col("window_end_ts"), horizon_bounds(baseline_end, days, gap_days)))


# ---------------------------------------------------------------- metric lists and input checks


def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def resolve_baseline_metrics(spec: FgBBuilderSpec) -> tuple[list[str], list[str]]:
    """(baseline metrics, required metrics) of a spec, validated against FG-A's metric columns.

    Baseline metrics default to the curated FG-C list, required metrics to all baseline metrics.
    Raises BaselineMetricError (a ValueError) whose ``key`` names the offending spec key.
    """
    known = fg_a_metric_column_types()
    metrics = _dedupe(spec.baseline_metrics) if spec.baseline_metrics is not None else curated_fg_c_columns()
    if not metrics:
        raise BaselineMetricError("baseline_metrics", "is empty; name FG-A metric columns or leave it unset")
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise BaselineMetricError("baseline_metrics", f"not FG-A metric column(s): {unknown[:10]}")
    if spec.baseline_required_metrics is None:
        return metrics, list(metrics)
    required = _dedupe(spec.baseline_required_metrics)
    unknown = [m for m in required if m not in known]
    if unknown:
        raise BaselineMetricError("baseline_required_metrics", f"not FG-A metric column(s): {unknown[:10]}")
    outside = [m for m in required if m not in set(metrics)]
    if outside:
        raise BaselineMetricError("baseline_required_metrics", f"not among the baseline metrics: {outside[:10]}")
    if not required:
        raise BaselineMetricError("baseline_required_metrics", "is empty; name baseline metrics or leave it unset")
    return metrics, required


def require_columns(df: DataFrame, columns: list[str] | tuple[str, ...], location: str) -> None:
    """Raise InputDataError naming the columns of ``columns`` that ``df`` lacks."""
    present = set(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InputDataError(location, f"missing column(s) {missing[:10]}{more}")


# ---------------------------------------------------------------- sorted value arrays and capping


def _sql_name(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def host_value_arrays(rows: DataFrame, metrics: list[str]) -> DataFrame:
    """Long form, one row per (host_ip, window_label, metric): ``(host_ip, window_label, metric_idx, values)``.

    ``values`` is the ascending array of the metric's values (doubles) over the host's windows of the
    time band; ``metric_idx`` is the metric's position in ``metrics``. Every (host, label) gets a row for
    every metric (an empty array when the metric has no value). Nulls and NaN are not values (they add
    no support); FG-A's contract has none.

    One aggregation collects each host-window as one array of all metrics (a single buffer per group:
    measured 2-3x faster than one ``collect_list`` per metric), then a higher-order function
    transposes and sorts per metric. Both are single SQL expressions, so building the plan costs a
    few calls whatever the number of metrics.
    """
    row_values = ", ".join(f"nanvl(CAST({_sql_name(m)} AS DOUBLE), CAST(NULL AS DOUBLE))" for m in metrics)
    per_host = rows.groupBy(*HOST_KEYS).agg(F.collect_list(F.expr(f"array({row_values})")).alias("__rows"))
    transposed = (
        f"transform(sequence(0, {len(metrics) - 1}), "
        "i -> sort_array(filter(transform(__rows, r -> r[i]), x -> x IS NOT NULL)))"
    )
    return per_host.select(*HOST_KEYS, F.posexplode(F.expr(transposed)).alias(_METRIC_IDX, "values"))


def _quantile_sql(array: str, p: float, *, count: str | None = None, first_rank: str = "0") -> str:
    """Exact quantile ``p`` (SQL) of ascending double values, numpy's 'linear' method.

    pos = p * (n - 1); lo = floor(pos); hi = min(lo + 1, n - 1); q = x[lo] + (pos - lo) * (x[hi] - x[lo]),
    x[r] being the value of rank r (0-based). ``array`` holds ranks ``first_rank`` .. n - 1 (n = ``count``,
    default its size). Null when n = 0.
    """
    n = count or f"size({array})"
    pos = f"({p!r}D * ({n} - 1))"
    lo = f"CAST(floor({pos}) AS INT)"
    hi = f"least({lo} + 1, {n} - 1)"
    x_lo, x_hi = f"{array}[{lo} - {first_rank}]", f"{array}[{hi} - {first_rank}]"
    return f"CASE WHEN {n} = 0 THEN NULL ELSE {x_lo} + ({pos} - {lo}) * ({x_hi} - {x_lo}) END"


def anomaly_caps(value_arrays: DataFrame, upper_quantile: float) -> DataFrame:
    """``(window_label, metric_idx, cap)``: the exact ``upper_quantile`` of each metric per time band over all hosts.

    Exact without gathering every value: with n values (a count per (label, metric), a small first
    aggregation), the quantile only involves ranks >= lo = floor(q * (n - 1)), i.e. the top n - lo
    values, which are among the top n - lo values of every host. Each host contributes that tail of
    its sorted array; the merged tails (sorted) hold global ranks n - L .. n - 1.
    """
    by_metric = ["window_label", _METRIC_IDX]
    counts = value_arrays.groupBy(*by_metric).agg(F.sum(F.size("values")).alias("__n"))
    n = "CAST(__n AS INT)"
    keep = f"({n} - CAST(floor({upper_quantile!r}D * ({n} - 1)) AS INT))"  # n - lo
    tails = value_arrays.join(F.broadcast(counts), by_metric).select(
        *by_metric, "__n", F.expr(f"slice(values, greatest(size(values) - {keep} + 1, 1), {keep})").alias("__tail")
    )
    merged = tails.groupBy(*by_metric).agg(
        F.first("__n").alias("__n"), F.sort_array(F.flatten(F.collect_list("__tail"))).alias("__tail")
    )
    quantile = _quantile_sql("__tail", upper_quantile, count=n, first_rank=f"({n} - size(__tail))")
    return merged.select(*by_metric, F.expr(quantile).alias("cap"))


def apply_caps(value_arrays: DataFrame, caps: DataFrame) -> DataFrame:
    """``value_arrays`` with every value capped at its (window_label, metric_idx) ``cap`` (a broadcast join).

    ``least`` keeps the arrays sorted; a null cap (a metric without values) caps nothing.
    """
    others = [c for c in value_arrays.columns if c != "values"]
    return value_arrays.join(F.broadcast(caps), ["window_label", _METRIC_IDX]).select(
        *others, F.expr("transform(values, x -> least(x, cap))").alias("values")
    )


def cap_anomalies(value_arrays: DataFrame, capping: AnomalyCapping) -> DataFrame:
    """Cap every value at its (window_label, metric) ``capping.upper_quantile`` over all hosts (winsorising).

    ``anomaly_caps`` (one small aggregation) then ``apply_caps`` (one broadcast join). Disabled
    capping, or a quantile of 1 (the maximum), returns the input unchanged.
    """
    if not _capping_on(capping):
        return value_arrays
    return apply_caps(value_arrays, anomaly_caps(value_arrays, capping.upper_quantile))


def _capping_on(capping: AnomalyCapping) -> bool:
    return capping.enabled and capping.upper_quantile < 1.0


# ---------------------------------------------------------------- statistics


def long_stats(value_arrays: DataFrame, keys: list[str] | tuple[str, ...]) -> DataFrame:
    """Per (keys, metric_idx): ``stats`` struct of BASELINE_STATS from the ascending ``values`` array.

    Quantiles by ``_quantile_sql``; MAD = the median of the sorted |x - median|; IQR = p75 - p25;
    support_count = the number of values. Other columns of ``value_arrays`` are kept.
    """
    quantiles = value_arrays.select(
        "*", *[F.expr(_quantile_sql("values", p)).alias(stat) for stat, p in QUANTILE_STATS.items()]
    )
    # Own projection: the sorted deviations are referenced four times by the median below.
    deviations = quantiles.withColumn("__dev", F.expr("sort_array(transform(values, x -> abs(x - median)))"))
    stat_columns = {
        **{stat: F.col(stat) for stat in QUANTILE_STATS},
        "mad": F.expr(_quantile_sql("__dev", 0.5)),
        "iqr": F.col("p75") - F.col("p25"),
        "support_count": F.size("values").cast("long"),
    }
    others = [c for c in value_arrays.columns if c != "values"]
    return deviations.select(*others, F.struct(*[stat_columns[s].alias(s) for s in BASELINE_STATS]).alias("stats"))


def gather_stats(stats: DataFrame, keys: list[str] | tuple[str, ...], carry: tuple[str, ...] = ()) -> DataFrame:
    """Long stats -> one row per ``keys``: ``__stats``, the metric-index-sorted list of (metric_idx, stats).

    Every key group holds one row per metric index (``host_value_arrays`` guarantees it), so metric i
    sits at position i. ``carry`` columns are constant per group.
    """
    return stats.groupBy(*keys).agg(
        F.sort_array(F.collect_list(F.struct(_METRIC_IDX, "stats"))).alias("__stats"),
        *[F.first(c).alias(c) for c in carry],
    )


def widen_stats(gathered: DataFrame, metrics: list[str], leading: list[str], trailing: list[str]) -> DataFrame:
    """``leading`` columns, ``<metric>_<stat>`` for every metric and stat (contract order), ``trailing`` columns.

    One projection (a single ``selectExpr``, no Python call per metric) into which the caller's
    ``enforce_schema`` collapses. (Measured: a ``named_struct`` expanded with ``.*`` builds no faster
    and runs 4x slower.)
    """
    fields = [
        f"__stats[{idx}].stats.{stat} AS {_sql_name(f'{metric}_{stat}')}"
        for idx, metric in enumerate(metrics)
        for stat in BASELINE_STATS
    ]
    return gathered.selectExpr(*leading, *fields, *trailing)


def _with_period(df: DataFrame, bounds: HorizonBounds) -> DataFrame:
    return df.withColumns(
        {"baseline_start_ts": F.lit(bounds.first_window_end), "baseline_end_ts": F.lit(bounds.last_window_end)}
    )


_PERIOD = ["baseline_start_ts", "baseline_end_ts"]


def host_segments(rows: DataFrame, mapping: SegmentMapping | None) -> DataFrame:
    """``(host_ip, segment_id)`` for every host of ``rows``."""
    return assign_segment(rows.select("host_ip").distinct(), "host_ip", mapping, "segment_id")


def host_baselines(
    value_arrays: DataFrame, segments: DataFrame, metrics: list[str], bounds: HorizonBounds
) -> DataFrame:
    """Host baselines, exactly ``fg_b_host_schema(metrics)``, from (capped) host value arrays and host segments.

    The segment joins the narrow statistics and is carried through the gather: with the join above
    the gather, the optimizer took 18 s over the wide projection of one horizon's table (demo data).
    """
    stats = long_stats(value_arrays, HOST_KEYS).join(F.broadcast(segments), "host_ip")
    gathered = gather_stats(stats, HOST_KEYS, carry=("segment_id",))
    wide = widen_stats(_with_period(gathered, bounds), metrics, [*HOST_KEYS, "segment_id"], _PERIOD)
    return enforce_schema(wide, fg_b_host_schema(metrics), "fg_b_host")


def segment_value_arrays(value_arrays: DataFrame, segments: DataFrame) -> DataFrame:
    """Pool host value arrays by segment: ``(segment_id, window_label, metric_idx, values, host_count)``."""
    return (
        value_arrays.join(segments, "host_ip")
        .groupBy(*SEGMENT_KEYS, _METRIC_IDX)
        .agg(
            F.sort_array(F.flatten(F.collect_list("values"))).alias("values"),
            # One row per host of the segment and time band (and metric).
            F.count(F.lit(1)).alias("host_count"),
        )
    )


def segment_baselines(
    value_arrays: DataFrame, segments: DataFrame, metrics: list[str], bounds: HorizonBounds
) -> DataFrame:
    """Segment baselines, exactly ``fg_b_segment_schema(metrics)``: the host statistics over pooled host-windows."""
    stats = long_stats(segment_value_arrays(value_arrays, segments), SEGMENT_KEYS)
    gathered = _with_period(gather_stats(stats, SEGMENT_KEYS, carry=("host_count",)), bounds)
    wide = widen_stats(gathered, metrics, [*SEGMENT_KEYS, "host_count"], _PERIOD)
    return enforce_schema(wide, fg_b_segment_schema(metrics), "fg_b_segment")


# ---------------------------------------------------------------- ip metadata (cold start)


def latest_machine_names(inventory: DataFrame) -> DataFrame:
    """``(ip, machine_name)``: per IP the name in its latest ``snapshot_month`` (YYYY-MM sorts as text)."""
    require_columns(inventory, INVENTORY_COLUMNS, "machine inventory")
    latest = (
        inventory.where(F.col("ip").isNotNull())
        .groupBy(F.trim(F.col("ip")).alias("ip"))
        # max of (month, name): the latest month; a tie inside one month takes the greater name (deterministic).
        .agg(F.max(F.struct(F.col("snapshot_month"), F.col("machine_name"))).alias("__latest"))
    )
    return latest.select("ip", F.col("__latest.machine_name").alias("machine_name"))


def _min_column(columns: list[str]) -> Column:
    # One SQL expression: a Python call per column would cost a py4j round trip each (440 by default).
    names = ", ".join(_sql_name(c) for c in columns)
    return F.expr(f"least({names})") if len(columns) > 1 else F.col(columns[0])


def host_support(value_arrays: DataFrame, segments: DataFrame, metrics: list[str], required_metrics: list[str]) -> DataFrame:
    """``(host_ip, window_label, segment_id, support_count)``: ip_metadata's input from the narrow value arrays.

    ``support_count`` = min over the required metrics of the number of values, i.e. the least of the
    host table's ``<metric>_support_count`` columns, without planning the wide host table again
    (capping leaves the array sizes unchanged, so capped or uncapped arrays give the same counts).
    """
    required_idx = [metrics.index(m) for m in required_metrics]
    support = (
        value_arrays.where(F.col(_METRIC_IDX).isin(required_idx))
        .groupBy(*HOST_KEYS)
        .agg(F.min(F.size("values")).cast("long").alias("support_count"))
    )
    return support.join(segments, "host_ip").select(*HOST_KEYS, "segment_id", "support_count")


def ip_metadata(
    host_baselines_df: DataFrame,
    inventory: DataFrame | None,
    *,
    required_metrics: list[str],
    support_min: int,
    non_persistent_prefixes: list[str],
) -> DataFrame:
    """Cold-start flags per (host_ip, window_label): exactly ``FG_B_IP_METADATA_SCHEMA``.

    ``host_baselines_df`` is the host table (or any frame with host_ip, window_label, segment_id and
    ``<metric>_support_count`` of the required metrics). ``inventory`` has ip, machine_name,
    snapshot_month; None means no inventory (no name, not non-persistent).
    """
    if not required_metrics:
        raise ValueError("required_metrics is empty")
    support_columns = [f"{m}_support_count" for m in required_metrics]
    require_columns(host_baselines_df, [*HOST_KEYS, "segment_id", *support_columns], "fg_b host baselines")
    base = host_baselines_df.select(*HOST_KEYS, "segment_id", _min_column(support_columns).alias("support_count"))
    return cold_start_flags(base, inventory, support_min=support_min, non_persistent_prefixes=non_persistent_prefixes)


def cold_start_flags(
    support: DataFrame, inventory: DataFrame | None, *, support_min: int, non_persistent_prefixes: list[str]
) -> DataFrame:
    """ip_metadata (``FG_B_IP_METADATA_SCHEMA``) from ``(host_ip, window_label, segment_id, support_count)``."""
    if inventory is None:
        named = support.withColumn("machine_name", F.lit(None).cast("string"))
    else:
        names = latest_machine_names(inventory).withColumnRenamed("ip", "__inventory_ip")
        named = support.join(names, F.col("host_ip") == F.col("__inventory_ip"), "left").drop("__inventory_ip")
    name = F.lower(F.col("machine_name"))
    non_persistent = F.lit(False)
    for prefix in non_persistent_prefixes:
        non_persistent = non_persistent | name.startswith(prefix.lower())
    flags = named.withColumns(
        {
            "is_full_history": (F.col("support_count") >= F.lit(support_min)).cast("int"),
            # A null name (IP not in the inventory) is not a non-persistent machine.
            "is_non_persistent_machine": F.coalesce(non_persistent, F.lit(False)).cast("int"),
        }
    )
    result = flags.withColumn(
        "is_cold_start", ((F.col("is_full_history") == 0) | (F.col("is_non_persistent_machine") == 1)).cast("int")
    )
    return enforce_schema(result, FG_B_IP_METADATA_SCHEMA, "fg_b_ip_metadata")


# ---------------------------------------------------------------- top level


@dataclass
class FgBFrames:
    """The three FG-B tables of one horizon (lazy DataFrames) and what they were built from."""

    host: DataFrame
    segment: DataFrame
    ip_metadata: DataFrame
    metrics: list[str]
    required_metrics: list[str]
    horizon: str
    days: int
    gap_days: int
    bounds: HorizonBounds
    rows: DataFrame  # FG-A rows of the horizon
    _persisted: list[DataFrame] = field(default_factory=list, repr=False)

    def counters(self) -> dict[str, int]:
        """Rows and hosts of the horizon, host-labels and their flags: two small aggregate jobs."""
        rows = self.rows.agg(
            F.count(F.lit(1)).alias("rows_in_horizon"), F.countDistinct("host_ip").alias("hosts")
        ).first()
        meta = self.ip_metadata.agg(
            F.count(F.lit(1)).alias("host_labels"),
            F.coalesce(F.sum("is_cold_start"), F.lit(0)).alias("cold_start_host_labels"),
            F.coalesce(F.sum(1 - F.col("is_full_history")), F.lit(0)).alias("short_history_host_labels"),
            F.coalesce(F.sum("is_non_persistent_machine"), F.lit(0)).alias("non_persistent_host_labels"),
        ).first()
        return {k: int(v) for k, v in {**rows.asDict(), **meta.asDict()}.items()}

    def unpersist(self) -> None:
        """Release the cached value arrays and caps once the tables are written."""
        for df in self._persisted:
            df.unpersist()
        self._persisted.clear()

    def __enter__(self) -> FgBFrames:
        return self

    def __exit__(self, *exc_info) -> None:
        self.unpersist()


def build_fg_b(
    fg_a: DataFrame, inventory: DataFrame | None, spec: FgBBuilderSpec, *, horizon: str, baseline_end: datetime
) -> FgBFrames:
    """FG-B host, segment and ip_metadata tables of one horizon for the month starting at ``baseline_end``.

    Raises BaselineMetricError (ValueError, ``key`` = the spec key) for metric names that are not FG-A
    metric columns, InputDataError when ``fg_a`` lacks a key or metric column.
    """
    metrics, required = resolve_baseline_metrics(spec)
    require_columns(fg_a, [*FG_A_KEYS, *metrics], "FG-A input")
    days, gap_days = spec.days_of(horizon), spec.safety_gaps.get(horizon, 0)
    bounds = horizon_bounds(baseline_end, days, gap_days)
    rows = fg_a.where(in_horizon(F.col("window_end_ts"), bounds))
    # The caps, the host and the segment tables all read the arrays: compute them once. The capped
    # arrays stay a lazy transform of the cached ones (cheaper than a second cache of the same size).
    value_arrays = uncapped = host_value_arrays(rows, metrics).persist(StorageLevel.MEMORY_AND_DISK)
    persisted = [value_arrays]
    if _capping_on(spec.anomaly_capping):
        caps = anomaly_caps(value_arrays, spec.anomaly_capping.upper_quantile).persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(caps)
        value_arrays = apply_caps(value_arrays, caps)
    segments = host_segments(rows, spec.segment_mapping)
    host = host_baselines(value_arrays, segments, metrics, bounds)
    segment = segment_baselines(value_arrays, segments, metrics, bounds)
    # From the cached arrays, not the wide host table: that plan (thousands of columns) is costly to
    # plan and run again for a few support counts.
    metadata = cold_start_flags(
        host_support(uncapped, segments, metrics, required),
        inventory,
        support_min=spec.support_min_of(horizon),
        non_persistent_prefixes=spec.non_persistent_machine_prefixes,
    )
    return FgBFrames(host, segment, metadata, metrics, required, horizon, days, gap_days, bounds, rows, persisted)
