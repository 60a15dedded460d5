"""SageMaker Feature Store publishing of FG-A / FG-C windows (spec 001 ``feature_store`` map, spec 003 item 10).

Two publishers behind one interface, :class:`FeatureStorePublisher`:

- :class:`LocalFeatureStore` (embedded default): the offline table as Parquet in the lake, laid out
  like SageMaker's offline store (``year=/month=/day=/hour=`` of the event time).
- :class:`SageMakerFeatureStore`: ``offline and not online`` groups are ingested by writing the
  offline-store Parquet straight to the group's resolved S3 location through Spark (no API call per
  record, spec 003 item 10's "S3-based offline ingestion"); online groups get ``PutRecord`` calls made
  from the executors (``mapInPandas``), per partition in chunks of ``records_per_batch`` spread over a
  thread pool of ``max_workers``, retried with exponential backoff and full jitter on throttling and
  5xx. The driver only sees one aggregated status row.

Names. SageMaker feature and feature group names match ``[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}`` (at most
64 characters). A catalog column that does not is renamed deterministically by :func:`sagemaker_name`:
characters outside ``[a-zA-Z0-9_-]`` become ``_``, runs of separators collapse, leading/trailing
separators go, and the result is cut to 55 characters plus ``_`` and the first 8 hex digits of the
SHA-1 of the original name. A name that was already valid is kept unchanged. Every renamed column is
listed in :attr:`FeatureStoreOutcome.renamed_features` (for the materialization's metadata); the local
store also writes the whole column -> feature map next to its offline data as ``_feature_names.json``.

Records. ``record_id`` = ``host_ip|window_end_ts|window_label`` and ``event_time`` = the window end
as ISO-8601 UTC (``2026-04-01T00:08:00Z``), both String features. Timestamps become ISO strings, ints
Integral, floating point Fractional. Nulls, NaN and infinities are left out of a ``PutRecord`` (an
absent feature is SageMaker's null); the offline Parquet keeps them as nulls / NaN.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ndr_resources.errors import NdrError
from ndr_resources.lake import join_uri, local_path_for
from ndr_resources.model_specs import FeatureGroupTarget, FeatureStoreConfig

MAX_FEATURES_PER_GROUP = 2500  # CreateFeatureGroup FeatureDefinitions max (botocore's sagemaker model)
MAX_NAME_LENGTH = 64
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
# Columns SageMaker's offline store adds to every record; a feature may not use these names.
OFFLINE_STORE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
PARTITION_COLUMNS = ("year", "month", "day", "hour")
RECORD_KEY_COLUMNS = ("host_ip", "window_end_ts", "window_label")
FEATURE_NAMES_FILE = "_feature_names.json"
ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss'Z'"
DEFAULT_LOCAL_OFFLINE_URI = "s3://ndr-feature-store/offline-store"
# Error codes worth another attempt: throttling and the service's own 5xx faults.
RETRYABLE_ERROR_CODES = frozenset(
    {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)
BACKOFF_CAP_SECONDS = 20.0


class FeatureStoreError(NdrError, ValueError):
    """A feature group cannot be defined or written; the message names project, item and key."""

    def __init__(self, project: str | None, dataset: str, key: str, problem: str):
        self.project, self.dataset, self.key, self.problem = project, dataset, key, problem
        where = f"project '{project}', " if project else ""
        super().__init__(f"{where}item 'feature_store', key 'groups.{dataset}.{key}': {problem}")


# ---------------------------------------------------------------- names and definitions


def sagemaker_name(name: str) -> str:
    """``name`` if SageMaker accepts it as a feature (group) name, else its documented deterministic shortening."""
    if SAGEMAKER_NAME.match(name):
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name)
    cleaned = re.sub(r"[-_]*([-_])[-_]*", r"\1", cleaned).strip("-_")
    # 55 + "_" + 8 = 64: the hash keeps two long names with a common prefix apart.
    stem = cleaned[:55].rstrip("-_")
    return f"{stem}_{digest}" if stem else f"f_{digest}"


def feature_name_mapping(columns: Iterable[str], *, dataset: str, project: str | None = None) -> dict[str, str]:
    """Column -> feature name for every column, refusing reserved names and two columns on one name."""
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    for column in columns:
        name = sagemaker_name(column)
        if name.lower() in OFFLINE_STORE_COLUMNS:
            raise FeatureStoreError(project, dataset, "feature_group_name",
                                    f"column {column!r} uses a name SageMaker's offline store reserves ({', '.join(OFFLINE_STORE_COLUMNS)})")
        # Feature names are case-insensitive in the offline store's Glue table.
        clash = owner.get(name.lower())
        if clash is not None:
            raise FeatureStoreError(project, dataset, "feature_group_name",
                                    f"columns {clash!r} and {column!r} both map to feature name {name!r}")
        owner[name.lower()] = column
        mapping[column] = name
    return mapping


def _feature_type(data_type: Any) -> str | None:
    from pyspark.sql import types as T

    if isinstance(data_type, T.ByteType | T.ShortType | T.IntegerType | T.LongType | T.BooleanType):
        return "Integral"
    if isinstance(data_type, T.FloatType | T.DoubleType | T.DecimalType):
        return "Fractional"
    if isinstance(data_type, T.StringType | T.TimestampType | T.TimestampNTZType | T.DateType):
        return "String"
    return None


@dataclass(frozen=True)
class FeatureGroupLayout:
    """How one dataset's columns become one feature group's features."""

    dataset: str
    feature_group_name: str
    record_identifier: str
    event_time_feature: str
    columns: dict[str, str]  # catalog column -> feature name, in schema order
    feature_types: dict[str, str]  # feature name -> Integral | Fractional | String (record id / event time included)

    @property
    def renamed(self) -> dict[str, str]:
        return {column: name for column, name in self.columns.items() if column != name}


def feature_group_layout(
    group_name: str, schema: Any, target: FeatureGroupTarget, *, dataset: str, project: str | None = None
) -> FeatureGroupLayout:
    """The checked column -> feature layout of ``schema`` (a Spark StructType from the catalog)."""
    names = [f.name for f in schema.fields]
    missing = [c for c in RECORD_KEY_COLUMNS if c not in names]
    if missing:
        raise FeatureStoreError(project, dataset, "record_identifier",
                                f"the dataset has no {missing} column(s); record_id is built from {list(RECORD_KEY_COLUMNS)}")
    for added in (target.record_identifier, target.event_time_feature):
        if added in names:
            raise FeatureStoreError(project, dataset, "record_identifier" if added == target.record_identifier else "event_time_feature",
                                    f"{added!r} is added by the publisher but is already a column of the dataset")
    if target.record_identifier == target.event_time_feature:
        raise FeatureStoreError(project, dataset, "event_time_feature", "must differ from record_identifier")
    for key, value in (("record_identifier", target.record_identifier), ("event_time_feature", target.event_time_feature)):
        if not SAGEMAKER_NAME.match(value):
            raise FeatureStoreError(project, dataset, key, f"{value!r} is not a valid SageMaker feature name")
    total = len(names) + 2
    if total > MAX_FEATURES_PER_GROUP:
        raise FeatureStoreError(project, dataset, "feature_group_name",
                                f"{total} features ({len(names)} columns + record id + event time) exceed SageMaker's "
                                f"{MAX_FEATURES_PER_GROUP} per feature group; split the dataset over several groups")
    columns = feature_name_mapping(names, dataset=dataset, project=project)
    if {target.record_identifier.lower(), target.event_time_feature.lower()} & {n.lower() for n in columns.values()}:
        raise FeatureStoreError(project, dataset, "record_identifier", "a renamed column collides with the record id / event time feature")
    types = {target.record_identifier: "String", target.event_time_feature: "String"}
    for spark_field in schema.fields:
        feature_type = _feature_type(spark_field.dataType)
        if feature_type is None:
            raise FeatureStoreError(project, dataset, "feature_group_name",
                                    f"column {spark_field.name!r} has type {spark_field.dataType.simpleString()}, which no scalar "
                                    "SageMaker feature type holds")
        types[columns[spark_field.name]] = feature_type
    return FeatureGroupLayout(dataset, sagemaker_name(group_name), target.record_identifier, target.event_time_feature, columns, types)


def feature_group_definition(
    group_name: str, schema: Any, target: FeatureGroupTarget, *, offline_s3_uri: str | None, role_arn: str | None,
    dataset: str = "", project: str | None = None,
) -> dict[str, Any]:
    """The CreateFeatureGroup request for ``schema`` (the catalog's contract of the dataset)."""
    dataset = dataset or group_name
    layout = feature_group_layout(group_name, schema, target, dataset=dataset, project=project)
    if not (target.offline or target.online):
        raise FeatureStoreError(project, dataset, "offline", "the group enables neither the offline nor the online store")
    request: dict[str, Any] = {
        "FeatureGroupName": layout.feature_group_name,
        "RecordIdentifierFeatureName": layout.record_identifier,
        "EventTimeFeatureName": layout.event_time_feature,
        "FeatureDefinitions": [{"FeatureName": n, "FeatureType": t} for n, t in layout.feature_types.items()],
        "Description": f"NDR {dataset} windows, one record per host_ip|window_end_ts|window_label"[:128],
    }
    if target.online:
        request["OnlineStoreConfig"] = {"EnableOnlineStore": True}
    if target.offline:
        if not offline_s3_uri:
            raise FeatureStoreError(project, dataset, "offline_s3_uri", "an offline store needs an s3:// location")
        if not role_arn:
            # SageMaker writes the offline store with this role; without it CreateFeatureGroup fails.
            raise FeatureStoreError(project, dataset, "role_arn", "an offline store needs feature_store.role_arn")
        request["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": offline_s3_uri.rstrip("/")}, "TableFormat": "Glue"}
    if role_arn:
        request["RoleArn"] = role_arn
    return request


