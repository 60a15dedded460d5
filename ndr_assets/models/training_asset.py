"""The monthly model of one project: the training data's coverage, then the Isolation Forest.

``training_data_verification`` (spec 001 ``pipeline_training_data_verifier``) lists, per month, the
training windows whose FG-A or FG-C is not published; its blocking check stops ``if_model`` from
training on a partial window, and the ``missing_feature_creation`` job fills exactly those windows.
``if_model`` is keyed by the month it scores (like FG-B): the 2026-06 model learns 2026-01..04.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from pyspark.sql import DataFrame

from ndr_assets.baselines.datasets import month_label
from ndr_assets.datasets import window_partitions
from ndr_assets.models.features import all_model_input_features, model_input_features
from ndr_assets.naming import IF_MODEL, TRAINING_DATA_VERIFICATION, asset_key, group_name_for
from ndr_assets.partitions import (
    correlation_partitions,
    monthly_partitions,
    training_range,
    training_window_starts,
    training_windows_mapping,
)
from ndr_assets.publishing import cached
from ndr_assets.transforms.windows import SLICE_MINUTES, floor_to_window_start
from ndr_resources.errors import ConcurrentUpdateError
from ndr_resources.lake import Lake, join_uri
from ndr_resources.model_registry import ModelRegistry
from ndr_resources.model_specs import IfTrainingSpec
from ndr_resources.parameter_store.base import ParameterStore
from ndr_resources.projects import ProjectConfig
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgCBuilderSpec

TRAINING_WINDOWS_COMPLETE = "training_windows_complete"
MODEL_FEATURES_MATCH_CATALOG = "model_features_match_catalog"
TRAINED_ON_CLAIMED_WINDOW = "trained_on_claimed_window"
SCORE_DISTRIBUTION_SANE = "score_distribution_sane"
KEYS = ["host_ip", "window_label", "window_end_ts"]


def training_windows(project: ProjectConfig, spec: IfTrainingSpec, month: datetime) -> list[datetime]:
    """The month's training windows from the project's first FG-C window on (FG-C needs a baseline month)."""
    first_fg_c = datetime.strptime(correlation_partitions(project.start).get_first_partition_key(), "%Y-%m-%d-%H:%M")
    first_fg_c = first_fg_c.replace(tzinfo=UTC)
    w = spec.window
    starts = training_window_starts(month, lookback_months=w.lookback_months, gap_months=w.gap_months,
                                    in_month_days=w.in_month_days)
    return [s for s in starts if s >= first_fg_c]


def coverage_by_month(lake: Lake, spec: IfTrainingSpec, windows: list[datetime]) -> dict[str, dict[str, list[str]]]:
    """``{month: {dataset: [unpublished window labels]}}`` over the training windows (listing per day)."""
    partitions = window_partitions(windows)
    month_of = {p: month_label(floor_to_window_start(w)) for p, w in zip(partitions, windows, strict=True)}
    missing: dict[str, dict[str, list[str]]] = {}
    for dataset in ("fg_a", "fg_c"):
        for partition in lake.unpublished(spec.feature_inputs[dataset].s3_prefix, partitions):
            missing.setdefault(month_of[partition], {}).setdefault(dataset, []).append(partition.label())
    return missing


def _training_frame(session, lake: Lake, spec: IfTrainingSpec, fg_c_spec: FgCBuilderSpec,
                    windows: list[datetime]) -> tuple[DataFrame, list[str]]:
    """FG-A inner-joined with FG-C on the model keys over the windows: keys + every model-input feature."""
    from ndr_assets.transforms.fg_c import resolve_fg_c_lists
    from ndr_assets.transforms.schemas import fg_a_schema

    inputs = model_input_features(fg_c_spec)
    partitions = window_partitions(windows)
    fg_a, _ = lake.read_partitions(session, spec.feature_inputs["fg_a"].s3_prefix, partitions, fg_a_schema())
    fg_c, _ = lake.read_partitions(session, spec.feature_inputs["fg_c"].s3_prefix, partitions,
                                   resolve_fg_c_lists(fg_c_spec).schema())
    frame = fg_a.select(*KEYS, *inputs["fg_a"]).join(fg_c.select(*KEYS, *inputs["fg_c"]), KEYS, "inner")
    return frame, all_model_input_features(fg_c_spec)


def _markdown_table(rows: list[dict], columns: list[str], limit: int = 30) -> str:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |\n" for r in rows[:limit])
    more = f"\n{len(rows) - limit} more in the report JSON." if len(rows) > limit else ""
    return header + body + more


def model_version_for(spec: IfTrainingSpec, month: datetime) -> str:
    """``<model.version>-<YYYYMM>``: the spec's version, and the month the model scores."""
    return f"{spec.model.version}-{month:%Y%m}"


