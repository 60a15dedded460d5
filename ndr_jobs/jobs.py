"""Asset jobs per project: the 15-minute traffic features, FG-C, and the monthly baselines.

A job's assets must share one partitions definition, so a project has three jobs: its 15-minute
traffic assets (from the project's start), FG-C (from the first baseline month) and the monthly
inventory + FG-B.
"""

from __future__ import annotations

import dagster as dg

from ndr_assets.naming import (
    BASELINE_ASSETS,
    CORRELATION_ASSETS,
    TRAFFIC_ASSETS,
    asset_keys,
    baselines_job_name,
    correlation_job_name,
    traffic_job_name,
)
from ndr_resources.projects import ProjectConfig


def _selection(project: ProjectConfig, names: tuple[str, ...]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*asset_keys(project.project_name, names))


def project_jobs(projects: list[ProjectConfig]) -> list[dg.UnresolvedAssetJobDefinition]:
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
        ]
    return jobs
