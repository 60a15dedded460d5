"""Schema contracts of every dataset, derived from the feature catalog (spec 003 item 15).

The catalog is the one description of every column (name, type, formula, producer); the assets
enforce these contracts right before each write and compare each published partition with them
in their ``schema_matches_contract`` checks, so the catalog and the written data cannot drift.
"""

from __future__ import annotations

from functools import lru_cache

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ndr_assets.catalog import build_catalog, catalog_contract
from ndr_assets.transforms.schemas import enforce_schema
from ndr_resources.specs import FgBBuilderSpec, FgCBuilderSpec


@lru_cache(maxsize=64)
def _contract(group: str, fg_b_json: str | None, fg_c_json: str | None) -> T.StructType:
    fg_b = FgBBuilderSpec.model_validate_json(fg_b_json) if fg_b_json else None
    fg_c = FgCBuilderSpec.model_validate_json(fg_c_json) if fg_c_json else None
    return catalog_contract(build_catalog(fg_b_spec=fg_b, fg_c_spec=fg_c), group)


def dataset_contract(
    group: str, *, fg_b_spec: FgBBuilderSpec | None = None, fg_c_spec: FgCBuilderSpec | None = None
) -> T.StructType:
    """The catalog's contract of ``group`` (e.g. ``fg_a``, ``fg_b_host``) for the given specs."""
    return _contract(
        group,
        fg_b_spec.model_dump_json(by_alias=True) if fg_b_spec else None,
        fg_c_spec.model_dump_json(by_alias=True) if fg_c_spec else None,
    )


def enforce_contract(
    df: DataFrame, group: str, *, fg_b_spec: FgBBuilderSpec | None = None, fg_c_spec: FgCBuilderSpec | None = None
) -> DataFrame:
    """``df`` reduced to the catalog contract of ``group``; a missing column or wrong type raises."""
    return enforce_schema(df, dataset_contract(group, fg_b_spec=fg_b_spec, fg_c_spec=fg_c_spec), group)