def model_archive_uri(spec: IfTrainingSpec, month: datetime, version: str) -> str:
    from ndr_assets.models.bundle import MODEL_ARCHIVE

    return join_uri(spec.output.artifacts_s3_prefix, f"month={month:%Y-%m}", f"version={version}", MODEL_ARCHIVE)


def build_training_assets(*, project: ProjectConfig, fg_a_key: dg.AssetKey, fg_c_key: dg.AssetKey) -> list[dg.AssetsDefinition]:
    """The verifier and the model of one project, on its monthly partitions."""
    name = project.project_name
    window = project.training_window
    mapping = training_windows_mapping(lookback_months=window.lookback_months, gap_months=window.gap_months,
                                       in_month_days=window.in_month_days)
    partitions_def = monthly_partitions(project.start)
    verification_key = asset_key(name, TRAINING_DATA_VERIFICATION)
    model_key = asset_key(name, IF_MODEL)

    @dg.asset(
        key=verification_key,
        group_name=group_name_for(name),
        partitions_def=partitions_def,
        ins={
            "fg_a": dg.AssetIn(fg_a_key, partition_mapping=mapping, dagster_type=dg.Nothing),
            "fg_c": dg.AssetIn(fg_c_key, partition_mapping=mapping, dagster_type=dg.Nothing),
        },
        kinds={"json"},
        check_specs=[dg.AssetCheckSpec(
            TRAINING_WINDOWS_COMPLETE, asset=verification_key, blocking=True,
            description="Every training window of the month's model has FG-A and FG-C published (missing ones listed per month).",
        )],
        description=(
            f"Training-data coverage of project {name}'s monthly model: which of its training windows lack FG-A "
            "or FG-C, per month. Launch the missing_feature_creation job to fill them."
        ),
    )
    def training_data_verification(context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake):
        spec = parameter_store.load_typed_spec(IfTrainingSpec, name, "if_training", project.feature_spec_version)
        month = context.partition_time_window.start
        windows = training_windows(project, spec, month)
        missing = coverage_by_month(lake, spec, windows)
        start, end = training_range(month, lookback_months=spec.window.lookback_months,
                                    gap_months=spec.window.gap_months, in_month_days=spec.window.in_month_days)
        report = {
            "project": name, "model_month": month_label(month), "training_start": start.isoformat(),
            "training_end": end.isoformat(), "windows": len(windows),
            "missing": missing,
            "missing_windows": sum(len(v) for by_dataset in missing.values() for v in by_dataset.values()),
        }
        report_uri = join_uri(spec.output.report_s3_prefix, "verification", f"month={month:%Y-%m}", "coverage.json")
        lake.write_json(report_uri, report)
        per_month = [
            {"month": m, **{f"missing {d}": len(by_dataset.get(d, [])) for d in ("fg_a", "fg_c")},
             "first missing": min(w for ws in by_dataset.values() for w in ws)}
            for m, by_dataset in sorted(missing.items())
        ]
        passed = bool(windows) and not missing
        summary = (f"{len(windows)} training window(s) {start:%Y-%m-%d} .. {end:%Y-%m-%d}"
                   + ("" if windows else ": none from the project's first FG-C window on"))
        context.log.info(f"{name}: model {month_label(month)}: {summary}; missing {report['missing_windows']}")
        return dg.MaterializeResult(
            metadata={"windows": len(windows), "missing_windows": report["missing_windows"],
                      "report": dg.MetadataValue.path(report_uri),
                      "training_range": f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}"},
            check_results=[dg.AssetCheckResult(
                check_name=TRAINING_WINDOWS_COMPLETE, passed=passed,
                description=None if passed else (
                    summary if not windows else
                    f"{report['missing_windows']} window(s) missing; launch missing_feature_creation for {month_label(month)}"),
                metadata={"missing_per_month": dg.MetadataValue.md(
                    _markdown_table(per_month, ["month", "missing fg_a", "missing fg_c", "first missing"]) if per_month else "none")},
            )],
        )

    @dg.asset(
        key=model_key,
        group_name=group_name_for(name),
        partitions_def=partitions_def,
        deps=[verification_key],
        kinds={"scikitlearn", "spark"},
        check_specs=[
            dg.AssetCheckSpec(MODEL_FEATURES_MATCH_CATALOG, asset=model_key, blocking=True,
                              description="Kept + dropped features == the catalog's model-input features of FG-A and FG-C."),
            dg.AssetCheckSpec(TRAINED_ON_CLAIMED_WINDOW, asset=model_key, blocking=True,
                              description="Every training row's window_end_ts lies in the training range the model claims."),
            dg.AssetCheckSpec(SCORE_DISTRIBUTION_SANE, asset=model_key, blocking=True,
                              description="Training scores are finite and spread (std > 0)."),
        ],
        description=(
            f"Isolation Forest of project {name} for the month it scores: trained on FG-A + FG-C of the "
            "lookback months before the gap (if_training.window), sampled to fit one machine, with preprocessing, "
            "feature selection and label-free tuning; its preprocessing and version are written back into "
            "inference_predictions."
        ),
    )
    def if_model(context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake, spark: SparkResource,
                 model_registry: ModelRegistry):
        from pyspark.sql import functions as F

        from ndr_assets.models.artifacts import histogram_markdown, package_model
        from ndr_assets.models.training import train_model
        from ndr_assets.models.training_data import sample_training_rows

        spec = parameter_store.load_typed_spec(IfTrainingSpec, name, "if_training", project.feature_spec_version)
        fg_c_spec = parameter_store.load_typed_spec(FgCBuilderSpec, name, "fg_c_builder", project.feature_spec_version)
        month = context.partition_time_window.start
        windows = training_windows(project, spec, month)
        if not windows:
            raise dg.Failure(f"{name}: model {month_label(month)} has no training window with FG-C (see {TRAINING_DATA_VERIFICATION})")
        session = spark.session()
        frame, catalog_features = _training_frame(session, lake, spec, fg_c_spec, windows)
        start, end = training_range(month, lookback_months=spec.window.lookback_months,
                                    gap_months=spec.window.gap_months, in_month_days=spec.window.in_month_days)
        # The span, the strata counts and the sample each read the joined FG-A/FG-C windows: join them once.
        with cached(frame):
            span = frame.agg(F.min("window_end_ts").alias("first"), F.max("window_end_ts").alias("last"),
                             F.count("*").alias("rows")).first()
            if not span["rows"]:
                raise dg.Failure(f"{name}: model {month_label(month)}: the {len(windows)} training window(s) hold no FG-A/FG-C rows")
            sample, sampling = sample_training_rows(frame, max_rows=spec.sampling.max_rows, seed=spec.sampling.seed)
        context.log.info(f"{name}: model {month_label(month)}: {span['rows']} host-windows, sampled {len(sample)}")
        version = model_version_for(spec, month)
        trained_on = {
            "first_window_end": span["first"].isoformat(), "last_window_end": span["last"].isoformat(),
            "rows": int(span["rows"]), "sampled_rows": len(sample), "sampling": sampling.to_metadata(),
        }
        spec_for_version = spec.model_copy(update={"model": spec.model.model_copy(update={"version": version})})
        result = train_model(sample, catalog_features, spec_for_version, month=f"{month:%Y-%m}", trained_on=trained_on)
        bundle = result.bundle
        archive = package_model(bundle)
        archive_uri = model_archive_uri(spec, month, version)
        lake.write_bytes(archive_uri, archive)
        report_dir = join_uri(spec.output.report_s3_prefix, f"month={month:%Y-%m}", f"version={version}")
        report_uri = join_uri(report_dir, "report.json")
        lake.write_json(report_uri, {**result.report, "training_range": [start.isoformat(), end.isoformat()],
                                     "archive": archive_uri})
        trials_uri = join_uri(report_dir, "trials.jsonl")
        lake.write_bytes(trials_uri, "".join(json.dumps(t, default=str) + "\n" for t in result.trials).encode())
        image_prefix = spec.output.model_image_prefix or spec.output.report_s3_prefix
        histogram_uri = join_uri(image_prefix, f"month={month:%Y-%m}", f"version={version}", "score_histogram.png")
        lake.write_bytes(histogram_uri, result.histogram_png)
        if spec.output.model_image_prefix:  # the frozen copy of the final model package
            lake.write_bytes(join_uri(spec.output.model_image_prefix, f"month={month:%Y-%m}", f"version={version}",
                                      "model.tar.gz"), archive)
        features_hash = hashlib.sha256("\n".join(bundle["features"]).encode()).hexdigest()[:16]
        _write_back(context, parameter_store, project, spec, month, bundle, archive_uri, features_hash)
        attributes = {
            "training_window": {"start": start.isoformat(), "end": end.isoformat(), **trained_on},
            "features": list(bundle["features"]),
            "metrics": {**result.report["score_summary"], "objective": result.report["tuning"]["best_objective"]},
            "data_hashes": {"features_sha256_16": features_hash,
                            "sample_sha256_16": hashlib.sha256(sample.to_numpy().tobytes()).hexdigest()[:16],
                            "archive_sha256_16": hashlib.sha256(archive).hexdigest()[:16]},
            "best_params": _jsonable(result.report["best_params"]),
        }
        deployment = spec.deployment
        registered = model_registry.register(
            project=name, model_package_group=deployment.model_package_group or f"{name}-{spec.model.name}".replace("_", "-"),
            model_version=version, archive_uri=archive_uri, image_uri=deployment.image_uri or "in-process",
            attributes=attributes,
        )
        deployed = None
        if deployment.deploy_on_success:
            deployed = model_registry.deploy(deployment=deployment, registered=registered, archive_uri=archive_uri,
                                             image_uri=deployment.image_uri or "in-process",
                                             execution_role_arn=deployment.execution_role_arn or "")
        context.log.info(f"{name}: registered {registered.package_arn}"
                         + (f"; endpoint {deployed.endpoint_name} {deployed.action}" if deployed else ""))

        dropped = result.report["features"]["dropped"]
        accounted = set(bundle["features"]) | {d["feature"] for d in dropped}
        scores = result.report["score_summary"]
        first, last = span["first"].replace(tzinfo=UTC), span["last"].replace(tzinfo=UTC)
        # A window belongs to the range when it starts in it: it ends after the start, at most 15 min past the end.
        in_range = start < first and last <= end + timedelta(minutes=SLICE_MINUTES)
        return dg.MaterializeResult(
            metadata={
                "model_version": version, "training_range": f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}",
                "training_windows": len(windows), "rows": int(span["rows"]), "sampled_rows": len(sample),
                "sampling": dg.MetadataValue.json(sampling.to_metadata()),
                "features_in": len(catalog_features), "features_kept": len(bundle["features"]),
                "features_dropped": len(dropped),
                "dropped": dg.MetadataValue.md(_markdown_table(dropped, ["feature", "stage", "reason"])),
                "trials": dg.MetadataValue.md(_markdown_table(
                    [{**t.get("params", {}), **{k: t.get(k) for k in ("objective", "separation", "stability", "seconds")}}
                     for t in result.trials],
                    sorted({k for t in result.trials for k in t.get("params", {})}) + ["objective", "separation", "stability", "seconds"])),
                "best_params": dg.MetadataValue.json(_jsonable(result.report["best_params"])),
                "score_threshold": float(bundle["score_threshold"]),
                "score_histogram": dg.MetadataValue.md(histogram_markdown(result.histogram_png)),
                "artifact": dg.MetadataValue.path(archive_uri), "report": dg.MetadataValue.path(report_uri),
                "registered": registered.package_arn, "registry_version": registered.version,
                "deployment": deployed.action if deployed else "off (deployment.deploy_on_success is false)",
            },
            check_results=[
                dg.AssetCheckResult(check_name=MODEL_FEATURES_MATCH_CATALOG,
                                    passed=accounted == set(catalog_features) and set(bundle["features"]) <= set(catalog_features),
                                    metadata={"catalog": len(catalog_features), "kept": len(bundle["features"]),
                                              "unaccounted": len(set(catalog_features) - accounted)}),
                dg.AssetCheckResult(check_name=TRAINED_ON_CLAIMED_WINDOW, passed=bool(in_range),
                                    metadata={"first_window_end": str(first), "last_window_end": str(last),
                                              "claimed": f"{start.isoformat()} .. {end.isoformat()}"}),
                dg.AssetCheckResult(check_name=SCORE_DISTRIBUTION_SANE,
                                    passed=bool(scores) and _finite(scores.values()) and scores.get("std", 0) > 0,
                                    metadata={k: float(v) for k, v in scores.items() if isinstance(v, int | float)}),
            ],
        )

    return [training_data_verification, if_model]


