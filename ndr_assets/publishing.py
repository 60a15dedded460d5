"""Publishing a 15-minute dataset, the one sequence every window asset runs after its transform.

Enforce the catalog contract, persist, publish the partitions atomically, count duplicate keys,
take a small preview, read the published schema back, unpersist; the schema and key checks come
from what was published. An asset body then reads: spec -> transform -> :func:`publish_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pyspark import StorageLevel
from pyspark.sql import DataFrame
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
    measured: Any  # what the caller's ``measure`` returned on the persisted frame (None without one)

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
    measure: Callable[[DataFrame], Any] | None = None,
    **contract_specs: Any,
) -> PublishedDataset:
    """Publish ``frame`` as catalog dataset ``dataset`` at ``location`` for exactly ``partitions``.

    ``with_partition_columns`` adds the physical partition columns; ``measure`` runs on the persisted
    frame (one more aggregation that need not recompute it); ``contract_specs`` are the spec
    arguments of the contract (``fg_c_spec=...``).
    """
    contract = dataset_contract(dataset, **contract_specs)
    published = enforce_contract(frame, dataset, **contract_specs).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = lake.publish_partitions(with_partition_columns(published), location, partitions)
        duplicates = checks.duplicate_key_count(published, keys)
        measured = measure(published) if measure else None
        preview = markdown_preview(published, list(preview_columns))
    finally:
        published.unpersist()
    return PublishedDataset(
        dataset=dataset,
        location=location,
        keys=tuple(keys),
        rows=rows,
        duplicate_keys=duplicates,
        published_schema=published_schema(published.sparkSession, lake, location, partitions, rows),
        contract=contract,
        preview=preview,
        measured=measured,
    )


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
