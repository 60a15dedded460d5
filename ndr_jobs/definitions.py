"""The code location's one ``Definitions`` object: every routed project's asset group."""

from __future__ import annotations

import dagster as dg

from ndr_assets.traffic.assets import build_traffic_assets
from ndr_jobs.jobs import traffic_jobs
from ndr_resources.environments import current_environment, resources_for
from ndr_resources.projects import load_project_configs


def build_definitions() -> dg.Definitions:
    """Reads the routed projects from the parameter store and builds each project's assets."""
    env = current_environment()
    resources = resources_for(env)
    projects = load_project_configs(resources["parameter_store"])
    assets = [asset for project in projects for asset in build_traffic_assets(project=project)]
    return dg.Definitions(assets=assets, jobs=traffic_jobs(projects), resources=resources)


defs = build_definitions()
