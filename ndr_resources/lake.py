"""The lake: ``s3://bucket/key`` URIs, stored in S3 (production) or under a local folder (embedded).

Every dataset keeps the same URIs in both environments; the local lake maps them onto its root in
exactly one place, :func:`local_path_for`. Writes are atomic per partition: Spark writes into a
staging prefix, then each partition is swapped into place and gets a ``_SUCCESS`` marker. Readers
only read partitions that carry the marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from ndr_resources.errors import InputDataError

SUCCESS_MARKER = "_SUCCESS"


# S3's naming rules for general purpose buckets
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_IPV4_LIKE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse ``name`` as a general purpose bucket name, or None if it is valid."""
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} must be 3 to 63 characters long, not {len(name)}"
    if not _BUCKET_CHARACTERS.match(name):
        return (f"bucket name {name!r} may hold only lowercase letters, digits, dots and hyphens, and must "
                "start and end with a letter or digit")
    if ".." in name:
        return f"bucket name {name!r} has two adjacent dots"
    if _IPV4_LIKE.match(name):
        return f"bucket name {name!r} is formatted as an IP address"
    if name.startswith(RESERVED_BUCKET_PREFIXES):
        return f"bucket name {name!r} starts with a prefix S3 reserves ({', '.join(RESERVED_BUCKET_PREFIXES)})"
    if name.endswith(RESERVED_BUCKET_SUFFIXES):
        return f"bucket name {name!r} ends with a suffix S3 reserves ({', '.join(RESERVED_BUCKET_SUFFIXES)})"
    return None


def validate_bucket_name(name: str) -> str:
    """``name`` if S3 accepts it as a general purpose bucket name; a ValueError saying why not otherwise."""
    problem = bucket_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``), refusing invalid buckets and anything that could escape one."""
    if not uri.startswith("s3://"):
        raise InputDataError(uri, "not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    problem = bucket_name_problem(bucket)
    if problem:
        raise InputDataError(uri, problem)
    parts = key.split("/")
    if any(p in ("..", ".") for p in parts) or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InputDataError(uri, "key contains '..', '.', a backslash, a NUL or a leading '/'")
    return bucket, key


def join_uri(prefix: str, *parts: str) -> str:
    """``join_uri("s3://b/a/", "x/", "y")`` -> ``s3://b/a/x/y`` (never a trailing slash)."""
    return "/".join([prefix.rstrip("/")] + [p.strip("/") for p in parts if p.strip("/")])


def local_path_for(uri: str, root: str | os.PathLike[str]) -> Path:
    """The one mapping from an ``s3://bucket/key`` URI onto the local lake root."""
    bucket, key = split_s3_uri(uri)
    return Path(root) / bucket / key


@dataclass(frozen=True)
class PartitionSpec:
    """One physical partition of a dataset: ordered ``column=value`` path segments."""

    values: tuple[tuple[str, str], ...]

    def path(self) -> str:
        return "/".join(f"{col}={val}" for col, val in self.values) + "/"

    def label(self) -> str:
        return "/".join(val for _, val in self.values)


