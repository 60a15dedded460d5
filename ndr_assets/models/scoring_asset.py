"""Scores of one project's 15-minute windows, and their join with the features.

``predictions`` reads each window's FG-A and FG-C, sends the model's features to the model endpoint
in payloads within both limits, and writes predictions only (keys, score, label, lineage, top
contributing features). A window scores with the model of its month (``if_model`` is keyed by the
month it scores, so this is the default same-month mapping). ``prediction_feature_join`` is
separate (spec 003 item 14): predictions inner-joined with the features, to S3 or Redshift.
"""

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets import checks
from ndr_assets.baselines.datasets import month_label, month_start_of
from ndr_assets.datasets import read_required_windows, window_partitions, with_partitions_of_window_end
from ndr_assets.models.schemas import PREDICTIONS_SCHEMA
from ndr_assets.naming import IF_MODEL, PREDICTION_FEATURE_JOIN, PREDICTIONS, asset_key, group_name_for
from ndr_assets.partitions import correlation_partitions, next_month_start, training_range
from ndr_assets.transforms.prediction_join import join_predictions_with_features
from ndr_assets.transforms.schemas import enforce_schema, fg_a_schema
from ndr_assets.transforms.windows import SLICE_MINUTES, window_starts
from ndr_resources.errors import InputDataError
from ndr_resources.lake import Lake, join_uri
from ndr_resources.model_endpoint import ModelEndpoint
from ndr_resources.model_specs import IfTrainingSpec, InferencePredictionsSpec, PredictionFeatureJoinSpec
from ndr_resources.parameter_store.base import ParameterStore
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgCBuilderSpec
from ndr_resources.warehouse import Warehouse

KEYS = ["host_ip", "window_label", "window_end_ts"]
EVERY_FG_C_ROW_SCORED = "every_fg_c_row_scored"
SCORE_DISTRIBUTION_SANE = "score_distribution_sane"
JOIN_ROWS_MATCH_PREDICTIONS = "join_rows_match_predictions"


def versioned_uri(prefix: str, feature_spec_version: str) -> str:
    """Where one feature-spec version's dt/window partitions live under a model dataset's prefix."""
    return join_uri(prefix, f"feature_spec_version={feature_spec_version}") + "/"


def _read_features(session, lake: Lake, inputs, fg_c_spec: FgCBuilderSpec, partitions, *, needed_by: str):
    """FG-A and FG-C of the windows; a required input's unpublished window fails naming it, an optional
    one's leaves those windows unscored (returned so the run says which)."""
    from ndr_assets.transforms.fg_c import resolve_fg_c_lists

    schemas = {"fg_a": fg_a_schema(), "fg_c": resolve_fg_c_lists(fg_c_spec).schema()}
    frames, skipped = {}, set()
    for dataset in ("fg_a", "fg_c"):
        frame, missing = lake.read_partitions(session, inputs[dataset].s3_prefix, partitions, schemas[dataset])
        if missing and inputs[dataset].required:
            raise dg.Failure(
                f"{needed_by} needs {dataset} for {len(missing)} window(s) that are not published, "
                f"e.g. {[m.label() for m in missing[:5]]}; materialize {dataset} for them first."
            )
        skipped |= {m.label() for m in missing}
        frames[dataset] = frame
    return frames["fg_a"], frames["fg_c"], sorted(skipped)


def _copy_into_redshift(context, joined: DataFrame, destination, warehouse: Warehouse, lake: Lake, session,
                        starts: list[datetime], *, project: str, item: str):
    """Stage the joined rows as flat Parquet, then one COPY transaction that first deletes the range's rows
    (so a re-run replaces them); the staging folder is removed after success, kept for diagnosis on failure."""
    from ndr_resources.warehouse import with_window_delete

    first_end = starts[0] + timedelta(minutes=SLICE_MINUTES)
    last_end = starts[-1] + timedelta(minutes=SLICE_MINUTES)
    staged = join_uri(destination.staging_s3_prefix, f"{starts[0]:%Y%m%dT%H%M}-{context.run_id}") + "/"
    columns = joined.columns
    joined.write.mode("overwrite").parquet(lake.spark_uri(staged))
    copy = warehouse.copy_parquet_into(
        destination=with_window_delete(destination, start=first_end, end=last_end), staged_uri=staged,
        columns=columns, project=project, item=item, spark=session,
    )
    lake.delete_prefix(staged)
    return copy.rows_loaded, columns, {
        "redshift_table": f"{destination.schema_name}.{destination.table}", "redshift_statements": len(copy.statements),
        "redshift_seconds": round(copy.seconds, 2),
    }