# ---------------------------------------------------------------- the records, in Spark


def offline_store_frame(df: Any, layout: FeatureGroupLayout, *, with_write_columns: bool) -> Any:
    """``df`` as offline-store rows: renamed features, record id, event time, partition columns.

    ``with_write_columns`` adds what SageMaker's own ingestion writes (``write_time``,
    ``api_invocation_time``, ``is_deleted``), so Athena queries over the group see the usual columns.
    """
    from pyspark.sql import functions as F

    _require_utc(df)
    event_time = F.date_format(F.col("window_end_ts"), ISO_UTC)
    record_id = F.concat_ws("|", F.col("host_ip"), event_time, F.col("window_label"))
    columns = [record_id.alias(layout.record_identifier), event_time.alias(layout.event_time_feature)]
    for column, name in layout.columns.items():
        value = F.col(f"`{column}`")
        if layout.feature_types[name] == "String" and column == "window_end_ts":
            value = F.date_format(value, ISO_UTC)
        elif layout.feature_types[name] == "String":
            value = value.cast("string")
        elif layout.feature_types[name] == "Integral":
            value = value.cast("long")
        else:
            value = value.cast("double")
        columns.append(value.alias(name))
    if with_write_columns:
        columns += [F.current_timestamp().alias("write_time"), F.current_timestamp().alias("api_invocation_time"),
                    F.lit(False).alias("is_deleted")]
    columns += [F.date_format(F.col("window_end_ts"), pattern).alias(part)
                for part, pattern in zip(PARTITION_COLUMNS, ("yyyy", "MM", "dd", "HH"), strict=True)]
    return df.select(*columns)


