"""The names of a project's asset graph, in one place: assets, jobs, groups and the FG-B tables.

Asset keys are ``[<project_name>, <asset name>]``; a project's assets form one group; a job needs
one partitions definition, so a project has one job per partitioning (15-minute traffic features,
FG-C from the first baseline month, monthly baselines).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

DELTA = "delta"
PAIR_COUNTS = "pair_counts"
FG_A = "fg_a"
FG_C = "fg_c"
MACHINE_INVENTORY = "machine_inventory"
IF_MODEL = "if_model"
TRAINING_DATA_VERIFICATION = "training_data_verification"
PREDICTIONS = "predictions"
PREDICTION_FEATURE_JOIN = "prediction_feature_join"


@dataclass(frozen=True)
class FgBTable:
    """One FG-B table: where it lives under the FG-B prefix, its catalog group, the asset that owns it."""

    path: str  # sub-path under the FG-B prefix (spec 003 item 11: /fg_b/host/, /fg_b/segment/, ...)
    catalog_group: str  # its group in the feature catalog and schema contracts
    asset: str  # the asset that publishes it (both pair rarity tables belong to one asset)


# The one FG-B name map: table -> location, catalog group and asset.
FG_B_TABLES: dict[str, FgBTable] = {
    "host": FgBTable("host", "fg_b_host", "fg_b_host"),
    "segment": FgBTable("segment", "fg_b_segment", "fg_b_segment"),
    "ip_metadata": FgBTable("ip_metadata", "fg_b_ip_metadata", "fg_b_ip_metadata"),
    "pair_rarity_host": FgBTable("pair_rarity/host", "pair_rarity_host", "pair_rarity"),
    "pair_rarity_segment": FgBTable("pair_rarity/segment", "pair_rarity_segment", "pair_rarity"),
}
# The FG-B multi-asset's assets, keyed by their role (host, segment, ip_metadata, pair_rarity).
FG_B_ASSETS: dict[str, str] = {
    "host": "fg_b_host",
    "segment": "fg_b_segment",
    "ip_metadata": "fg_b_ip_metadata",
    "pair_rarity": "pair_rarity",
}
assert set(FG_B_ASSETS.values()) == {table.asset for table in FG_B_TABLES.values()}

FG_A_FEATURE_STORE = "fg_a_feature_store"
FG_C_FEATURE_STORE = "fg_c_feature_store"
FEATURE_STORE_ASSETS = (FG_A_FEATURE_STORE, FG_C_FEATURE_STORE)

TRAFFIC_ASSETS = (DELTA, PAIR_COUNTS, FG_A, FG_A_FEATURE_STORE)
CORRELATION_ASSETS = (FG_C, FG_C_FEATURE_STORE)
SCORING_ASSETS = (PREDICTIONS, PREDICTION_FEATURE_JOIN)
MODEL_ASSETS = (TRAINING_DATA_VERIFICATION, IF_MODEL)
BASELINE_ASSETS = (MACHINE_INVENTORY, *FG_B_ASSETS.values())


def group_name_for(project_name: str) -> str:
    """A project's asset group (Dagster group names allow only letters, digits and underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", project_name)


def asset_key(project_name: str, asset_name: str) -> dg.AssetKey:
    return dg.AssetKey([project_name, asset_name])


def asset_keys(project_name: str, asset_names: Iterable[str]) -> list[dg.AssetKey]:
    return [asset_key(project_name, name) for name in asset_names]


def fg_b_asset_keys(project_name: str) -> dict[str, dg.AssetKey]:
    """The FG-B multi-asset's keys by role (host, segment, ip_metadata, pair_rarity)."""
    return {role: asset_key(project_name, name) for role, name in FG_B_ASSETS.items()}


def traffic_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__traffic_15m"


def correlation_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__fg_c_15m"


def scoring_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__scoring_15m"


def models_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__models_monthly"


def missing_features_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__missing_feature_creation"


def baselines_job_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__baselines_monthly"


def fg_b_op_name(project_name: str) -> str:
    return f"{group_name_for(project_name)}__fg_b"
