"""One row of the feature catalog (spec 003 item 15) and the groups it is organised in."""

from __future__ import annotations

from dataclasses import dataclass

# Downstream consumer of every model-input feature (spec 003 item 15: "NDR system").
MODEL_CONSUMER = "NDR system"

# What a column is within its dataset. Counts of "features" exclude keys and auxiliary columns.
KEY = "key"  # part of the row key (joins, partitions)
FEATURE = "feature"  # a value the dataset exists to provide
AUXILIARY = "auxiliary"  # metadata or a helper value carried beside the features (not counted)
COLUMN_ROLES = (KEY, FEATURE, AUXILIARY)
# Placeholder of the FG-A metric column in a ``feature_family`` pattern.
METRIC_PLACEHOLDER = "<metric>"


@dataclass(frozen=True)
class FeatureEntry:
    """One column of one dataset, with the item-15 fields first and three extras last.

    ``feature_number`` is the column's 1-based position in its group's contract, so the entries of a
    group sorted by it give the dataset's columns in order (keys and auxiliary columns included).
    Lists are tuples so that an entry is hashable and immutable.
    """

    feature_id: str
    feature_number: int
    feature_name: str
    feature_group: str
    feature_formula: str
    feature_description: str
    creator_script: str
    upstream_dependencies: tuple[str, ...]
    feature_spec_version: str
    data_type: str  # Spark simpleString: bigint, double, int, string, timestamp
    nullable: bool
    default_value: str | None
    downstream_consumers: tuple[str, ...]
    feature_group_name_offline: str
    feature_group_name_online: str | None
    s3_storage_path: str
    column_role: str  # one of COLUMN_ROLES
    is_model_input: bool  # an outbound feature of a model-input group (FG-A, FG-C)
    # Name pattern shared by columns computed alike, e.g. ``<metric>_median`` or ``z_mad_<metric>``
    # (``<metric>`` = an FG-A metric column); the column name itself for a one-off column.
    feature_family: str


def feature_id(group: str, name: str) -> str:
    """Stable id of a column: ``<group>:<name>`` (the same across feature-spec versions)."""
    return f"{group}:{name}"