class Lake(dg.ConfigurableResource, ABC):
    """Object storage behind ``s3://`` URIs, plus the atomic partition publish protocol."""

    # ---- primitives

    @abstractmethod
    def spark_uri(self, uri: str) -> str:
        """What Spark reads and writes for this URI."""

    @abstractmethod
    def list_children(self, prefix_uri: str) -> list[str]:
        """Names of immediate 'folders' under a prefix (sorted)."""

    @abstractmethod
    def list_objects(self, prefix_uri: str) -> list[str]:
        """URIs of all objects below a prefix (sorted, recursive)."""

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None: ...

    @abstractmethod
    def delete_prefix(self, prefix_uri: str) -> None: ...

    @abstractmethod
    def move_prefix(self, src_uri: str, dst_uri: str) -> None:
        """Move every object under ``src`` to the same relative key under ``dst``."""

    # ---- protocol built on the primitives

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri).decode("utf-8"))

    def write_json(self, uri: str, value: Any) -> None:
        self.write_bytes(uri, json.dumps(value, indent=2, sort_keys=True, default=str).encode("utf-8"))

    def is_published(self, dataset_uri: str, partition: PartitionSpec) -> bool:
        return self.exists(join_uri(dataset_uri, partition.path(), SUCCESS_MARKER))

    def publish_partitions(
        self,
        df: Any,
        dataset_uri: str,
        partitions: Sequence[PartitionSpec],
        *,
        extra_marker: dict[str, Any] | None = None,
        rows: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Write ``df`` (which carries the partition columns) and publish each listed partition.

        Each partition in ``partitions`` is replaced exactly, even when ``df`` has no rows for it
        (it is then published empty), so re-materializing a range is idempotent. Rows whose
        partition values are not listed are an error: the caller asked to publish a range.
        Returns rows written per partition label. ``rows``: the rows per partition label, when the
        caller already counted them on the (persisted) frame it writes; the written files are then
        not read back, and a row outside the range fails before anything is written.
        """
        from pyspark.sql import functions as F

        columns = [col for col, _ in partitions[0].values] if partitions else []
        expected = {p.label() for p in partitions}
        if rows is not None:
            unexpected = sorted(label for label, count in rows.items() if count and label not in expected)
            if unexpected:
                raise InputDataError(dataset_uri, f"rows fall outside the partitions being published: {unexpected[:5]}")
        staging = join_uri(dataset_uri, "_staging", uuid.uuid4().hex) + "/"
        # One file per published partition: without the repartition every task writes a file into every
        # partition it holds rows of (shuffle partitions x windows files of a few rows, each paying a
        # Parquet footer and column chunks for every column of a wide feature table).
        # The explicit count keeps adaptive execution from coalescing a small frame into one writing task.
        parallelism = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
        written_frame = df.repartition(parallelism, *columns) if columns else df
        written_frame.write.mode("overwrite").partitionBy(*columns).parquet(self.spark_uri(staging))
        counts: dict[str, int] = dict(rows) if rows is not None else {}
        # Partition values are text ("0808"): counting must not let Spark infer them as numbers.
        df.sparkSession.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        written = df.sparkSession.read.parquet(self.spark_uri(staging)) if rows is None and self.list_objects(staging) else None
        if written is not None and columns:
            for row in written.groupBy(*[F.col(c).cast("string") for c in columns]).count().collect():
                counts["/".join(str(row[i]) for i in range(len(columns)))] = int(row["count"])
        unexpected = sorted(set(counts) - expected) if rows is None else []
        if unexpected:
            self.delete_prefix(staging)
            raise InputDataError(dataset_uri, f"rows fall outside the partitions being published: {unexpected[:5]}")
        for partition in partitions:
            final = join_uri(dataset_uri, partition.path()) + "/"
            self.delete_prefix(final)
            source = join_uri(staging, partition.path()) + "/"
            if self.list_objects(source):
                self.move_prefix(source, final)
            marker = {"rows": counts.get(partition.label(), 0), **(extra_marker or {})}
            self.write_json(join_uri(final, SUCCESS_MARKER), marker)
        self.delete_prefix(staging)
        return {p.label(): counts.get(p.label(), 0) for p in partitions}

    def _scan_partitions(
        self, dataset_uri: str, partitions: Sequence[PartitionSpec]
    ) -> tuple[list[tuple[PartitionSpec, bool]], list[PartitionSpec]]:
        """``([(published partition, holds Parquet files)], [unpublished partitions])``.

        Lists each top-level partition folder (e.g. one ``dt=`` day) once, not each partition, so a
        30-day scan costs 30 listings.
        """
        by_top: dict[str, list[PartitionSpec]] = {}
        for partition in partitions:
            by_top.setdefault(partition.path().split("/", 1)[0], []).append(partition)
        published, missing = [], []
        for top, members in by_top.items():
            objects = set(self.list_objects(join_uri(dataset_uri, top) + "/"))
            for partition in members:
                base = join_uri(dataset_uri, partition.path()) + "/"
                if base + SUCCESS_MARKER not in objects:
                    missing.append(partition)
                else:
                    published.append((partition, any(o.startswith(base) and o.endswith(".parquet") for o in objects)))
        return published, missing

    def unpublished(self, dataset_uri: str, partitions: Sequence[PartitionSpec]) -> list[PartitionSpec]:
        """The partitions among ``partitions`` that carry no ``_SUCCESS`` marker, in the given order."""
        return self._scan_partitions(dataset_uri, partitions)[1]

    def read_partitions(
        self, spark: Any, dataset_uri: str, partitions: Sequence[PartitionSpec], schema: Any
    ) -> tuple[Any, list[PartitionSpec]]:
        """Read the published partitions among ``partitions`` with an explicit schema.

        Returns the DataFrame and the partitions that were not published (callers decide whether a
        missing upstream partition is an error).
        """
        published, missing = self._scan_partitions(dataset_uri, partitions)
        paths = [self.spark_uri(join_uri(dataset_uri, p.path()) + "/") for p, has_files in published if has_files]
        if not paths:
            return spark.createDataFrame([], schema), missing
        return spark.read.schema(schema).parquet(*paths), missing


class LocalLake(Lake):
    """The embedded lake: ``s3://bucket/key`` lives at ``<root>/bucket/key``."""

    root: str

    def _path(self, uri: str) -> Path:
        return local_path_for(uri, self.root)

    def spark_uri(self, uri: str) -> str:
        return str(self._path(uri))

    def list_children(self, prefix_uri: str) -> list[str]:
        path = self._path(prefix_uri)
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir() if p.is_dir())

    def list_objects(self, prefix_uri: str) -> list[str]:
        path = self._path(prefix_uri)
        if not path.is_dir():
            return []
        base = prefix_uri.rstrip("/")
        return sorted(
            base + "/" + str(p.relative_to(path)).replace(os.sep, "/") for p in path.rglob("*") if p.is_file()
        )

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        path = self._path(uri)
        if not path.is_file():
            raise InputDataError(uri, "object does not exist")
        return path.read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def delete_prefix(self, prefix_uri: str) -> None:
        path = self._path(prefix_uri)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        # Like S3, a folder exists only while it holds objects: prune emptied parents up to the bucket.
        bucket_dir = self._path("s3://" + split_s3_uri(prefix_uri)[0] + "/")
        parent = path.parent
        while parent != bucket_dir and bucket_dir in parent.parents and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def move_prefix(self, src_uri: str, dst_uri: str) -> None:
        src, dst = self._path(src_uri), self._path(dst_uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


class S3Lake(Lake):
    """The production lake on Amazon S3 (boto3 for listing and markers, s3a:// for Spark)."""

    region_name: str | None = None
    endpoint_url: str | None = None

    def _client(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=self.region_name, endpoint_url=self.endpoint_url)

    def spark_uri(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        return f"s3a://{bucket}/{key}"

    def _list(self, prefix_uri: str, delimiter: str | None) -> Any:
        bucket, key = split_s3_uri(prefix_uri)
        paginator = self._client().get_paginator("list_objects_v2")
        kwargs = {"Bucket": bucket, "Prefix": key.rstrip("/") + "/" if key else ""}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        return bucket, kwargs["Prefix"], paginator.paginate(**kwargs)

    def list_children(self, prefix_uri: str) -> list[str]:
        _, prefix, pages = self._list(prefix_uri, "/")
        names = []
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(names)

    def list_objects(self, prefix_uri: str) -> list[str]:
        bucket, _, pages = self._list(prefix_uri, None)
        return sorted(f"s3://{bucket}/{obj['Key']}" for page in pages for obj in page.get("Contents", []))

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        response = self._client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(obj["Key"] == key or obj["Key"].startswith(key.rstrip("/") + "/") for obj in response.get("Contents", []))

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        try:
            return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # botocore's NoSuchKey is generated per client
            raise InputDataError(uri, f"cannot read object: {exc}") from exc

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self._client().put_object(Bucket=bucket, Key=key, Body=data)

    def delete_prefix(self, prefix_uri: str) -> None:
        client = self._client()
        objects = self.list_objects(prefix_uri)
        for start in range(0, len(objects), 1000):
            batch = [split_s3_uri(u) for u in objects[start : start + 1000]]
            client.delete_objects(
                Bucket=batch[0][0], Delete={"Objects": [{"Key": key} for _, key in batch], "Quiet": True}
            )

    def move_prefix(self, src_uri: str, dst_uri: str) -> None:
        client = self._client()
        src_base = src_uri.rstrip("/") + "/"
        for obj in self.list_objects(src_uri):
            sbucket, skey = split_s3_uri(obj)
            dbucket, dkey = split_s3_uri(dst_uri.rstrip("/") + "/" + obj[len(src_base) :])
            client.copy_object(Bucket=dbucket, Key=dkey, CopySource={"Bucket": sbucket, "Key": skey})
        self.delete_prefix(src_uri)
