"""The code location's one ``Definitions`` object: every routed project's asset group."""

from __future__ import annotations

import dagster as dg

from ndr_assets.baselines.assets import build_baseline_assets
from ndr_assets.correlation.assets import build_correlation_assets
from ndr_assets.models.feature_store_asset import build_feature_store_asset
from ndr_assets.models.scoring_asset import build_scoring_assets
from ndr_assets.models.training_asset import build_training_assets
from ndr_assets.naming import fg_b_asset_keys
from ndr_assets.traffic.assets import build_traffic_assets
from ndr_jobs.jobs import project_jobs
from ndr_resources.environments import current_environment, resources_for
from ndr_resources.projects import ProjectConfig, load_project_configs


def project_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """One project's graph: 15-minute traffic features, monthly inventory and FG-B, FG-C, the monthly
    model, the 15-minute predictions with their feature join, and (with a ``feature_store`` map) the
    FG-A / FG-C Feature Store publication."""
    traffic = {asset.key.path[-1]: asset for asset in build_traffic_assets(project=project)}
    fg_a_key, pair_counts_key = traffic["fg_a"].key, traffic["pair_counts"].key
    baselines = build_baseline_assets(project=project, fg_a_key=fg_a_key, pair_counts_key=pair_counts_key)
    correlation = build_correlation_assets(
        project=project, fg_a_key=fg_a_key, pair_counts_key=pair_counts_key,
        fg_b_keys=fg_b_asset_keys(project.project_name),
    )
    fg_c_key = correlation[0].key
    training = build_training_assets(project=project, fg_a_key=fg_a_key, fg_c_key=fg_c_key)
    scoring = build_scoring_assets(project=project, fg_a_key=fg_a_key, fg_c_key=fg_c_key, model_key=training[-1].key)
    feature_store = [
        build_feature_store_asset(project=project, dataset="fg_a", upstream=traffic["fg_a"]),
        build_feature_store_asset(project=project, dataset="fg_c", upstream=correlation[0]),
    ] if project.publishes_to_feature_store else []
    return [*traffic.values(), *baselines, *correlation, *training, *scoring, *feature_store]


def build_definitions() -> dg.Definitions:
    """Reads the routed projects from the parameter store and builds each project's assets."""
    env = current_environment()
    resources = resources_for(env)
    projects = load_project_configs(resources["parameter_store"])
    assets = [asset for project in projects for asset in project_assets(project)]
    # Source references: the UI links each asset to the factory code that builds it.
    return dg.Definitions(
        assets=dg.with_source_code_references(assets), jobs=project_jobs(projects), resources=resources
    )


defs = build_definitions()
