"""Publishing a 15-minute dataset, the one sequence every window asset runs after its transform.

Enforce the catalog contract, persist, count rows per partition, duplicate keys and the caller's
measure in ONE aggregation over the persisted frame, publish the partitions atomically, take a small
preview, read the published schema back, unpersist; the schema and key checks come from what was
published. An asset body then reads: spec -> transform -> :func:`publish_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets import checks
from ndr_assets.contracts import dataset_contract, enforce_contract
from ndr_assets.datasets import markdown_preview
from ndr_resources.lake import Lake, PartitionSpec, join_uri


@dataclass(frozen=True)
class PublishedDataset:
    """What :func:`publish_dataset` wrote, with the figures its checks and metadata need."""

    dataset: str
    location: str
    keys: tuple[str, ...]
    rows: dict[str, int]  # rows per partition label
    duplicate_keys: int
    published_schema: T.StructType | None  # None when no partition got rows
    contract: T.StructType
    preview: str
    measured: int | float | None  # the sum of the caller's ``measure`` over the published rows (None without one)

    @property
    def rows_out(self) -> int:
        return sum(self.rows.values())

    def check_results(self) -> list[dg.AssetCheckResult]:
        """The schema and key checks every published dataset has."""
        return [
            checks.schema_check(self.published_schema, self.contract, self.dataset),
            checks.keys_unique_check(self.duplicate_keys, self.keys, self.dataset),
        ]


def publish_dataset(
    frame: DataFrame,
    *,
    dataset: str,
    lake: Lake,
    location: str,
    partitions: Sequence[PartitionSpec],
    with_partition_columns: Callable[[DataFrame], DataFrame],
    keys: Sequence[str],
    preview_columns: Sequence[str],
    measure: str | None = None,
    **contract_specs: Any,
) -> PublishedDataset:
    """Publish ``frame`` as catalog dataset ``dataset`` at ``location`` for exactly ``partitions``.

    ``with_partition_columns`` adds the physical partition columns; ``measure`` is SQL of a per-row
    number (e.g. ``"sessions_cnt"``) whose sum over the published rows is returned as ``measured``;
    ``contract_specs`` are the spec arguments of the contract (``fg_c_spec=...``).
    """
    contract = dataset_contract(dataset, **contract_specs)
    published = enforce_contract(frame, dataset, **contract_specs).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        partitioned = with_partition_columns(published)
        tally = _tally(partitioned, [col for col, _ in partitions[0].values] if partitions else [], keys, measure)
        rows = lake.publish_partitions(partitioned, location, partitions, rows=tally.rows)
        preview = markdown_preview(published, list(preview_columns))
    finally:
        published.unpersist()
    return PublishedDataset(
        dataset=dataset,
        location=location,
        keys=tuple(keys),
        rows=rows,
        duplicate_keys=tally.duplicate_keys,
        published_schema=published_schema(published.sparkSession, lake, location, partitions, rows),
        contract=contract,
        preview=preview,
        measured=tally.measured if measure else None,
    )


@dataclass(frozen=True)
class _Tally:
    rows: dict[str, int]  # rows per partition label
    duplicate_keys: int
    measured: int | float


def _tally(partitioned: DataFrame, partition_columns: list[str], keys: Sequence[str], measure: str | None) -> _Tally:
    """Rows per partition, duplicate key values and the summed measure: one aggregation, one row per partition.

    Grouped by partition and key first (a key's rows always fall into one partition: the partition
    columns derive from the key's time), so the duplicate count is that of
    :func:`checks.duplicate_key_count`; the measure is summed per key, then per partition.
    """
    per_key = partitioned.groupBy(*partition_columns, *keys).agg(
        F.count(F.lit(1)).alias("__rows"), F.expr(f"sum({measure or 0})").alias("__measured")
    )
    per_partition = per_key.groupBy(*[F.col(c).cast("string").alias(c) for c in partition_columns]).agg(
        F.sum("__rows").alias("__rows"),
        F.sum(F.when(F.col("__rows") > 1, 1).otherwise(0)).alias("__duplicates"),
        F.sum("__measured").alias("__measured"),
    )
    rows: dict[str, int] = {}
    duplicates, measured = 0, 0
    for row in per_partition.collect():  # one row per partition written, never the data
        if partition_columns:  # an unpartitioned write has no labels (as lake.publish_partitions counts)
            rows["/".join(str(row[c]) for c in partition_columns)] = int(row["__rows"])
        duplicates += int(row["__duplicates"] or 0)
        measured += row["__measured"] or 0
    return _Tally(rows, duplicates, measured)


def published_schema(
    spark, lake: Lake, location: str, partitions: Sequence[PartitionSpec], rows: dict[str, int]
) -> T.StructType | None:
    """The Parquet schema of the first published partition that has rows (None when none has)."""
    for partition in partitions:
        if rows.get(partition.label()):
            return spark.read.parquet(lake.spark_uri(join_uri(location, partition.path()))).schema
    return None


@contextmanager
def cached(*frames: DataFrame | None) -> Iterator[None]:
    """Persist the frames a body reads more than once, and unpersist them afterwards.

    A frame whose plan is already cached (the same read, cached by the caller) is left alone: the
    cache manager matches plans, so unpersisting it here would drop the caller's cache.
    """
    owned = []
    for frame in frames:
        if frame is not None and not (frame.storageLevel.useMemory or frame.storageLevel.useDisk):
            owned.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
    try:
        yield
    finally:
        for frame in owned:
            frame.unpersist()