def _require_utc(df: Any) -> None:
    zone = df.sparkSession.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z"):
        # event_time and the hour partitions are formatted in the session zone; they must be UTC.
        raise NdrError(f"the Spark session time zone is {zone!r}; Feature Store records need spark.sql.session.timeZone=UTC")


def _write_offline(df: Any, layout: FeatureGroupLayout, spark_path: str, *, with_write_columns: bool) -> None:
    # Append: the offline store is a log of record versions (readers keep the latest write_time per
    # record id), and an hour partition holds four windows written by four runs.
    (offline_store_frame(df, layout, with_write_columns=with_write_columns)
     .write.mode("append").partitionBy(*PARTITION_COLUMNS).parquet(spark_path))


# ---------------------------------------------------------------- PutRecord from the executors


@dataclass(frozen=True)
class PutRecordSettings:
    """What an executor needs to write one partition (plain values: it is pickled into the task)."""

    feature_group_name: str
    region_name: str | None
    endpoint_url: str | None
    target_stores: tuple[str, ...] | None
    records_per_batch: int
    max_workers: int
    max_retries: int
    backoff_seconds: float
    timeout_seconds: float = 10.0


STATUS_SCHEMA = "records long, batches long, calls long, retries long, failed long, first_error string"


def _is_retryable(exc: Exception) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in RETRYABLE_ERROR_CODES or status >= 500 or status == 429
    return isinstance(exc, ConnectionError | HTTPClientError)


