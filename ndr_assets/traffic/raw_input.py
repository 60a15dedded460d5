"""Finding and reading the raw mini-batches of a range of 15-minute windows, skipping nothing unseen.

Shared by ``delta`` and ``pair_counts``, which both read the raw traffic of their windows. Every
object under the windows' mini-batch folders is either read or listed as skipped with its reason;
a file Spark cannot read (a truncated gzip, a corrupt Parquet footer) is set aside whole with its
cause, so one bad file costs its own rows, never the range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ndr_assets.transforms.dq import REJECT_SCHEMA
from ndr_assets.transforms.readers import TrafficRead, read_traffic, traffic_file_problem
from ndr_assets.transforms.windows import (
    MINI_BATCH_TIME_FORMAT,
    floor_to_window_start,
    mini_batch_landing_time,
    slice_start_col,
    window_end_col,
)
from ndr_resources.errors import InputDataError, UnreadableFileError
from ndr_resources.lake import Lake, join_uri, split_s3_uri
from ndr_resources.specs import DeltaInput

UNREADABLE_FILE = "unreadable_file"
# Objects that writers leave beside data (commit markers, checksums, S3 console folders): listed
# and counted, never read, and not a sign of missing data.
_BOOKKEEPING = re.compile(r"^(_SUCCESS|_committed_.*|_started_.*|.*\.crc|.*_\$folder\$)$")


@dataclass(frozen=True)
class SkippedObject:
    """An object (or folder) under the ingestion prefix that was not read, and why."""

    uri: str
    reason: str


@dataclass
class MiniBatchListing:
    """The mini-batches whose landing time falls in a window range, and what was passed over."""

    batches: list[str]
    files: list[str]  # what Spark reads (Lake.spark_uri of each data object)
    uris: dict[str, str] = field(default_factory=dict)  # Spark path -> the object's s3:// URI
    # Objects inside those mini-batch folders that are not read, with the reason.
    skipped: list[SkippedObject] = field(default_factory=list)
    # Folders under the ingestion prefix that belong to no window (no landing time, unsafe name).
    unrecognised_folders: list[SkippedObject] = field(default_factory=list)
    bookkeeping_objects: int = 0


def folder_problem(name: str) -> str | None:
    """Why a folder under the ingestion prefix is not a mini-batch of any window (None when it is)."""
    if "\\" in name or any(ord(ch) < 32 for ch in name):
        return "folder name contains a backslash or a control character: not a valid mini-batch id"
    if mini_batch_landing_time(name) is None:
        return f"folder name carries no landing time (expected {MINI_BATCH_TIME_FORMAT}[-suffix])"
    return None


def _object_problem(lake: Lake, uri: str, batch_uri: str, file_format: str) -> str | None:
    relative = uri[len(batch_uri) :]
    name = relative.rsplit("/", 1)[-1]
    try:
        split_s3_uri(uri)
        lake.spark_uri(uri)
    except InputDataError as exc:
        return f"unsafe key: {exc.problem}"
    if "/" in relative:
        return "nested below the mini-batch folder (a mini-batch holds its files directly)"
    return traffic_file_problem(name, file_format)


def list_mini_batches(
    lake: Lake, ingestion_prefix: str, start: datetime, end: datetime, file_format: str
) -> MiniBatchListing:
    """Mini-batch folders under ``ingestion_prefix`` that landed in ``[start, end)``, with their files."""
    listing = MiniBatchListing(batches=[], files=[])
    for name in lake.list_children(ingestion_prefix):
        problem = folder_problem(name)
        if problem:
            listing.unrecognised_folders.append(SkippedObject(join_uri(ingestion_prefix, name) + "/", problem))
        elif start <= floor_to_window_start(mini_batch_landing_time(name)) < end:
            listing.batches.append(name)
    for name in listing.batches:
        batch_uri = join_uri(ingestion_prefix, name) + "/"
        for uri in lake.list_objects(batch_uri):
            if _BOOKKEEPING.match(uri.rsplit("/", 1)[-1]) and "/" not in uri[len(batch_uri) :]:
                listing.bookkeeping_objects += 1
                continue
            problem = _object_problem(lake, uri, batch_uri, file_format)
            if problem:
                listing.skipped.append(SkippedObject(uri, problem))
            else:
                listing.files.append(lake.spark_uri(uri))
                listing.uris[listing.files[-1]] = uri
    return listing


def arrival_window_col() -> Column:
    """The window of the mini-batch that delivered a row (from its ``mini_batch_id``).

    Windowing is by arrival (processing time): a session that arrives late is counted in the window
    whose mini-batch delivered it, and its lateness is reported, so no window is ever rewritten after
    the fact and no row is lost.
    """
    landed = F.to_timestamp(F.substring("mini_batch_id", 1, 16), _spark_format(MINI_BATCH_TIME_FORMAT))
    return slice_start_col(landed)


def with_arrival_window(df: DataFrame) -> DataFrame:
    """Adds ``window_start`` (:func:`arrival_window_col`)."""
    return df.withColumn("window_start", arrival_window_col())


def _spark_format(python_format: str) -> str:
    return python_format.replace("%Y", "yyyy").replace("%m", "MM").replace("%d", "dd").replace(
        "%H", "HH"
    ).replace("%M", "mm").replace("%S", "ss").replace("T", "'T'").replace("Z", "'Z'")


def lateness_flags() -> dict[str, Column]:
    """Per row with ``window_start``: 1 when the session ended before its arrival window (``late_sessions``)
    or after it (``early_sessions``, clock skew), else 0; summed, they are :func:`lateness_counts`."""
    window_end = window_end_col(F.col("window_start"))
    return {
        "late_sessions": F.when(F.col("event_end") < F.col("window_start"), 1).otherwise(0),
        "early_sessions": F.when(F.col("event_end") >= window_end, 1).otherwise(0),
    }


def lateness_counts(traffic: DataFrame) -> dict[str, int]:
    """How many sessions ended before their arrival window (late) or after it (clock skew)."""
    row = traffic.agg(*[F.sum(flag).alias(name) for name, flag in lateness_flags().items()]).first()
    return {key: int(row[key] or 0) for key in ("late_sessions", "early_sessions")}


@dataclass(frozen=True)
class UnreadableFile:
    """A listed file Spark could not read in full; its rows are unknown, so it is quarantined whole."""

    path: str  # as Spark read it (the quarantine's source_file, like every reader reject)
    uri: str  # the object's s3:// URI
    mini_batch_id: str
    cause: str


@dataclass
class WindowTraffic:
    """The raw traffic of a window range: what was listed, read (records persisted), and set aside."""

    listing: MiniBatchListing
    read: TrafficRead
    unreadable: list[UnreadableFile]
    # ``read.counters()``, taken by the action that fills the records' cache (one scan, not two).
    reader_counts: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> DataFrame:
        return self.read.records

    def unreadable_rejects(self, spark: SparkSession) -> DataFrame:
        """One quarantine row (``REJECT_SCHEMA``) per unreadable file, its cause as the raw record."""
        binary = REJECT_SCHEMA["raw_record"].dataType.typeName() == "binary"
        rows = [
            (UNREADABLE_FILE, f.cause.encode("utf-8") if binary else f.cause, f.path, f.mini_batch_id)
            for f in self.unreadable
        ]
        return spark.createDataFrame(rows, REJECT_SCHEMA)

    def unpersist(self) -> None:
        self.read.records.unpersist()


def read_window_traffic(
    spark: SparkSession, lake: Lake, spec_input: DeltaInput, start: datetime, end: datetime
) -> WindowTraffic:
    """Lists and reads every mini-batch of ``[start, end)``; the records come back persisted.

    A file that fails to read is taken out and the rest read again, so the caller gets every
    readable record and the list of unreadable files with their causes.
    """
    listing = list_mini_batches(lake, spec_input.s3_prefix, start, end, spec_input.format)
    files = list(listing.files)
    unreadable: list[UnreadableFile] = []
    while True:
        read = None
        try:
            read = read_traffic(spark, files, spec_input)
            read.records.persist(StorageLevel.MEMORY_AND_DISK)
            # Every file is read here once, filling the cache that later actions use; the same
            # aggregation gives the read counters.
            counts = read.counters()
            return WindowTraffic(listing=listing, read=read, unreadable=unreadable, reader_counts=counts)
        except UnreadableFileError as exc:
            if read is not None:
                read.records.unpersist()
            if exc.location not in files:
                raise
            files.remove(exc.location)
            folder = exc.location.rstrip("/").rsplit("/", 2)[-2]
            unreadable.append(UnreadableFile(
                path=exc.location, uri=listing.uris[exc.location], mini_batch_id=folder, cause=exc.cause
            ))
