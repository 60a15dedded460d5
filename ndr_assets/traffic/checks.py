"""Asset checks of the 15-minute traffic assets, declared with each asset and computed in its body.

The values are computed on the frames being published (one aggregation each), so a check never
re-reads a dataset; blocking checks stop downstream assets in the same run when bad data must
not flow on.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

SCHEMA_MATCHES_CONTRACT = "schema_matches_contract"
KEYS_UNIQUE = "keys_unique"
ROW_COUNT_SANE = "row_count_sane"
DQ_REJECTION_RATE = "dq_rejection_rate_under_threshold"


def check_specs(asset_key: dg.AssetKey, *, with_dq: bool) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(SCHEMA_MATCHES_CONTRACT, asset=asset_key, blocking=True,
                          description="Published Parquet schema equals the dataset's schema contract."),
        dg.AssetCheckSpec(KEYS_UNIQUE, asset=asset_key, blocking=True,
                          description="No two rows share the dataset's key."),
        dg.AssetCheckSpec(ROW_COUNT_SANE, asset=asset_key,
                          description="Rows out are consistent with rows in (no window lost, no row invented)."),
    ]
    if with_dq:
        specs.append(
            dg.AssetCheckSpec(DQ_REJECTION_RATE, asset=asset_key, blocking=True,
                              description="Share of input rows rejected by DQ rules is under the spec's threshold.")
        )
    return specs


def schema_differences(published_schema: T.StructType | None, contract: T.StructType) -> list[str]:
    """Names and types that differ from the contract (nullability is Spark's to widen, checked as data
    elsewhere); empty when they match or nothing was published."""
    if published_schema is None:
        return []
    actual = [(f.name, f.dataType.simpleString()) for f in published_schema.fields]
    expected = [(f.name, f.dataType.simpleString()) for f in contract.fields]
    if actual == expected:
        return []
    return sorted(f"{n}: {t}" for n, t in set(actual) ^ set(expected)) or ["same columns in a different order"]


def schema_check(published_schema: T.StructType | None, contract: T.StructType, dataset: str) -> dg.AssetCheckResult:
    """The published partition's schema against the dataset's contract."""
    if published_schema is None:
        return dg.AssetCheckResult(check_name=SCHEMA_MATCHES_CONTRACT, passed=True,
                                   metadata={"dataset": dataset, "note": "no rows published; nothing to compare"})
    problems = schema_differences(published_schema, contract)
    return dg.AssetCheckResult(
        check_name=SCHEMA_MATCHES_CONTRACT,
        passed=not problems,
        metadata={"dataset": dataset, "columns": len(published_schema.fields),
                  "differences": ", ".join(problems[:20]) or "none"},
    )


def duplicate_key_count(df: DataFrame, keys: Sequence[str]) -> int:
    """Number of key values that occur more than once (one aggregation)."""
    row = df.groupBy(*keys).count().agg(F.sum(F.when(F.col("count") > 1, 1).otherwise(0)).alias("dups")).first()
    return int(row["dups"] or 0)


def keys_unique_check(duplicates: int, keys: Sequence[str], dataset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=KEYS_UNIQUE,
        passed=duplicates == 0,
        metadata={"dataset": dataset, "key": ", ".join(keys), "duplicate_keys": duplicates},
    )


def row_count_check(passed: bool, **metadata: int | str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=ROW_COUNT_SANE, passed=passed, metadata=dict(metadata))


def dq_rejection_check(rows_in: int, rows_rejected: int, threshold: float) -> dg.AssetCheckResult:
    rate = rows_rejected / rows_in if rows_in else 0.0
    return dg.AssetCheckResult(
        check_name=DQ_REJECTION_RATE,
        passed=rate <= threshold,
        metadata={"rows_in": rows_in, "rows_rejected": rows_rejected, "rejection_rate": round(rate, 6),
                  "threshold": threshold},
    )
