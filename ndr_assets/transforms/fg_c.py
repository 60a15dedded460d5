"""FG-C: each FG-A row compared with the monthly baseline chosen for its host (spec 003 items 8, 11, 15, 16).

Inputs
    ``fg_a`` rows (``fg_a_schema()``); per horizon of ``spec.horizons`` the FG-B tables
    (:class:`BaselineTables`: ``fg_b_host_schema``, ``fg_b_segment_schema``, ``FG_B_IP_METADATA_SCHEMA``,
    ``PAIR_RARITY_HOST_SCHEMA``, ``PAIR_RARITY_SEGMENT_SCHEMA``, each plus a ``baseline_month``
    string ``YYYY-MM``); optionally the ``pair_counts`` of the windows. Output: exactly
    ``fg_c_schema(...)`` of :func:`resolve_fg_c_lists`.

Baseline month
    The month of the window START in UTC: ``date_format(window_end_ts - 15 min, 'yyyy-MM')`` (the
    session time zone is UTC). Partition ``2026-02`` of FG-B is computed from windows before
    February and serves February's windows.

Route (per host, window_label, baseline month, decided separately for every horizon)
    ``ip_metadata.is_cold_start == 0``: the host's own baselines (``baseline_source = 'host'``);
    ``is_cold_start == 1`` (short history or non-persistent machine) or no ip_metadata row (new
    host): the baselines of the host's segment (``'segment'``) - the ip_metadata row's
    ``segment_id``, else ``assign_segment`` with ``spec.segment_mapping``. The output's
    ``segment_id``, ``baseline_source`` and ``is_cold_start`` (1 on the segment route) describe the
    main horizon (the first), which also feeds every suspicion feature; a further horizon's
    transform columns (suffix ``_bl<horizon>``) use the route of that horizon's own ip_metadata, so
    a host with 30 days of history but none in the last 7 uses its segment's 7-day baseline.
    A routed key without its baseline row is a failure (:class:`InputDataError` with up to five
    examples), never zeros: item 15 allows imputation for cold start only, and only from a segment
    baseline that exists.

One pass
    The route is decided on the distinct ``(host_ip, window_label, baseline_month)`` keys of FG-A
    (a small frame, materialized once with ``localCheckpoint`` because three queries read it). Per
    horizon the keys are split into the host and the segment sub-frame, each joins its own baseline
    table, and the two are unioned; FG-A joins the result once and the features are computed once
    over the union. One aggregation over the routed keys gives the counters and the
    missing-baseline check (nothing is computed twice for the two routes); one more counts pairs.

Counters
    ``host_windows`` (FG-A rows), ``host_baseline``, ``segment_cold_start`` (ip_metadata says cold
    start), ``segment_no_history`` (no ip_metadata row), ``time_band_violations``, then for a further
    horizon ``host_baseline_bl<h>`` / ``segment_cold_start_bl<h>`` / ``segment_no_history_bl<h>``;
    pairs: ``pair_counts_missing`` (1 when no pair counts were given: pair features are 0),
    ``pairs``, ``pairs_host``, ``pairs_segment_imputed``, ``pairs_segment_cold_start``,
    ``pairs_zero_filled``.

Performance (~100 FG-A rows, 440 metrics x 3 transforms; 2 cores shared with other Spark jobs)
    Carrying 440 FG-A columns and 1,320-2,640 baseline stat columns through the route joins and the
    union made every operator 1,400-3,000 columns wide; Spark compiles a projection per wide
    operator (whole-stage code generation stops at 100 fields): build ~12 s + write ~17 s. Now FG-A
    values travel as one array and each baseline stat as one array (``fg_c_sql.FgCLayout``), each
    transform is one higher-order ``transform`` over the metric positions (per horizon), and only
    the last projection, which picks the elements into named columns, is wide: build ~3.5 s
    (the two counter queries) + write ~3-5 s, warm JVM. All SQL is text passed to ``selectExpr``
    (one call into the JVM instead of one per ``Column`` operator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms import fg_c_suspicion as suspicion
from ndr_assets.transforms.fg_c_sql import TRANSFORM_FORMULAS, FgCLayout, quoted, transform_array
from ndr_assets.transforms.schemas import (
    DEFAULT_RARE_PAIR_METRICS,
    DEFAULT_SUSPICION_METRICS,
    PAIR_COUNTS_SCHEMA,
    PAIR_RARITY_VALUE_COLUMNS,
    curated_fg_c_columns,
    enforce_schema,
    fg_a_metric_columns,
    fg_c_feature_name,
    fg_c_schema,
    horizon_suffix,
)
from ndr_assets.transforms.segments import assign_segment
from ndr_resources.errors import InputDataError
from ndr_resources.specs import FgCBuilderSpec

FORMULAS: dict[str, str] = {
    "baseline_month": "date_format(window_end_ts - 15 minutes, 'yyyy-MM') in UTC (month of the window start)",
    "segment_id": "fg_b_ip_metadata.segment_id of the host, else segments.assign_segment(host_ip, fg_c_builder.segment_mapping)",
    "baseline_source": "'host' if ip_metadata.is_cold_start = 0, else 'segment' (cold start or no ip_metadata row)",
    "is_cold_start": "1 on the segment route (ip_metadata.is_cold_start = 1 or no ip_metadata row), else 0",
    **TRANSFORM_FORMULAS,
    **suspicion.FORMULAS,
}

KEY = ["host_ip", "window_label", "baseline_month"]
MISSING_EXAMPLES = 5


class UnknownFgCMetric(ValueError):
    """A name in a spec metric list is not an FG-A metric column; ``key`` is the spec key."""

    def __init__(self, key: str, names: list[str]):
        self.key = key
        self.names = names
        super().__init__(f"{key}: {names} not FG-A metric column(s) (<[in_]metric>_<w_15m|w_30m|w_1h|w_8h|w_24h>)")


@dataclass(frozen=True)
class BaselineTables:
    """FG-B tables of one horizon, each with a ``baseline_month`` (``YYYY-MM``) column."""

    host: DataFrame
    segment: DataFrame
    ip_metadata: DataFrame
    pair_host: DataFrame
    pair_segment: DataFrame


@dataclass(frozen=True)
class FgCResult:
    features: DataFrame  # exactly fg_c_schema(...) of resolve_fg_c_lists(spec)
    counters: dict[str, int]
    metric_columns: list[str]


@dataclass(frozen=True)
class FgCColumnLists:
    """What an FG-C spec resolves to: the arguments of ``fg_c_schema``."""

    metric_columns: list[str]
    transforms: list[str]
    horizons: list[str]
    suspicion_metrics: list[str]
    rare_pair_metrics: list[str]

    def schema(self) -> T.StructType:
        return fg_c_schema(
            self.metric_columns, self.transforms, self.horizons, self.suspicion_metrics, self.rare_pair_metrics
        )


def resolve_fg_c_lists(spec: FgCBuilderSpec) -> FgCColumnLists:
    """Curated 440 columns plus ``spec.metrics`` (augment, order kept), defaults for the metric lists.

    Raises :class:`UnknownFgCMetric` (a ValueError) naming a metric that is not an FG-A metric
    column and its spec key (``metrics``/``suspicion_metrics``/``rare_pair_metrics``), which the
    caller reports as a SpecError.
    """
    known = set(fg_a_metric_columns())
    suspicion_metrics = list(DEFAULT_SUSPICION_METRICS if spec.suspicion_metrics is None else spec.suspicion_metrics)
    rare_pair_metrics = list(DEFAULT_RARE_PAIR_METRICS if spec.rare_pair_metrics is None else spec.rare_pair_metrics)
    for key, names in (
        ("metrics", spec.metrics),
        ("suspicion_metrics", suspicion_metrics),
        ("rare_pair_metrics", rare_pair_metrics),
    ):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UnknownFgCMetric(key, unknown)
    return FgCColumnLists(
        metric_columns=list(dict.fromkeys(curated_fg_c_columns() + list(spec.metrics))),
        transforms=list(spec.transforms),
        horizons=list(spec.horizons),
        suspicion_metrics=list(dict.fromkeys(suspicion_metrics)),
        rare_pair_metrics=list(dict.fromkeys(rare_pair_metrics)),
    )


def fg_c_output_schema(spec: FgCBuilderSpec) -> T.StructType:
    """The schema FG-C writes for ``spec`` (for the catalog and the schema checks)."""
    return resolve_fg_c_lists(spec).schema()


def fg_c_columns(spec: FgCBuilderSpec) -> list[str]:
    """The column names FG-C writes for ``spec``, in order."""
    return fg_c_output_schema(spec).fieldNames()


def baseline_month(window_end_ts: Column) -> Column:
    """``YYYY-MM`` of the window start (``date_format`` uses the session time zone: UTC on NDR sessions)."""
    return F.date_format(window_end_ts - F.expr("INTERVAL 15 MINUTES"), "yyyy-MM")


def build_fg_c(
    fg_a: DataFrame,
    baselines: dict[str, BaselineTables],
    pair_counts: DataFrame | None,
    spec: FgCBuilderSpec,
) -> FgCResult:
    """FG-C features of the FG-A rows (lazy) and the imputation counters (computed now).

    ``baselines`` maps every horizon of ``spec.horizons`` to its tables. Raises ValueError for a
    metric name that is not an FG-A column, InputDataError for a missing input column, a FG-C
    metric without FG-B stats, or a routed key without its baseline row. See the module doc.
    """
    lists = resolve_fg_c_lists(spec)
    layout = fg_c_layout(lists)
    _require(fg_a, ["host_ip", "window_label", "window_end_ts", *layout.fg_a_columns], "FG-A")
    for index, horizon in enumerate(lists.horizons):
        if horizon not in baselines:
            raise InputDataError(f"FG-B horizon '{horizon}'", "no baseline tables given for this horizon")
        _require_baseline_tables(baselines[horizon], horizon, layout.stats_of(index))
    if pair_counts is not None:
        _require(pair_counts, PAIR_COUNTS_SCHEMA.fieldNames(), "pair_counts")

    month = baseline_month(F.col("window_end_ts")).alias("baseline_month")
    rows = fg_a.select("host_ip", "window_label", "window_end_ts", month, F.expr(layout.x_array_sql()))
    keys = rows.groupBy(*KEY).agg(F.count(F.lit(1)).alias("__windows"))
    keys = assign_segment(keys, "host_ip", spec.segment_mapping, "__mapped_segment")
    routes = _routes(keys, baselines, lists.horizons).localCheckpoint()
    found = _attach(routes, baselines, lists.horizons, lambda index: [f"1 AS __found{index}"])
    counters = _route_counters(found, lists.horizons)

    stats = _attach(routes, baselines, lists.horizons, layout.stat_arrays_sql)
    joined = rows.join(stats, KEY, "inner")
    if pair_counts is None:
        counters |= {"pair_counts_missing": 1, "pairs": 0} | {f"pairs_{s}": 0 for s in suspicion.RARITY_SOURCES}
        joined = joined.withColumn("__rare_pair_flag", F.lit(0)).withColumn("__rare_pair_session_share", F.lit(0.0))
    else:
        main = baselines[lists.horizons[0]]
        window_routes = rows.select("host_ip", "window_end_ts", *KEY[1:]).join(
            routes.selectExpr(*KEY, "__segment0 AS segment_id", "__source0 AS baseline_source"), KEY, "inner"
        )
        pairs = suspicion.window_pair_rarity(window_routes, pair_counts, main.pair_host, main.pair_segment)
        counters |= {"pair_counts_missing": 0} | suspicion.pair_counters(pairs)
        per_window = suspicion.window_rare_pair_features(pairs)
        joined = (
            joined.join(per_window, ["host_ip", "window_end_ts"], "left")
            .withColumn("__rare_pair_flag", F.coalesce("__rare_pair_flag", F.lit(0)))
            .withColumn("__rare_pair_session_share", F.coalesce("__rare_pair_session_share", F.lit(0.0)))
        )

    features = _features(joined, lists, layout, spec.eps, spec.z_max)
    return FgCResult(enforce_schema(features, lists.schema(), "fg_c"), counters, lists.metric_columns)


# ---------------------------------------------------------------- inputs


def fg_c_layout(lists: FgCColumnLists) -> FgCLayout:
    """Columns FG-C reads: output metrics, suspicion and rare-pair metrics, the two scores' inputs."""
    scores = [suspicion.BEACON_Z_COLUMN, suspicion.EXFIL_Z_COLUMN]
    z_columns = lists.suspicion_metrics + lists.rare_pair_metrics + scores
    extra = [suspicion.BEACON_SHARE_COLUMN, suspicion.EXFIL_ASYMMETRY_COLUMN]
    return FgCLayout(lists.horizons, lists.metric_columns, z_columns, lists.suspicion_metrics, extra)


