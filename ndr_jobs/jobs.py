"""Asset jobs: one 15-minute job per project (delta, pair counts, FG-A)."""

from __future__ import annotations

import dagster as dg

from ndr_assets.traffic.assets import group_name_for
from ndr_resources.projects import ProjectConfig


def traffic_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__traffic_15m"


def traffic_jobs(projects: list[ProjectConfig]) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            traffic_job_name(project.project_name),
            selection=dg.AssetSelection.groups(group_name_for(project.project_name)),
            description=f"Delta, pair counts and FG-A of project {project.project_name} for a window range.",
        )
        for project in projects
    ]
