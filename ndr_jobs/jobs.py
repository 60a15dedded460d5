"""Asset jobs per project: the 15-minute traffic features, FG-C, and the monthly baselines.

A job's assets must share one partitions definition, so a project has one job per partitioning and
stage: its 15-minute traffic assets (from the project's start), FG-C and the scoring chain
(predictions, join; both from the first baseline month), the monthly inventory + FG-B, the monthly
model (coverage, training), and the op job that fills a model's missing training windows.
"""

from __future__ import annotations

import dagster as dg

from ndr_assets.naming import (
    BASELINE_ASSETS,
    CORRELATION_ASSETS,
    FEATURE_STORE_ASSETS,
    MODEL_ASSETS,
    SCORING_ASSETS,
    TRAFFIC_ASSETS,
    asset_keys,
    baselines_job_name,
    correlation_job_name,
    models_job_name,
    scoring_job_name,
    traffic_job_name,
)
from ndr_jobs.missing_features import missing_feature_creation_job
from ndr_resources.projects import ProjectConfig


def _selection(project: ProjectConfig, names: tuple[str, ...]) -> dg.AssetSelection:
    if not project.publishes_to_feature_store:  # the project has no Feature Store assets
        names = tuple(name for name in names if name not in FEATURE_STORE_ASSETS)
    return dg.AssetSelection.assets(*asset_keys(project.project_name, names))


def project_jobs(projects: list[ProjectConfig]) -> list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition]:
    jobs = []
    for project in projects:
        name = project.project_name
        jobs += [
            dg.define_asset_job(
                traffic_job_name(name), selection=_selection(project, TRAFFIC_ASSETS),
                description=f"Delta, pair counts and FG-A of project {name} for a window range.",
            ),
            dg.define_asset_job(
                correlation_job_name(name), selection=_selection(project, CORRELATION_ASSETS),
                description=f"FG-C of project {name} for a window range (needs FG-B of the windows' months).",
            ),
            dg.define_asset_job(
                baselines_job_name(name), selection=_selection(project, BASELINE_ASSETS),
                description=f"Machine inventory and FG-B baselines of project {name} for a month range.",
            ),
            dg.define_asset_job(
                models_job_name(name), selection=_selection(project, MODEL_ASSETS),
                description=f"Training-data coverage and the Isolation Forest model of project {name} for a month range.",
            ),
            dg.define_asset_job(
                scoring_job_name(name), selection=_selection(project, SCORING_ASSETS),
                description=f"Predictions and the prediction-feature join of project {name} for a window range.",
            ),
            missing_feature_creation_job(project),
        ]
    return jobs
