"""FG-C of one tenant project: each 15-minute window's FG-A compared with the baselines of its month.

FG-C's windows start in the first baseline month (a project's first month has no FG-B). A window
reads the FG-B partition of the month its window starts in (the monthly partitions are keyed by the
month of USE, see ``ndr_assets.baselines``), so the 15-minute -> monthly dependency is the default
same-month mapping and the body never computes "the previous month".
"""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets import checks
from ndr_assets.baselines.datasets import baseline_partition, fg_b_table_uri, month_label, month_start_of
from ndr_assets.contracts import dataset_contract
from ndr_assets.datasets import (
    read_required_windows,
    window_partitions,
    with_partitions_of_window_end,
)
from ndr_assets.naming import FG_B_TABLES, FG_C, asset_key, group_name_for
from ndr_assets.partitions import correlation_partitions, first_baseline_month
from ndr_assets.publishing import cached, publish_dataset
from ndr_assets.transforms.fg_c import BaselineTables, build_fg_c, resolve_fg_c_lists
from ndr_assets.transforms.fg_c_sql import quoted
from ndr_assets.transforms.schemas import (
    FG_B_IP_METADATA_SCHEMA,
    PAIR_COUNTS_SCHEMA,
    PAIR_RARITY_HOST_SCHEMA,
    PAIR_RARITY_SEGMENT_SCHEMA,
    fg_a_schema,
    fg_b_host_schema,
    fg_b_segment_schema,
)
from ndr_assets.transforms.windows import window_starts
from ndr_resources.errors import InputDataError, SpecError
from ndr_resources.lake import Lake, join_uri
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgCBuilderSpec

FG_C_KEYS = ["host_ip", "window_label", "window_end_ts"]
NULL_RATE = "null_rate_zero"


def _fg_b_fallback_schemas(metric_columns: list[str]) -> dict:
    return {
        "host": fg_b_host_schema(metric_columns),
        "segment": fg_b_segment_schema(metric_columns),
        "ip_metadata": FG_B_IP_METADATA_SCHEMA,
        "pair_rarity_host": PAIR_RARITY_HOST_SCHEMA,
        "pair_rarity_segment": PAIR_RARITY_SEGMENT_SCHEMA,
    }


def _read_baselines(session, lake: Lake, spec: FgCBuilderSpec, project: ProjectConfig, months, metric_columns):
    """FG-B tables of every (horizon, month) the windows need, each with its ``baseline_month``."""
    fallback = _fg_b_fallback_schemas(metric_columns)
    baselines = {}
    for horizon in spec.horizons:
        frames: dict[str, DataFrame | None] = dict.fromkeys(FG_B_TABLES)
        for month in months:
            partition = baseline_partition(project.feature_spec_version, horizon, month)
            for table in FG_B_TABLES:
                table_uri = fg_b_table_uri(spec.fg_b_input.s3_prefix, table)
                uri = join_uri(table_uri, partition.path()) + "/"
                if not lake.is_published(table_uri, partition):
                    raise dg.Failure(
                        description=(
                            f"{project.project_name}: FG-C needs FG-B {table} for {month_label(month)} horizon {horizon} "
                            f"({uri}), which is not published; materialize FG-B for {month_label(month)} first."
                        )
                    )
                has_files = any(o.endswith(".parquet") for o in lake.list_objects(uri))
                df = session.read.parquet(lake.spark_uri(uri)) if has_files else session.createDataFrame([], fallback[table])
                df = df.withColumn("baseline_month", F.lit(month_label(month)))
                frames[table] = df if frames[table] is None else frames[table].unionByName(df)
        baselines[horizon] = BaselineTables(
            host=frames["host"], segment=frames["segment"], ip_metadata=frames["ip_metadata"],
            pair_host=frames["pair_rarity_host"], pair_segment=frames["pair_rarity_segment"],
        )
    return baselines


def _bad_values_sql(columns: list[str]) -> str:
    """SQL counting a row's feature values that are NaN or infinite (FG-C columns are non-null by contract).

    One flat array per row (a higher-order ``filter`` in the JVM): adding 1,300 column expressions
    would nest 1,300 levels deep and overflow Catalyst's stack. SQL text, not ``Column`` objects:
    one py4j call instead of several per feature (~6 s for 1,359 columns).
    """
    if not columns:
        return "0"
    values = ", ".join(f"CAST({quoted(c)} AS DOUBLE)" for c in columns)
    return f"size(filter(array({values}), x -> isnan(x) OR abs(x) = CAST('Infinity' AS DOUBLE)))"


