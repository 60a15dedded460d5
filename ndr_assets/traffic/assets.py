"""The 15-minute traffic assets of one tenant project: ``delta``, ``pair_counts`` and ``fg_a``.

Built by one keyword-only factory per project (asset key prefix = project name), one module per asset.
Each asset reads its job spec from the parameter store at run time, computes with the pure transforms
of ``ndr_assets.transforms``, publishes its window partitions atomically through
:func:`ndr_assets.publishing.publish_dataset`, and reports counts, locations and a preview as
metadata, with its checks. ``delta`` and ``pair_counts`` read the raw mini-batches and account for
every record: published, quarantined (with its reason) or skipped by a rule, per window.
"""

import dagster as dg

from ndr_assets.partitions import fifteen_minute_partitions
from ndr_assets.traffic.delta_asset import build_delta_asset
from ndr_assets.traffic.fg_a_asset import build_fg_a_asset
from ndr_assets.traffic.pair_counts_asset import build_pair_counts_asset
from ndr_resources.projects import ProjectConfig


def build_traffic_assets(*, project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The 15-minute traffic assets of one project, on the project's own partitions."""
    partitions_def = fifteen_minute_partitions(project.start)
    key_prefix = [project.project_name]
    delta = build_delta_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix)
    return [
        delta,
        build_pair_counts_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix),
        build_fg_a_asset(project=project, partitions_def=partitions_def, key_prefix=key_prefix, delta_key=delta.key),
    ]
