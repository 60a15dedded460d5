"""The feature catalog (spec 003 item 15), generated from the code: one source of truth.

Columns, types and order come from the schema contracts every writer enforces
(``ndr_assets.transforms.schemas``); formulas from the registry in ``formulas`` (delta, pair counts,
FG-A) and from the ``FORMULAS`` dicts of the FG-B, pair-rarity and FG-C modules. Pure Python and
pyspark types: no Dagster, no Spark session.

    entries = build_catalog()                       # v1 defaults
    counts_by_group(entries)["fg_a"]                # 493
    catalog_contract(entries, "fg_a") == fg_a_schema()
    to_markdown(entries); to_parquet(entries, "feature_catalog.parquet")
"""

from ndr_assets.catalog.builder import build_catalog
from ndr_assets.catalog.entry import AUXILIARY, COLUMN_ROLES, FEATURE, KEY, MODEL_CONSUMER, FeatureEntry
from ndr_assets.catalog.export import (
    REGENERATE_COMMAND,
    catalog_contract,
    column_counts,
    counts_by_group,
    group_entries,
    read_parquet,
    to_arrow,
    to_markdown,
    to_parquet,
)
from ndr_assets.catalog.groups import GROUPS, MODEL_INPUT_GROUPS, GroupInfo, default_storage_path

__all__ = [
    "AUXILIARY",
    "COLUMN_ROLES",
    "FEATURE",
    "GROUPS",
    "KEY",
    "MODEL_CONSUMER",
    "MODEL_INPUT_GROUPS",
    "REGENERATE_COMMAND",
    "FeatureEntry",
    "GroupInfo",
    "build_catalog",
    "catalog_contract",
    "column_counts",
    "counts_by_group",
    "default_storage_path",
    "group_entries",
    "read_parquet",
    "to_arrow",
    "to_markdown",
    "to_parquet",
]
