"""The monthly machine-inventory unload (spec 003 item 12) and the reader FG-B uses.

``unload_machine_inventory`` for month M:

1. reads the distinct IPs already published under ``output.s3_prefix`` in every month OTHER than M
   (so re-running M replaces M with the same rows: the run is idempotent);
2. writes them as Parquet to a private work prefix and lets the warehouse run the rendered SELECT
   with the ``NOT EXISTS`` anti-join against them, unloading to the work prefix;
3. verifies the unload: Parquet files exist when rows were reported, the columns are the contract's
   (``machine_inventory_schema``), the files hold exactly the reported row count; rows with a null or
   malformed IP, and extra rows of an IP seen twice, are counted and quarantined;
4. publishes the valid rows atomically as ``<s3_prefix>/snapshot_month=M/`` with a ``_SUCCESS``
   marker (rejects, if any, go to ``<s3_prefix>/_quarantine/snapshot_month=M/``), then drops the
   work prefix (also when a step fails).

No Dagster here: the asset calls these functions with its resources.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.inventory.sql import render_inventory_select
from ndr_assets.transforms.ip import is_valid_ip
from ndr_assets.transforms.schemas import enforce_schema, machine_inventory_schema
from ndr_resources.errors import InputDataError, SpecError
from ndr_resources.lake import Lake, PartitionSpec, join_uri
from ndr_resources.specs import InventoryOutput, MachineInventoryUnloadSpec
from ndr_resources.warehouse import EXISTING_IP_COLUMN, UnloadRequest, Warehouse

PARTITION_COLUMN = "snapshot_month"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")

# What read_machine_inventory returns, whatever the spec's output column names are.
MACHINE_INVENTORY_READ_SCHEMA = T.StructType(
    [
        T.StructField("ip", T.StringType(), False),
        T.StructField("machine_name", T.StringType(), True),
        T.StructField(PARTITION_COLUMN, T.StringType(), False),
    ]
)
QUARANTINE_REASONS = ("null_ip", "malformed_ip", "duplicate_ip")


def output_contract(output: InventoryOutput) -> T.StructType:
    """The published columns: ``machine_inventory_schema`` with the spec's output column names."""
    return machine_inventory_schema(output.ip_output_column, output.name_output_column)


def inventory_quarantine_schema(output: InventoryOutput) -> T.StructType:
    """Rejected unload rows: the reason, then the row as unloaded (its IP may be null)."""
    return T.StructType(
        [
            T.StructField("reject_reason", T.StringType(), False),
            T.StructField(output.ip_output_column, T.StringType(), True),
            T.StructField(output.name_output_column, T.StringType(), True),
        ]
    )


@dataclass(frozen=True)
class InventoryUnloadResult:
    rows_existing_ips: int  # distinct IPs of the other published months (excluded by the anti-join)
    rows_unloaded: int  # rows the warehouse unloaded (verified against its files)
    rows_published: int  # the new machines of the month: unloaded rows minus quarantined ones
    location: str  # the published partition
    quarantine_location: str
    counters: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- months and locations


def check_snapshot_month(snapshot_month: str) -> str:
    """``snapshot_month`` itself when it is a valid ``YYYY-MM``; a ValueError saying so otherwise."""
    if not _MONTH.match(snapshot_month):
        raise ValueError(f"snapshot_month must be 'YYYY-MM', got {snapshot_month!r}")
    return snapshot_month


def month_partition(snapshot_month: str) -> PartitionSpec:
    return PartitionSpec(((PARTITION_COLUMN, check_snapshot_month(snapshot_month)),))


def quarantine_uri(output: InventoryOutput) -> str:
    return join_uri(output.s3_prefix, "_quarantine") + "/"


def published_months(lake: Lake, output: InventoryOutput) -> list[str]:
    """Months with a ``_SUCCESS`` marker under the output prefix, ascending."""
    prefix = f"{PARTITION_COLUMN}="
    months = [name[len(prefix) :] for name in lake.list_children(output.s3_prefix) if name.startswith(prefix)]
    return [m for m in sorted(months) if _MONTH.match(m) and lake.is_published(output.s3_prefix, month_partition(m))]


# ---------------------------------------------------------------- reading published months


def _read_months(lake: Lake, spark: SparkSession, output: InventoryOutput, months: list[str]) -> DataFrame:
    """The published rows of ``months`` (months without a ``_SUCCESS`` marker are skipped)."""
    partitions = [month_partition(m) for m in months]
    return lake.read_partitions(spark, output.s3_prefix, partitions, output_contract(output))[0]