def _starts_within(start: datetime, end: datetime):
    """Rows whose window (ending at ``window_end_ts``) starts in [start, end)."""
    window_start = F.col("window_end_ts") - F.expr(f"INTERVAL {SLICE_MINUTES} MINUTES")
    return (window_start >= F.lit(start)) & (window_start < F.lit(end))


def _record_id(feature_spec_version: str):
    """A stable id per host-window and feature-spec version (hex of SHA-256 over the keys)."""
    return F.substring(F.sha2(F.concat_ws("|", "host_ip", "window_label",
                                          F.date_format("window_end_ts", "yyyy-MM-dd'T'HH:mm:ss'Z'"),
                                          F.lit(feature_spec_version)), 256), 1, 32)


def _model_of_month(lake: Lake, spec: InferencePredictionsSpec, project: str, month: datetime, cache: Path):
    """``(entry, manifest, model_dir)`` of the month's model as training wrote it back into the spec
    (the manifest names its features; the invoker loads the forests)."""
    from ndr_assets.models.artifacts import extract_archive, read_manifest

    entry = spec.model.trained_models.get(f"{month:%Y-%m}")
    if entry is None:
        raise dg.Failure(
            f"{project}: no model for {month_label(month)} in inference_predictions.model.trained_models "
            f"(has: {sorted(spec.model.trained_models) or 'none'}); materialize {IF_MODEL} for {month:%Y-%m-01} first."
        )
    archive = lake.read_bytes(entry["artifact_uri"])
    model_dir = extract_archive(archive, str(cache / f"{month:%Y-%m}"))
    return entry, read_manifest(model_dir), model_dir