def _require(df: DataFrame, columns: list[str], what: str) -> None:
    present = set(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        raise InputDataError(what, f"missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''}")


def _require_baseline_tables(tables: BaselineTables, horizon: str, stats: dict[str, list[str]]) -> None:
    where = f"FG-B horizon '{horizon}'"
    _require(tables.ip_metadata, [*KEY, "segment_id", "is_cold_start", "is_full_history"], f"{where} ip_metadata")
    pair_values = list(PAIR_RARITY_VALUE_COLUMNS)
    _require(tables.pair_host, ["host_ip", "dst_ip", "dst_port", "baseline_month", *pair_values], f"{where} pair_host")
    _require(
        tables.pair_segment,
        ["segment_id", "dst_ip", "dst_port", "baseline_month", *pair_values],
        f"{where} pair_segment",
    )
    for name, table, key in (("host", tables.host, "host_ip"), ("segment", tables.segment, "segment_id")):
        _require(table, [key, "window_label", "baseline_month"], f"{where} {name}")
        present = set(table.columns)
        for column, needed in stats.items():
            missing = [f"{column}_{stat}" for stat in needed if f"{column}_{stat}" not in present]
            if missing:
                raise InputDataError(
                    f"{where} {name} baselines",
                    f"FG-C metric '{column}' has no baseline stats {missing}; FG-B must baseline every FG-C metric",
                )


# ---------------------------------------------------------------- routing


def _routes(keys: DataFrame, baselines: dict[str, BaselineTables], horizons: list[str]) -> DataFrame:
    """Per key and horizon number i: ``__source<i>`` (host | segment), ``__reason<i>``, ``__segment<i>``.

    Also ``__full_history<i>`` (of this label) and ``__any_full_history`` (main horizon, any label).
    """
    routes = keys
    for index, horizon in enumerate(horizons):
        meta = baselines[horizon].ip_metadata.select(
            *KEY,
            F.col("segment_id").alias("__meta_segment"),
            F.col("is_cold_start").alias("__meta_cold_start"),
            F.col("is_full_history").alias(f"__full_history{index}"),
        )
        cold = F.col("__meta_cold_start")
        routes = (
            routes.join(meta, KEY, "left")
            .withColumn(f"__segment{index}", F.coalesce("__meta_segment", "__mapped_segment"))
            .withColumn(f"__source{index}", F.when(cold == 0, "host").otherwise("segment"))
            .withColumn(
                f"__reason{index}",
                F.when(cold == 0, "host").when(cold.isNull(), "segment_no_history").otherwise("segment_cold_start"),
            )
            .drop("__meta_segment", "__meta_cold_start")
        )
    main_metadata = baselines[horizons[0]].ip_metadata
    return routes.join(_history_by_month(main_metadata), ["host_ip", "baseline_month"], "left")


def _attach(
    routes: DataFrame, baselines: dict[str, BaselineTables], horizons: list[str], values: Callable[[int], list[str]]
) -> DataFrame:
    """``routes`` plus, per horizon, ``values(i)`` (SQL over an FG-B table) of the routed table.

    The one-pass selection: the keys are split into the host and the segment sub-frame, each joins
    its own table, and the two are unioned. A key without its row gets nulls (checked by the caller).
    """
    out = routes
    for index, horizon in enumerate(horizons):
        tables = baselines[horizon]
        segment, source = f"__segment{index}", f"__source{index}"
        keys = routes.select(*KEY, segment, source)
        host_values = tables.host.selectExpr(*KEY, *values(index))
        segment_values = tables.segment.selectExpr(
            f"segment_id AS {segment}", "window_label", "baseline_month", *values(index)
        )
        on_host = keys.where(F.col(source) == "host").join(host_values, KEY, "left")
        on_segment = keys.where(F.col(source) == "segment").join(
            segment_values, [segment, "window_label", "baseline_month"], "left"
        )
        out = out.join(on_host.unionByName(on_segment).drop(segment, source), KEY, "inner")
    return out


def _history_by_month(ip_metadata: DataFrame) -> DataFrame:
    """``__any_full_history`` per (host, month): 1 if some window_label has a full history."""
    return ip_metadata.groupBy("host_ip", "baseline_month").agg(
        F.max("is_full_history").alias("__any_full_history")
    )


def _route_counters(routes: DataFrame, horizons: list[str]) -> dict[str, int]:
    """ONE aggregation: windows per route and horizon, time band violations, missing baselines (raise)."""
    windows = F.col("__windows")
    aggregates = [F.sum(windows).alias("host_windows")]
    violation = (F.col("__any_full_history") == 1) & (F.coalesce(F.col("__full_history0"), F.lit(0)) == 0)
    aggregates.append(F.sum(F.when(violation, windows).otherwise(0)).alias("time_band_violations"))
    for index, horizon in enumerate(horizons):
        suffix = horizon_suffix(horizons, horizon)
        for reason in ("host", "segment_cold_start", "segment_no_history"):
            name = "host_baseline" if reason == "host" else reason
            hit = F.col(f"__reason{index}") == reason
            aggregates.append(F.sum(F.when(hit, windows).otherwise(0)).alias(f"{name}{suffix}"))
        missing = F.col(f"__found{index}").isNull()
        example = F.concat_ws(
            " ",
            F.concat(F.lit("host "), F.col("host_ip")),
            F.concat(F.lit("segment "), F.col(f"__segment{index}")),
            F.concat(F.lit("label "), F.col("window_label")),
            F.concat(F.lit("month "), F.col("baseline_month")),
            F.concat(F.lit("("), F.col(f"__reason{index}"), F.lit(")")),
        )
        aggregates.append(F.sum(F.when(missing, 1).otherwise(0)).alias(f"__missing{index}"))
        aggregates.append(
            F.slice(F.array_sort(F.collect_list(F.when(missing, example))), 1, MISSING_EXAMPLES).alias(
                f"__examples{index}"
            )
        )
    row = routes.agg(*aggregates).first().asDict()
    for index, horizon in enumerate(horizons):
        if row[f"__missing{index}"]:
            raise InputDataError(
                f"FG-B horizon '{horizon}'",
                f"{row[f'__missing{index}']} FG-A key(s) have no baseline row on their route "
                f"(host route: host table; segment route: segment table), e.g. {row[f'__examples{index}']}; "
                "FG-C never fills missing baselines with zeros",
            )
    return {name: int(value or 0) for name, value in row.items() if not name.startswith("__")}


# ---------------------------------------------------------------- features


def _features(joined: DataFrame, lists: FgCColumnLists, layout: FgCLayout, eps: float, z_max: float) -> DataFrame:
    """Every output column, in ``fg_c_schema`` order: transform arrays first, then one wide projection."""
    arrays = [
        item
        for index in range(len(lists.horizons))
        for item in layout.transform_arrays_sql(index, lists.transforms, eps, z_max)
    ]
    items = [
        "host_ip",
        "window_label",
        "window_end_ts",
        "__segment0 AS segment_id",
        "__source0 AS baseline_source",
        "CAST(CASE WHEN __source0 = 'segment' THEN 1 ELSE 0 END AS INT) AS is_cold_start",
    ]
    for index in range(len(lists.horizons)):
        suffix = layout.suffix(index)
        for k, column in enumerate(lists.metric_columns):
            for transform in lists.transforms:
                name = fg_c_feature_name(transform, column, suffix)
                items.append(f"{quoted(transform_array(index, transform))}[{k}] AS {quoted(name)}")
    items += suspicion.suspicion_sql(layout, lists.suspicion_metrics, lists.rare_pair_metrics, eps, z_max)
    return joined.selectExpr("*", *arrays).selectExpr(*items)