def build_correlation_assets(
    *, project: ProjectConfig, fg_a_key: dg.AssetKey, pair_counts_key: dg.AssetKey, fg_b_keys: dict[str, dg.AssetKey]
) -> list[dg.AssetsDefinition]:
    """FG-C of one project on its own 15-minute partitions (from the first baseline month)."""
    key = asset_key(project.project_name, FG_C)
    partitions_def = correlation_partitions(project.start)

    @dg.asset(
        key=key,
        group_name=group_name_for(project.project_name),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "parquet"},
        deps=[fg_a_key, pair_counts_key, *fg_b_keys.values()],
        check_specs=[
            *checks.check_specs(key),
            dg.AssetCheckSpec(NULL_RATE, asset=key, blocking=True,
                              description="No FG-C feature value is NaN or infinite (imputation is explicit, never silent)."),
        ],
        description=(
            f"FG-C for project {project.project_name}: per host-window, FG-A compared with the host's (or, for "
            "cold-start hosts, the segment's) baseline of the month: z_mad, ratio, log_ratio per curated metric, "
            f"suspicion scores and rare-pair features. Starts {first_baseline_month(project.start):%Y-%m}."
        ),
    )
    def fg_c(
        context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource
    ) -> dg.MaterializeResult:
        item = versioned_job_key("fg_c_builder", project.feature_spec_version)
        spec = parameter_store.load_typed_spec(FgCBuilderSpec, project.project_name, "fg_c_builder",
                                               project.feature_spec_version)
        try:
            lists = resolve_fg_c_lists(spec)
        except ValueError as exc:  # names the key: metrics, suspicion_metrics or rare_pair_metrics
            raise SpecError(project.project_name, item, str(exc).split(":", 1)[0], str(exc)) from None
        window = context.partition_time_window
        starts = window_starts(window.start, window.end)
        partitions = window_partitions(starts)
        session = spark.session()
        needed_by = f"{project.project_name}: FG-C"
        fg_a = read_required_windows(session, lake, spec.fg_a_input.s3_prefix, partitions, fg_a_schema(),
                                     needed_by=needed_by, dataset="fg_a")
        pairs = None
        if spec.pair_counts is not None:
            pairs = read_required_windows(session, lake, spec.pair_counts.s3_prefix, partitions, PAIR_COUNTS_SCHEMA,
                                          needed_by=needed_by, dataset="pair_counts")
        months = sorted({month_start_of(start) for start in starts})
        baselines = _read_baselines(session, lake, spec, project, months, lists.metric_columns)
        # FG-A is read by the routing keys, the counters, the features and the row count; the pair counts by
        # the rarity counters and the rare-pair features: read each once.
        with cached(fg_a, pairs):
            try:
                result = build_fg_c(fg_a, baselines, pairs, spec)
            except InputDataError as exc:
                raise dg.Failure(description=f"{project.project_name}: FG-C cannot use its inputs: {exc}") from None
            output = spec.fg_c_output.s3_prefix
            contract = dataset_contract("fg_c", fg_c_spec=spec)
            feature_columns = [f.name for f in contract.fields if f.dataType.typeName() == "double"]
            features = publish_dataset(
                result.features, dataset="fg_c", fg_c_spec=spec, lake=lake, location=output, partitions=partitions,
                keys=FG_C_KEYS, with_partition_columns=lambda df: with_partitions_of_window_end(df, "window_end_ts"),
                preview_columns=["host_ip", "window_end_ts", "baseline_source", "z_mad_sessions_cnt_w_15m",
                                 "anomaly_strength_core", "beacon_suspicion_score", "exfiltration_suspicion_score",
                                 "rare_pair_flag"],
                measure=_bad_values_sql(feature_columns),
            )
            rows_out, bad_values = features.rows_out, features.measured
            rows_in = fg_a.count()
            counters = {k: int(v) for k, v in result.counters.items()}
            context.log.info(
                f"{project.project_name}: FG-C {len(starts)} window(s), {rows_out} rows; baseline choice and imputation: {counters}"
            )
            return dg.MaterializeResult(
                metadata={
                    "windows": len(starts),
                    "rows_in": rows_in,
                    "rows_out": rows_out,
                    "columns": len(contract.fields),
                    "baseline_months": ", ".join(month_label(m) for m in months),
                    "horizons": ", ".join(spec.horizons),
                    "imputation": dg.MetadataValue.json(counters),
                    "cold_start_host_windows": counters.get("segment_cold_start", 0) + counters.get("segment_no_history", 0),
                    "location": dg.MetadataValue.path(output),
                    "preview": dg.MetadataValue.md(features.preview),
                },
                check_results=[
                    *features.check_results(),
                    checks.row_count_check(rows_out == rows_in, rows_in=rows_in, rows_out=rows_out),
                    dg.AssetCheckResult(check_name=NULL_RATE, passed=bad_values == 0,
                                        metadata={"nan_or_infinite_values": bad_values, "feature_columns": len(feature_columns)}),
                ],
            )

    return [fg_c]