def build_scoring_assets(*, project: ProjectConfig, fg_a_key: dg.AssetKey, fg_c_key: dg.AssetKey,
                         model_key: dg.AssetKey) -> list[dg.AssetsDefinition]:
    name = project.project_name
    version = project.feature_spec_version
    partitions_def = correlation_partitions(project.start)
    predictions_key = asset_key(name, PREDICTIONS)
    join_key = asset_key(name, PREDICTION_FEATURE_JOIN)

    @dg.asset(
        key=predictions_key,
        group_name=group_name_for(name),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[fg_a_key, fg_c_key, model_key],
        kinds={"spark", "parquet", "sagemaker"},
        check_specs=[
            *checks.check_specs(predictions_key),
            dg.AssetCheckSpec(EVERY_FG_C_ROW_SCORED, asset=predictions_key, blocking=True,
                              description="One prediction per FG-C host-window of the range."),
            dg.AssetCheckSpec(SCORE_DISTRIBUTION_SANE, asset=predictions_key, blocking=True,
                              description="Scores are finite and spread (std > 0 over more than one row)."),
        ],
        description=(
            f"Isolation Forest scores of project {name}: one per host-window, with the model of the window's month "
            "and the features that drove it (top_features)."
        ),
    )
    def predictions(context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake,
                    spark: SparkResource, model_endpoint: ModelEndpoint) -> dg.MaterializeResult:
        from ndr_assets.models.scoring import score_windows

        spec = parameter_store.load_typed_spec(InferencePredictionsSpec, name, "inference_predictions", version)
        fg_c_spec = parameter_store.load_typed_spec(FgCBuilderSpec, name, "fg_c_builder", version)
        training = parameter_store.load_typed_spec(IfTrainingSpec, name, "if_training", version)
        window = context.partition_time_window
        starts = window_starts(window.start, window.end)
        session = spark.session()
        fg_a, fg_c, unscored = _read_features(session, lake, spec.feature_inputs, fg_c_spec, window_partitions(starts),
                                              needed_by=f"{name}: predictions")
        features = fg_a.join(fg_c, KEYS, "inner").withColumn("record_id", _record_id(version))
        months = sorted({month_start_of(s) for s in starts})
        scored_parts, stats, models = [], {"payloads": 0, "calls": 0, "retries": 0}, []
        with tempfile.TemporaryDirectory(prefix="ndr-model-") as cache:
            for month in months:
                entry, manifest, model_dir = _model_of_month(lake, spec, name, month, Path(cache))
                columns = list(spec.payload.feature_columns or manifest["features"])
                missing = sorted(set(manifest["features"]) - set(features.columns))
                if missing:
                    raise dg.Failure(f"{name}: the {month_label(month)} model needs feature(s) the windows lack: {missing[:5]}")
                # A window belongs to the month its window STARTS in, as FG-C's baselines do.
                of_month = features.where(_starts_within(month, next_month_start(month)))
                invoker = model_endpoint.invoker(spec.model, model_dir=model_dir,
                                                 target_model=f"{month:%Y-%m}/model.tar.gz")
                result = score_windows(of_month, feature_columns=columns, record_id_col="record_id", invoker=invoker,
                                       config=spec.model, carry_columns=KEYS)
                if not result.ok:
                    raise dg.Failure(
                        description=(f"{name}: predictions of {month_label(month)} not published (nothing was written): "
                                     f"after {spec.model.max_retries} retries, {result.failure_summary()}"),
                        metadata={"failed_payloads": result.failed_payload_count, "failed_records": result.failed_records},
                    )
                for key in stats:
                    stats[key] += int(getattr(result, key, 0) or 0)
                start, end = training_range(month, lookback_months=training.window.lookback_months,
                                            gap_months=training.window.gap_months,
                                            in_month_days=training.window.in_month_days)
                in_sample = _starts_within(start, end)
                scored_parts.append(result.scored.withColumn("in_sample", in_sample))
                models.append(entry["model_version"])
        scored = scored_parts[0]
        for part in scored_parts[1:]:
            scored = scored.unionByName(part)
        scored = (scored.withColumn("feature_spec_version", F.lit(version))
                  .withColumn("inference_ts", F.lit(datetime.now(UTC)).cast("timestamp"))
                  .withColumn("mini_batch_id", F.date_format("window_end_ts", "yyyyMMdd'T'HHmmss'Z'")))
        published = enforce_schema(scored, PREDICTIONS_SCHEMA, "predictions").persist()
        try:
            output = versioned_uri(spec.output.s3_prefix, version)
            partitions = window_partitions(starts)
            rows = lake.publish_partitions(with_partitions_of_window_end(published, "window_end_ts"), output, partitions)
            rows_out = sum(rows.values())
            stats_row = published.agg(
                F.count("*").alias("n"), F.stddev("prediction_score").alias("std"),
                F.sum(F.when(F.isnan("prediction_score"), 1).otherwise(0)).alias("nan"),
                F.sum("prediction_label").alias("labelled"), F.sum(F.col("in_sample").cast("int")).alias("in_sample"),
            ).first()
            duplicates = checks.duplicate_key_count(published, KEYS)
            preview = _top_preview(published)
        finally:
            published.unpersist()
        fg_c_rows = fg_c.count()
        spread_ok = stats_row["nan"] == 0 and (rows_out <= 1 or (stats_row["std"] or 0) > 0)
        from ndr_assets.publishing import published_schema

        schema = published_schema(session, lake, output, partitions, rows)
        context.log.info(f"{name}: predictions {len(starts)} window(s), {rows_out} rows, models {models}, {stats}")
        return dg.MaterializeResult(
            metadata={
                "windows": len(starts), "rows_out": rows_out, "fg_c_rows": fg_c_rows,
                "labelled_anomalous": int(stats_row["labelled"] or 0), "in_sample_rows": int(stats_row["in_sample"] or 0),
                "models": ", ".join(models), **stats, "unscored_windows": len(unscored),
                "location": dg.MetadataValue.path(output), "top_host_windows": dg.MetadataValue.md(preview),
            },
            check_results=[
                checks.schema_check(schema, PREDICTIONS_SCHEMA, "predictions"),
                checks.keys_unique_check(duplicates, KEYS, "predictions"),
                checks.row_count_check(rows_out == fg_c_rows, rows_in=fg_c_rows, rows_out=rows_out),
                dg.AssetCheckResult(check_name=EVERY_FG_C_ROW_SCORED, passed=rows_out == fg_c_rows,
                                    metadata={"fg_c_rows": fg_c_rows, "predictions": rows_out}),
                dg.AssetCheckResult(check_name=SCORE_DISTRIBUTION_SANE, passed=bool(spread_ok),
                                    metadata={"nan": int(stats_row["nan"] or 0), "std": float(stats_row["std"] or 0.0)}),
            ],
        )

    @dg.asset(
        key=join_key,
        group_name=group_name_for(name),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[predictions_key, fg_a_key, fg_c_key],
        kinds={"spark", "parquet"},
        check_specs=[
            dg.AssetCheckSpec(JOIN_ROWS_MATCH_PREDICTIONS, asset=join_key, blocking=True,
                              description="One joined row per prediction (inner join lost nothing)."),
        ],
        description=f"Predictions of project {name} joined with their FG-A and FG-C features (spec 003 item 14).",
    )
    def prediction_feature_join(context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake,
                                spark: SparkResource, warehouse: Warehouse) -> dg.MaterializeResult:
        spec = parameter_store.load_typed_spec(PredictionFeatureJoinSpec, name, "prediction_feature_join", version)
        fg_c_spec = parameter_store.load_typed_spec(FgCBuilderSpec, name, "fg_c_builder", version)
        window = context.partition_time_window
        starts = window_starts(window.start, window.end)
        partitions = window_partitions(starts)
        session = spark.session()
        needed_by = f"{name}: prediction_feature_join"
        predictions_uri = versioned_uri(spec.predictions_input.s3_prefix, version)
        preds = read_required_windows(session, lake, predictions_uri, partitions, PREDICTIONS_SCHEMA,
                                      needed_by=needed_by, dataset=PREDICTIONS)
        fg_a, fg_c, _ = _read_features(session, lake, spec.feature_inputs, fg_c_spec, partitions, needed_by=needed_by)
        try:
            joined = join_predictions_with_features(preds, fg_a, fg_c, version)
        except InputDataError as exc:
            raise dg.Failure(f"{needed_by}: {exc.problem}") from None
        destination = spec.destination
        prediction_rows = preds.count()
        if destination.type == "s3":
            output = versioned_uri(destination.s3.s3_prefix, version)
            # Not persisted: the write is the join's only action (the row counts are read from the written files).
            rows = lake.publish_partitions(with_partitions_of_window_end(joined, "window_end_ts"), output, partitions)
            columns = joined.columns
            rows_out = sum(rows.values())
            metadata = {"location": dg.MetadataValue.path(output)}
        else:
            rows_out, columns, metadata = _copy_into_redshift(
                context, joined, destination.redshift, warehouse, lake, session, starts, project=name,
                item=f"prediction_feature_join#{version}",
            )
        metadata.update(windows=len(starts), rows_out=rows_out, prediction_rows=prediction_rows, columns=len(columns),
                        destination=destination.type)
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[dg.AssetCheckResult(check_name=JOIN_ROWS_MATCH_PREDICTIONS, passed=rows_out == prediction_rows,
                                               metadata={"predictions": prediction_rows, "joined": rows_out})],
        )

    return [predictions, prediction_feature_join]


def _top_preview(predictions: DataFrame, rows: int = 10) -> str:
    """The highest-scored host-windows with their three top features, as Markdown (a bounded take)."""
    top = predictions.orderBy(F.desc("prediction_score")).limit(rows).collect()
    lines = ["| host_ip | window_end_ts | score | label | top features |", "|---|---|---|---|---|"]
    for r in top:
        explained = ", ".join(f"{t['feature']}={t['value']:.3g} (baseline {t['baseline']:.3g})" for t in r["top_features"][:3])
        lines.append(f"| {r['host_ip']} | {r['window_end_ts']} | {r['prediction_score']:.4f} | {r['prediction_label']} | {explained} |")
    return "\n".join(lines) + "\n"