def _finite(values) -> bool:
    import math

    return all(math.isfinite(v) for v in values if isinstance(v, int | float))


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _write_back(context, store: ParameterStore, project: ProjectConfig, spec: IfTrainingSpec, month: datetime,
                bundle: dict, archive_uri: str, features_hash: str) -> None:
    """The month's model, its version and preprocessing into ``inference_predictions#version``, atomically."""
    from ndr_assets.models.bundle import PREPROCESSING_KEYS

    preprocessing = {k: bundle["preprocessing"][k] for k in PREPROCESSING_KEYS} | {"features": list(bundle["features"])}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def change(payload: dict) -> dict:
        model = dict(payload.get("model") or {})
        trained = dict(model.get("trained_models") or {})
        trained[f"{month:%Y-%m}"] = {
            "model_version": bundle["model_version"], "model_name": bundle["model_name"], "artifact_uri": archive_uri,
            "features_sha256_16": features_hash, "trained_at": now,
        }
        latest = max(trained)
        model.update(trained_models=trained, model_version=trained[latest]["model_version"],
                     model_name=trained[latest]["model_name"])
        payload["model"] = model
        if f"{month:%Y-%m}" == latest:
            payload["preprocessing"] = preprocessing
        return payload

    try:
        store.update_spec(project.project_name, "inference_predictions", project.feature_spec_version, change, updated_at=now)
    except ConcurrentUpdateError as exc:
        raise dg.Failure(f"{project.project_name}: model {month:%Y-%m} trained and stored at {archive_uri}, but {exc}") from None
    context.log.info(f"{project.project_name}: inference_predictions#{project.feature_spec_version} now lists model "
                     f"{bundle['model_version']} for {month:%Y-%m}")