def _put_with_retries(client: Any, settings: PutRecordSettings, record: list[dict[str, str]]) -> tuple[int, int, str | None]:
    """(calls, retries, error or None) for one record."""
    kwargs: dict[str, Any] = {"FeatureGroupName": settings.feature_group_name, "Record": record}
    if settings.target_stores:
        kwargs["TargetStores"] = list(settings.target_stores)
    for attempt in range(settings.max_retries + 1):
        try:
            client.put_record(**kwargs)
            return attempt + 1, attempt, None
        except Exception as exc:
            if attempt == settings.max_retries or not _is_retryable(exc):
                return attempt + 1, attempt, f"{type(exc).__name__}: {exc}"[:500]
            # Full jitter (sleep uniformly in [0, base * 2^attempt]): concurrent writers that were
            # throttled together do not retry together.
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, settings.backoff_seconds * 2**attempt)))
    raise AssertionError("unreachable")


def _records(pdf: Any) -> list[list[dict[str, str]]]:
    names = list(pdf.columns)
    out = []
    for values in pdf.itertuples(index=False, name=None):
        out.append([{"FeatureName": n, "ValueAsString": v} for n, v in zip(names, values, strict=True)
                    if v is not None and v not in ("NaN", "Infinity", "-Infinity")])
    return out


def put_partition(settings: PutRecordSettings, frames: Iterator[Any]) -> Iterator[Any]:
    """``mapInPandas`` body: PutRecord every row of one partition, yield one status row per chunk."""
    import boto3
    import pandas as pd
    from botocore.config import Config

    # One client per partition, shared by the threads (boto3 clients are thread-safe); botocore's own
    # retries are off so every attempt is counted here.
    client = boto3.client(
        "sagemaker-featurestore-runtime", region_name=settings.region_name, endpoint_url=settings.endpoint_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=max(10, settings.max_workers),
                      connect_timeout=settings.timeout_seconds, read_timeout=settings.timeout_seconds),
    )
    with ThreadPoolExecutor(max_workers=settings.max_workers) as pool:
        for frame in frames:
            for start in range(0, len(frame), settings.records_per_batch):
                records = _records(frame.iloc[start : start + settings.records_per_batch])
                results = list(pool.map(lambda r: _put_with_retries(client, settings, r), records))
                errors = [e for _, _, e in results if e]
                yield pd.DataFrame({
                    "records": [len(records)], "batches": [1], "calls": [sum(c for c, _, _ in results)],
                    "retries": [sum(r for _, r, _ in results)], "failed": [len(errors)],
                    "first_error": [errors[0] if errors else None],
                })