def _read_month(lake: Lake, spark: SparkSession, output: InventoryOutput, month: str) -> DataFrame:
    return _read_months(lake, spark, output, [month]).select(
        F.col(output.ip_output_column).alias("ip"),
        F.col(output.name_output_column).alias("machine_name"),
        F.lit(month).alias(PARTITION_COLUMN),
    )


def read_machine_inventory(
    lake: Lake, spark: SparkSession, output: InventoryOutput | str, up_to_month: str
) -> DataFrame:
    """``(ip, machine_name, snapshot_month)`` of every published month <= ``up_to_month``.

    ``output`` is the unload spec's output block, or just its ``s3_prefix`` (what FG-B knows from
    ``project_parameters``; the default output column names ``ip``/``machine_name`` are then read).
    The anti-join puts each IP in one month only; should an IP still appear twice (written there
    by other means), the latest month's row wins, so there is one row per IP.
    """
    check_snapshot_month(up_to_month)
    if isinstance(output, str):
        output = InventoryOutput(s3_prefix=output)
    months = [m for m in published_months(lake, output) if m <= up_to_month]
    if not months:
        return spark.createDataFrame([], MACHINE_INVENTORY_READ_SCHEMA)
    rows = reduce(DataFrame.unionByName, [_read_month(lake, spark, output, m) for m in months])
    latest_first = Window.partitionBy("ip").orderBy(F.col(PARTITION_COLUMN).desc())
    return rows.withColumn("_rank", F.row_number().over(latest_first)).where("_rank = 1").drop("_rank")


def existing_ips(lake: Lake, spark: SparkSession, output: InventoryOutput, *, exclude_month: str) -> DataFrame:
    """Distinct IPs published in every month except ``exclude_month`` (one column ``ip``)."""
    months = [m for m in published_months(lake, output) if m != exclude_month]
    df = _read_months(lake, spark, output, months)
    return df.select(F.col(output.ip_output_column).alias(EXISTING_IP_COLUMN)).distinct()


# ---------------------------------------------------------------- verification


def read_unloaded(lake: Lake, spark: SparkSession, unload_uri: str, output: InventoryOutput) -> DataFrame | None:
    """The unloaded rows with the contract's column names, or None when no Parquet file was written.

    Redshift writes lower-case column names, so names are matched case-insensitively; any other
    set of columns, or a column that is not a string, is a :class:`SchemaContractError`.
    """
    files = [uri for uri in lake.list_objects(unload_uri) if uri.endswith(".parquet")]
    if not files:
        return None
    df = spark.read.parquet(*[lake.spark_uri(uri) for uri in files])
    contract = output_contract(output)
    wanted = {f.name.lower(): f.name for f in contract.fields}
    actual = {c.lower(): c for c in df.columns}
    if set(actual) != set(wanted):
        raise InputDataError(unload_uri, f"unloaded columns {sorted(df.columns)}, expected {sorted(wanted.values())}")
    renamed = df.select(*[F.col(actual[key]).alias(name) for key, name in wanted.items()])
    return enforce_schema(renamed, contract, "machine_inventory (unloaded)")


def reject_reason(ip: Column, rank_within_ip: Column) -> Column:
    """null_ip / malformed_ip / duplicate_ip (second and later rows of one IP), else null (valid)."""
    return (
        F.when(ip.isNull(), F.lit("null_ip"))
        .when(~is_valid_ip(ip), F.lit("malformed_ip"))
        .when(rank_within_ip > 1, F.lit("duplicate_ip"))
    )


def classify_rows(unloaded: DataFrame, output: InventoryOutput) -> DataFrame:
    """Adds ``reject_reason``; of several rows for one IP, the smallest machine name is kept."""
    ip, name = F.col(output.ip_output_column), F.col(output.name_output_column)
    per_ip = Window.partitionBy(ip).orderBy(name.asc_nulls_last())
    return unloaded.withColumn("reject_reason", reject_reason(ip, F.row_number().over(per_ip)))


def count_classified(classified: DataFrame) -> dict[str, int]:
    """Total rows and rows per reject reason, in one aggregate."""
    reason = F.col("reject_reason")
    aggregates = [F.count(F.lit(1)).alias("rows")] + [
        F.sum(F.when(reason == r, 1).otherwise(0)).alias(r) for r in QUARANTINE_REASONS
    ]
    row = classified.agg(*aggregates).first()
    return {key: int(row[key] or 0) for key in ("rows", *QUARANTINE_REASONS)}


