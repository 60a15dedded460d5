"""Asset checks shared by the window assets (delta, pair counts, FG-A, FG-C), declared with each
asset and computed in its body; FG-B reuses the schema comparison.

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
INPUT_COMPLETE = "input_complete"
MONITORED_HOSTS = "monitored_hosts_present"


def check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks of every published dataset: schema, keys, and rows out against rows in."""
    return [
        dg.AssetCheckSpec(SCHEMA_MATCHES_CONTRACT, asset=asset_key, blocking=True,
                          description="Published Parquet schema equals the dataset's schema contract."),
        dg.AssetCheckSpec(KEYS_UNIQUE, asset=asset_key, blocking=True,
                          description="No two rows share the dataset's key."),
        dg.AssetCheckSpec(ROW_COUNT_SANE, asset=asset_key, blocking=True,
                          description="Rows out are consistent with rows in (no window lost, no row invented)."),
    ]


def raw_input_check_specs(asset_key: dg.AssetKey, *, monitored_hosts: bool) -> list[dg.AssetCheckSpec]:
    """The checks of an asset that reads raw mini-batches (delta, pair counts)."""
    specs = [
        *check_specs(asset_key),
        dg.AssetCheckSpec(DQ_REJECTION_RATE, asset=asset_key, blocking=True,
                          description="Share of input records quarantined is under the spec's threshold."),
        dg.AssetCheckSpec(INPUT_COMPLETE, asset=asset_key,
                          description="Every object under the windows' mini-batch folders was read: none skipped "
                                      "(hidden, wrong format, unsafe name, no landing time) and none unreadable."),
    ]
    if monitored_hosts:
        specs.append(
            dg.AssetCheckSpec(MONITORED_HOSTS, asset=asset_key, blocking=True,
                              description="Sessions that were read have an address inside the segment mapping "
                                          "(the monitored network), so there are hosts to compute features for.")
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


def row_count_check(passed: bool, description: str | None = None, **metadata: int | str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=ROW_COUNT_SANE, passed=passed, description=description,
                               metadata=dict(metadata))


def dq_rejection_check(records: int, quarantined: int, threshold: float, *, key: str) -> dg.AssetCheckResult:
    """Quarantined share of ``records`` against ``threshold`` (the spec ``key`` that sets it)."""
    rate = quarantined / records if records else 0.0
    passed = rate <= threshold
    verdict = "is within" if passed else "is over"
    return dg.AssetCheckResult(
        check_name=DQ_REJECTION_RATE,
        passed=passed,
        description=f"{quarantined} of {records} records quarantined: rejection rate {rate:.2%} {verdict} "
                    f"the threshold {threshold:.2%} ({key})",
        metadata={"records": records, "records_quarantined": quarantined, "rejection_rate": round(rate, 6),
                  "threshold": threshold},
    )


def input_complete_check(skipped: Sequence, unreadable: Sequence, unrecognised: Sequence) -> dg.AssetCheckResult:
    """Fails when any object was skipped or unreadable; the metadata lists them with their reasons."""
    listed = [f"{o.uri}: {o.reason}" for o in [*unrecognised, *skipped]]
    listed += [f"{f.uri}: unreadable ({f.cause}); quarantined whole" for f in unreadable]
    problems = len(skipped) + len(unreadable) + len(unrecognised)
    description = (
        "every object was read" if not problems else
        f"{len(skipped)} object(s) skipped, {len(unreadable)} unreadable file(s) quarantined, "
        f"{len(unrecognised)} folder(s) under the ingestion prefix belong to no window; first: {listed[0]}"
    )
    return dg.AssetCheckResult(
        check_name=INPUT_COMPLETE,
        passed=not problems,
        description=description,
        metadata={"objects_skipped": len(skipped), "files_unreadable": len(unreadable),
                  "folders_unrecognised": len(unrecognised), "not_read": dg.MetadataValue.json(listed[:50])},
    )


def monitored_hosts_check(sessions: int, sessions_without_host: int, segments: str) -> dg.AssetCheckResult:
    """Fails when sessions were read but none has an address in the segment mapping."""
    passed = not (sessions_without_host and sessions_without_host == sessions)
    description = (
        f"{sessions} sessions, none with an address in the segment mapping (segments: {segments})" if not passed
        else f"{sessions - sessions_without_host} of {sessions} sessions have an address in the segment mapping"
    )
    return dg.AssetCheckResult(
        check_name=MONITORED_HOSTS, passed=passed, description=description,
        metadata={"sessions": sessions, "sessions_without_monitored_host": sessions_without_host, "segments": segments},
    )