def put_records(df: Any, layout: FeatureGroupLayout, settings: PutRecordSettings) -> dict[str, Any]:
    """PutRecord every row of ``df`` from the executors; the driver gets one aggregated row back."""
    from pyspark.sql import functions as F

    rows = offline_store_frame(df, layout, with_write_columns=False).drop(*PARTITION_COLUMNS)
    # Values travel as strings (ValueAsString); Spark's cast keeps longs exact where pandas would
    # turn a nullable long column into floats.
    as_text = rows.select(*[F.col(f"`{c}`").cast("string").alias(c) for c in rows.columns])
    status = as_text.mapInPandas(lambda frames: put_partition(settings, frames), STATUS_SCHEMA)
    total = status.agg(
        *[F.coalesce(F.sum(c), F.lit(0)).alias(c) for c in ("records", "batches", "calls", "retries", "failed")],
        F.first("first_error", ignorenulls=True).alias("first_error"),
    ).collect()[0]  # one row: the aggregation is bounded whatever the data size
    return total.asDict()


# ---------------------------------------------------------------- the resources


@dataclass(frozen=True)
class FeatureStoreOutcome:
    records: int
    batches: int
    calls: int
    retries: int
    failed_records: int
    offline_uri: str | None
    feature_group_name: str = ""
    first_error: str | None = None
    renamed_features: dict[str, str] = field(default_factory=dict)


class FeatureStorePublisher(dg.ConfigurableResource, ABC):
    """Publishes one dataset's rows to its feature group (``feature_store.groups.<dataset>``)."""

    @abstractmethod
    def publish(self, df: Any, *, dataset: str, config: FeatureStoreConfig, target: FeatureGroupTarget,
                project: str | None = None) -> FeatureStoreOutcome:
        """Write ``df`` (rows of the catalog contract of ``dataset``) to ``target``'s group."""

    @staticmethod
    def _layout(df: Any, dataset: str, target: FeatureGroupTarget, project: str | None) -> FeatureGroupLayout:
        return feature_group_layout(target.feature_group_name, df.schema, target, dataset=dataset, project=project)


class LocalFeatureStore(FeatureStorePublisher):
    """Embedded default: the offline table as Parquet in the local lake, partitioned like SageMaker's."""

    lake_root: str
    default_offline_uri: str = DEFAULT_LOCAL_OFFLINE_URI  # used when the group names no offline_s3_uri

    def offline_uri(self, target: FeatureGroupTarget) -> str:
        return join_uri(target.offline_s3_uri or self.default_offline_uri, target.feature_group_name)

    def publish(self, df: Any, *, dataset: str, config: FeatureStoreConfig, target: FeatureGroupTarget,
                project: str | None = None) -> FeatureStoreOutcome:
        layout = self._layout(df, dataset, target, project)
        uri = self.offline_uri(target)
        if not config.enabled:
            return FeatureStoreOutcome(0, 0, 0, 0, 0, None, layout.feature_group_name)
        records = df.count()  # one pass over the window's rows; the write is the second
        _write_offline(df, layout, str(local_path_for(uri, self.lake_root)), with_write_columns=True)
        names_file = local_path_for(join_uri(uri, FEATURE_NAMES_FILE), self.lake_root)
        names_file.write_text(json.dumps(layout.columns, indent=1, sort_keys=True))
        return FeatureStoreOutcome(records, 1, 0, 0, 0, uri, layout.feature_group_name, None, layout.renamed)


