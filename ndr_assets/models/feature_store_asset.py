"""Feature Store publication of one project's FG-A and FG-C windows (spec 003 item 10).

One asset per dataset, downstream of it on the same partitions, so a failed ingestion is its own red
mark and retry and never invalidates the published features. Configured by the ``feature_store``
map of the project's ``project_parameters`` item (spec 001 optional attribute). Projects without the
map have no such assets (``ProjectConfig.publishes_to_feature_store``); where the map is disabled or
lacks the dataset's group, the asset is off and says so.
"""

import dagster as dg

from ndr_assets.datasets import read_required_windows, window_partitions
from ndr_assets.naming import asset_key, group_name_for
from ndr_assets.transforms.windows import window_starts
from ndr_resources.feature_store import FeatureStorePublisher
from ndr_resources.lake import Lake
from ndr_resources.model_specs import FeatureStoreConfig
from ndr_resources.parameter_store.base import ParameterStore, versioned_job_key
from ndr_resources.projects import ProjectConfig, feature_store_map
from ndr_resources.spark import SparkResource
from ndr_resources.specs import FgABuilderSpec, FgCBuilderSpec, parse_spec

FEATURE_STORE_COMPLETE = "every_record_ingested"


def feature_store_config(store: ParameterStore, project: ProjectConfig) -> FeatureStoreConfig | None:
    """The project's ``feature_store`` map, parsed; None when the item has none."""
    key = versioned_job_key("project_parameters", project.feature_spec_version)
    payload = feature_store_map(store, project.project_name, project.feature_spec_version)
    if payload is None:
        return None
    return parse_spec(FeatureStoreConfig, payload, project=project.project_name, item=f"{key} (feature_store)")


def _dataset_frame(session, store: ParameterStore, lake: Lake, project: ProjectConfig, dataset: str, starts):
    from ndr_assets.transforms.fg_c import resolve_fg_c_lists
    from ndr_assets.transforms.schemas import fg_a_schema

    name, version = project.project_name, project.feature_spec_version
    if dataset == "fg_a":
        uri, schema = store.load_typed_spec(FgABuilderSpec, name, "fg_a_builder", version).fg_a_output.s3_prefix, fg_a_schema()
    else:
        spec = store.load_typed_spec(FgCBuilderSpec, name, "fg_c_builder", version)
        uri, schema = spec.fg_c_output.s3_prefix, resolve_fg_c_lists(spec).schema()
    return read_required_windows(session, lake, uri, window_partitions(starts), schema,
                                 needed_by=f"{name}: Feature Store publication", dataset=dataset)


def build_feature_store_asset(*, project: ProjectConfig, dataset: str, upstream: dg.AssetsDefinition) -> dg.AssetsDefinition:
    name = project.project_name
    key = asset_key(name, f"{dataset}_feature_store")

    @dg.asset(
        key=key,
        group_name=group_name_for(name),
        partitions_def=upstream.partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[upstream.key],
        kinds={"sagemaker"},
        check_specs=[dg.AssetCheckSpec(FEATURE_STORE_COMPLETE, asset=key, blocking=True,
                                       description=f"Every {dataset} record of the windows reached its feature group.")],
        description=(f"{dataset.upper().replace('_', '-')} windows of project {name} ingested into their Feature Store group "
                     "(offline store through S3, or PutRecord in bounded batches); off without project_parameters.feature_store."),
    )
    def feature_store_publication(context: dg.AssetExecutionContext, parameter_store: ParameterStore, lake: Lake,
                                  spark: SparkResource, feature_store: FeatureStorePublisher) -> dg.MaterializeResult:
        config = feature_store_config(parameter_store, project)
        target = config.groups.get(dataset) if config is not None and config.enabled else None
        if target is None:
            reason = "no feature_store map" if config is None else f"feature_store has no enabled group for {dataset}"
            context.log.info(f"{name}: {dataset} Feature Store publication is off ({reason})")
            return dg.MaterializeResult(
                metadata={"enabled": False, "reason": reason},
                check_results=[dg.AssetCheckResult(check_name=FEATURE_STORE_COMPLETE, passed=True,
                                                   metadata={"enabled": False})],
            )
        window = context.partition_time_window
        starts = window_starts(window.start, window.end)
        frame = _dataset_frame(spark.session(), parameter_store, lake, project, dataset, starts)
        outcome = feature_store.publish(frame, dataset=dataset, config=config, target=target, project=name)
        context.log.info(f"{name}: {dataset} -> {outcome.feature_group_name}: {outcome.records} records, "
                         f"{outcome.calls} calls, {outcome.retries} retries, {outcome.failed_records} failed")
        return dg.MaterializeResult(
            metadata={
                "enabled": True, "feature_group": outcome.feature_group_name, "windows": len(starts),
                "records": outcome.records, "batches": outcome.batches, "calls": outcome.calls,
                "retries": outcome.retries, "failed_records": outcome.failed_records,
                "offline_uri": outcome.offline_uri or "-", "renamed_features": len(outcome.renamed_features),
            },
            check_results=[dg.AssetCheckResult(
                check_name=FEATURE_STORE_COMPLETE, passed=outcome.failed_records == 0,
                description=None if outcome.failed_records == 0 else f"{outcome.failed_records} record(s) failed: {outcome.first_error}",
                metadata={"records": outcome.records, "failed_records": outcome.failed_records},
            )],
        )

    return feature_store_publication