def verify_unload(
    lake: Lake, spark: SparkSession, unload_uri: str, output: InventoryOutput, reported: int
) -> tuple[DataFrame, dict[str, int]]:
    """The unloaded rows classified, and their counts; an unload that disagrees with the warehouse's
    own row count (or has no files for reported rows) is an :class:`InputDataError`."""
    unloaded = read_unloaded(lake, spark, unload_uri, output)
    if unloaded is None:
        if reported:
            raise InputDataError(unload_uri, f"the warehouse reported {reported} rows but wrote no Parquet file")
        unloaded = spark.createDataFrame([], output_contract(output))
    classified = classify_rows(unloaded, output)
    counts = count_classified(classified)
    if counts["rows"] != reported:
        raise InputDataError(unload_uri, f"the warehouse reported {reported} rows, its files hold {counts['rows']}")
    return classified, counts


def publish_month(
    lake: Lake, classified: DataFrame, output: InventoryOutput, partition: PartitionSpec, marker: dict[str, int]
) -> int:
    """Rejects to the quarantine, valid rows to the month's partition (its ``_SUCCESS`` written last).

    A month without rejects drops the quarantine an earlier run of it may have left. Returns the
    rows published.
    """
    month = F.lit(partition.label()).alias(PARTITION_COLUMN)
    contract = output_contract(output)
    quarantine = quarantine_uri(output)
    if marker["rows_quarantined"]:
        rejects = classified.where(F.col("reject_reason").isNotNull())
        rejects = enforce_schema(rejects, inventory_quarantine_schema(output), "machine_inventory_quarantine")
        lake.publish_partitions(rejects.select("*", month), quarantine, [partition], extra_marker=marker)
    else:
        lake.delete_prefix(join_uri(quarantine, partition.path()) + "/")
    valid = enforce_schema(classified.where(F.col("reject_reason").isNull()), contract, "machine_inventory")
    published = lake.publish_partitions(valid.select("*", month), output.s3_prefix, [partition], extra_marker=marker)
    return published[partition.label()]


# ---------------------------------------------------------------- the unload


def _check_spec(spec: MachineInventoryUnloadSpec, project: str, item: str) -> None:
    if not _IAM_ROLE.match(spec.redshift.iam_role):
        raise SpecError(project, item, "redshift.iam_role", f"not an IAM role ARN: {spec.redshift.iam_role!r}")


def unload_machine_inventory(
    *,
    spec: MachineInventoryUnloadSpec,
    project: str,
    item: str,
    warehouse: Warehouse,
    lake: Lake,
    spark: SparkSession,
    snapshot_month: str,
) -> InventoryUnloadResult:
    """Unload the machines not yet published and publish them as ``snapshot_month`` (see module docstring)."""
    partition = month_partition(snapshot_month)
    _check_spec(spec, project, item)
    output = spec.output
    select_sql = render_inventory_select(spec.query, output, project=project, item=item)
    work = join_uri(output.s3_prefix, "_staging", f"inventory-{snapshot_month}-{uuid.uuid4().hex}") + "/"
    try:
        existing = existing_ips(lake, spark, output, exclude_month=snapshot_month)
        rows_existing = existing.count()
        existing_uri = join_uri(work, "existing_ips") + "/" if rows_existing else None
        if existing_uri is not None:
            existing.write.parquet(lake.spark_uri(existing_uri))
        unload_uri = join_uri(work, "unload") + "/"
        reported = warehouse.unload_new_machines(
            spark, UnloadRequest(spec.redshift, select_sql, existing_ips_uri=existing_uri, destination_uri=unload_uri)
        )
        classified, counts = verify_unload(lake, spark, unload_uri, output, reported)
        counters = {
            "rows_existing_ips": rows_existing,
            "rows_reported_by_warehouse": reported,
            "rows_unloaded": counts["rows"],
            "rows_quarantined": sum(counts[r] for r in QUARANTINE_REASONS),
            **{f"rows_{r}": counts[r] for r in QUARANTINE_REASONS},
        }
        counters["rows_published"] = publish_month(lake, classified, output, partition, counters)
    finally:
        lake.delete_prefix(work)
    return InventoryUnloadResult(
        rows_existing_ips=rows_existing,
        rows_unloaded=counts["rows"],
        rows_published=counters["rows_published"],
        location=join_uri(output.s3_prefix, partition.path()) + "/",
        quarantine_location=join_uri(quarantine_uri(output), partition.path()) + "/",
        counters=counters,
    )