class SageMakerFeatureStore(FeatureStorePublisher):
    """SageMaker Feature Store: offline through S3 Parquet, online through PutRecord from the executors."""

    region_name: str | None = None
    endpoint_url: str | None = None  # the sagemaker control plane (moto in tests)
    runtime_endpoint_url: str | None = None  # sagemaker-featurestore-runtime (a loopback peer in tests)
    # Where Spark writes an s3:// offline URI: None -> s3a:// (the processing image's S3 filesystem);
    # a folder -> the same URI mapped under it like the local lake (this machine has no s3a jars).
    offline_lake_root: str | None = None
    create_timeout_seconds: float = 600.0

    def _client(self, config: FeatureStoreConfig) -> Any:
        import boto3

        return boto3.client("sagemaker", region_name=self.region_name or config.region, endpoint_url=self.endpoint_url)

    def _spark_path(self, uri: str) -> str:
        if self.offline_lake_root:
            return str(local_path_for(uri, self.offline_lake_root))
        return "s3a://" + uri[len("s3://"):]

    def ensure_feature_group(self, schema: Any, *, dataset: str, config: FeatureStoreConfig, target: FeatureGroupTarget,
                             project: str | None = None) -> dict[str, Any]:
        """The group's description, creating it first when it does not exist, and checking its features.

        Creates first and describes on ResourceInUse (rather than describe -> create): two runs racing
        cannot both create, and moto answers DescribeFeatureGroup of a missing group with a 500.
        """
        from botocore.exceptions import ClientError

        request = feature_group_definition(target.feature_group_name, schema, target, offline_s3_uri=target.offline_s3_uri,
                                           role_arn=config.role_arn, dataset=dataset, project=project)
        client = self._client(config)
        try:
            client.create_feature_group(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ResourceInUse", "ResourceInUseException"):
                raise FeatureStoreError(project, dataset, "feature_group_name",
                                        f"CreateFeatureGroup {request['FeatureGroupName']!r} failed: {exc}") from exc
        deadline = time.monotonic() + self.create_timeout_seconds
        while True:
            described = client.describe_feature_group(FeatureGroupName=request["FeatureGroupName"])
            status = described.get("FeatureGroupStatus", "Created")
            if status == "Created":
                break
            if status != "Creating" or time.monotonic() > deadline:
                raise FeatureStoreError(project, dataset, "feature_group_name",
                                        f"feature group {request['FeatureGroupName']!r} is {status}: {described.get('FailureReason', '')}")
            time.sleep(5)
        have = {d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]}
        wanted = {d["FeatureName"]: d["FeatureType"] for d in request["FeatureDefinitions"]}
        problems = [f"{n} ({t}, group has {have.get(n, 'none')})" for n, t in wanted.items() if have.get(n) != t]
        if problems:
            # UpdateFeatureGroup can add features but never change a type; adding is a deliberate migration.
            raise FeatureStoreError(project, dataset, "feature_group_name",
                                    f"existing feature group {request['FeatureGroupName']!r} lacks or mistypes {len(problems)} "
                                    f"feature(s): {problems[:5]}")
        return described

    def publish(self, df: Any, *, dataset: str, config: FeatureStoreConfig, target: FeatureGroupTarget,
                project: str | None = None) -> FeatureStoreOutcome:
        layout = self._layout(df, dataset, target, project)
        if not config.enabled:
            return FeatureStoreOutcome(0, 0, 0, 0, 0, None, layout.feature_group_name)
        described = self.ensure_feature_group(df.schema, dataset=dataset, config=config, target=target, project=project)
        offline = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {})
        offline_uri = offline.get("ResolvedOutputS3Uri") or offline.get("S3Uri")
        if target.offline and not target.online:
            records = df.count()
            _write_offline(df, layout, self._spark_path(offline_uri), with_write_columns=True)
            return FeatureStoreOutcome(records, 1, 0, 0, 0, offline_uri, layout.feature_group_name, None, layout.renamed)
        settings = PutRecordSettings(
            feature_group_name=layout.feature_group_name, region_name=self.region_name or config.region,
            endpoint_url=self.runtime_endpoint_url,
            # Online and offline: SageMaker replicates PutRecord into the offline store itself.
            target_stores=("OnlineStore", "OfflineStore") if target.offline else ("OnlineStore",),
            records_per_batch=config.records_per_batch, max_workers=config.max_workers,
            max_retries=config.max_retries, backoff_seconds=config.backoff_seconds,
        )
        total = put_records(df, layout, settings)
        return FeatureStoreOutcome(
            int(total["records"]), int(total["batches"]), int(total["calls"]), int(total["retries"]), int(total["failed"]),
            offline_uri if target.offline else None, layout.feature_group_name, total["first_error"], layout.renamed,
        )
