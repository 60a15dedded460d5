"""Raw mini-batch files -> canonical traffic (``TRAFFIC_SCHEMA``), reader rejects and read counters.

The caller lists the files of one or more mini-batch folders (the Lake does that) and passes their
Spark-readable paths; every path contains ``/<mini_batch_id>/``. One pass over the files gives one
row per record with a read status:

- null: a canonical traffic row (-> :attr:`TrafficRead.traffic`);
- ``non_traffic``: a log line of another PAN-OS type (THREAT, SYSTEM, ...): counted and skipped;
- a reject reason (-> :attr:`TrafficRead.rejects`, ``REJECT_SCHEMA``):
  ``unparseable_json`` (a JSON line that is not a JSON object), ``short_line`` (a PAN-OS CSV line
  with fewer than 47 fields), ``garbled_line`` (a number or timestamp that cannot be parsed, in any
  format, or a CSV line without a log type). Rejects carry no ``window_start``:
  :func:`ndr_assets.transforms.dq.to_quarantine` adds it.

Column resolution (``field_mapping``, canonical -> source column): a mapped canonical field reads
its source column; an unmapped one reads a same-named source column when there is one, else it is
null. A missing mapped column, or a missing required column (``REQUIRED_TRAFFIC_FIELDS``), raises
:class:`InputDataError` naming the file and the column. The source columns are known from file
metadata: the Parquet footer of the first file, the fixed PAN-OS CSV positions, and for JSON the
keys of the first (up to) ten lines of the first file (a tiny Spark read; JSON has no metadata). A
later file that lacks a column therefore reads as null there, and the DQ rules reject those rows
with a reason rather than failing the batch.

Spark reads lazily: a truncated or corrupt file fails when an action runs. Run actions on the
returned frames inside :meth:`TrafficRead.named_read_errors` (``counters()`` does) to turn that
failure into an :class:`InputDataError` naming the file. Decompression follows the file extension
(``.gz``); ``format`` ``json`` and ``jsonl`` both mean JSON lines. Timestamps are read as UTC wall
time when they carry no offset (the session time zone is UTC).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms.dq import REJECT_SCHEMA
from ndr_assets.transforms.panos_csv import (
    MIN_TRAFFIC_FIELDS,
    PANOS_CSV_FIELDS,
    is_traffic_type,
    parse_panos_lines,
)
from ndr_assets.transforms.schemas import TRAFFIC_SCHEMA
from ndr_resources.errors import InputDataError
from ndr_resources.specs import CANONICAL_TRAFFIC_FIELDS, REQUIRED_TRAFFIC_FIELDS, DeltaInput

READ_REJECT_REASONS = ("unparseable_json", "short_line", "garbled_line")
NON_TRAFFIC = "non_traffic"
PANOS_TIME_FORMAT = "yyyy/MM/dd HH:mm:ss"
# The field_mapping of a PAN-OS source (seeds and the generator use it); never applied implicitly.
PANOS_FIELD_MAPPING: dict[str, str] = {
    "source_ip": "src",
    "destination_ip": "dst",
    "source_port": "sport",
    "destination_port": "dport",
    "protocol": "proto",
    "action": "action",
    "source_bytes": "bytes_sent",
    "destination_bytes": "bytes_received",
    "packets": "packets",
    "event_start": "start",
    "event_end": "time_generated",
    "duration_s": "elapsed",
    "application": "app",
    "rule": "rule",
    "source_zone": "from",
    "destination_zone": "to",
    "session_end_reason": "session_end_reason",
    "log_type": "type",
    "log_subtype": "subtype",
    "device_serial": "serial",
    "session_id": "sessionid",
}
TRAFFIC_FILE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "json": (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"),
    "parquet": (".parquet",),
    "panos_csv": (".log", ".log.gz", ".csv", ".csv.gz", ".txt", ".txt.gz"),
}
TRAFFIC_FILE_SUFFIXES["jsonl"] = TRAFFIC_FILE_SUFFIXES["json"]

_STATUS = "_read_status"
_RAW_RECORD = "_raw_record"
_SOURCE_FILE = "_source_file"
_CORRUPT = "_corrupt_record"
_JSON_SAMPLE_LINES = 10
_CANONICAL_TYPES = {f.name: f.dataType for f in TRAFFIC_SCHEMA.fields if f.name in CANONICAL_TRAFFIC_FIELDS}
_LOWER_CASE_FIELDS = ("protocol", "action")
_RECORDS_SCHEMA = T.StructType(
    TRAFFIC_SCHEMA.fields
    + [T.StructField(_STATUS, T.StringType()), T.StructField(_RAW_RECORD, T.StringType())]
)


# ---------------------------------------------------------------- public API


@dataclass(frozen=True)
class TrafficRead:
    """What :func:`read_traffic` found: traffic rows, rejected rows, and every record with its status."""

    traffic: DataFrame  # TRAFFIC_SCHEMA
    rejects: DataFrame  # REJECT_SCHEMA (QUARANTINE_SCHEMA without window_start)
    records: DataFrame  # one row per record read: canonical columns + _read_status + _raw_record
    spark: SparkSession
    files: tuple[str, ...]
    file_format: str

    @contextmanager
    def named_read_errors(self) -> Iterator[None]:
        """Run Spark actions on these frames inside this block: unreadable files raise InputDataError."""
        with read_errors_named(self.spark, self.files, self.file_format):
            yield

    def counters(self) -> dict[str, int]:
        """Read counters in one aggregation (0 when a reason never occurs).

        ``rows_read`` (records; non-blank lines for CSV), ``traffic_rows``, ``non_traffic_lines``,
        ``unparseable_lines`` (all reader rejects) and one count per reason of ``READ_REJECT_REASONS``.
        """
        status = F.col(_STATUS)
        with self.named_read_errors():
            row = self.records.agg(
                F.count(F.lit(1)).alias("rows_read"),
                F.count_if(status.isNull()).alias("traffic_rows"),
                F.count_if(status == F.lit(NON_TRAFFIC)).alias("non_traffic_lines"),
                *[F.count_if(status == F.lit(reason)).alias(reason) for reason in READ_REJECT_REASONS],
            ).first()
        counts = {name: int(row[name] or 0) for name in row.asDict()}
        counts["unparseable_lines"] = sum(counts[reason] for reason in READ_REJECT_REASONS)
        return counts


def read_traffic(
    spark: SparkSession,
    files: Sequence[str],
    spec: DeltaInput,
    *,
    mini_batch_ids: Sequence[str] | None = None,
) -> TrafficRead:
    """Read raw traffic files in ``spec.format`` into canonical traffic, rejects and counters.

    ``mini_batch_ids``: when given, each row's ``mini_batch_id`` is the one of these ids that appears
    as a folder in its file's path (every file must contain exactly one); otherwise it is the name
    of the folder that holds the file.
    """
    files = tuple(files)
    kept = kept_fields(spec.schema_projection)
    if mini_batch_ids:
        _check_mini_batch_folders(files, mini_batch_ids)
    if not files:
        records = spark.createDataFrame([], _RECORDS_SCHEMA)
    else:
        with read_errors_named(spark, files, spec.format):
            source_schema = _source_schema(spark, files, spec.format)
        present = None if source_schema is None else source_schema.fieldNames()
        sources = resolve_sources(kept, spec.field_mapping, present, location=files[0])
        columns = sorted({source for source in sources.values() if source is not None})
        with read_errors_named(spark, files, spec.format):
            raw = _read_raw(spark, files, spec.format, columns, source_schema)
        records = _to_records(raw, sources, spec.format, mini_batch_ids)
    status = F.col(_STATUS)
    traffic = records.filter(status.isNull()).select(*TRAFFIC_SCHEMA.fieldNames())
    rejects = records.filter(status.isNotNull() & (status != F.lit(NON_TRAFFIC))).select(
        status.alias("reject_reason"),
        F.col(_RAW_RECORD).alias("raw_record"),
        "source_file",
        "mini_batch_id",
    )
    return TrafficRead(traffic, rejects, records, spark, files, spec.format)


def kept_fields(schema_projection: Sequence[str] | None) -> tuple[str, ...]:
    """Canonical fields to read: the projection plus the required fields (downstream needs them).

    Without a projection, all canonical fields. An unknown name raises ValueError naming it.
    """
    if schema_projection is None:
        return CANONICAL_TRAFFIC_FIELDS
    unknown = [name for name in schema_projection if name not in CANONICAL_TRAFFIC_FIELDS]
    if unknown:
        raise ValueError(
            f"input.schema_projection names unknown canonical field(s) {unknown}; "
            f"known: {list(CANONICAL_TRAFFIC_FIELDS)}"
        )
    wanted = set(schema_projection) | set(REQUIRED_TRAFFIC_FIELDS)
    return tuple(name for name in CANONICAL_TRAFFIC_FIELDS if name in wanted)


def resolve_sources(
    kept: Sequence[str],
    field_mapping: dict[str, str],
    present: Sequence[str] | None,
    *,
    location: str,
) -> dict[str, str | None]:
    """Canonical field -> source column (None: read as null).

    ``present`` is the list of source columns, or None when unknown (then every candidate is read
    and an absent one comes out null). Raises InputDataError for a missing mapped or required column.
    """
    sources: dict[str, str | None] = {}
    for field in kept:
        source = field_mapping.get(field, field)
        if present is None or source in present:
            sources[field] = source
        elif field in field_mapping:
            raise InputDataError(
                location, f"mapped column '{source}' ({field}) not found; columns present: {sorted(present)}"
            )
        elif field in REQUIRED_TRAFFIC_FIELDS:
            raise InputDataError(
                location,
                f"required column '{field}' not found and input.field_mapping does not map it; "
                f"columns present: {sorted(present)}",
            )
        else:
            sources[field] = None
    return sources


def select_traffic_files(uris: Sequence[str], file_format: str) -> list[str]:
    """The data files among a mini-batch folder's objects (markers, checksums and hidden files dropped)."""
    suffixes = TRAFFIC_FILE_SUFFIXES[file_format]
    out = []
    for uri in uris:
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        if not name.startswith(("_", ".")) and name.lower().endswith(suffixes):
            out.append(uri)
    return out


def parse_timestamp(text: Column) -> Column:
    """A timestamp from PAN-OS ``yyyy/MM/dd HH:mm:ss``, ISO 8601 or epoch seconds text (else null)."""
    value = F.trim(text)
    epoch = F.when(value.rlike(r"^\d{1,11}(\.\d+)?$"), F.timestamp_seconds(value.try_cast(T.DoubleType())))
    return F.coalesce(F.try_to_timestamp(value, F.lit(PANOS_TIME_FORMAT)), epoch, F.try_to_timestamp(value))


# ---------------------------------------------------------------- read errors


_READ_FAILURE_MARKERS = (
    "FAILED_READ_FILE",
    "CANNOT_READ_FILE_FOOTER",
    "Encountered error while reading file",
    "is not a Parquet file",
    "Unexpected end of input stream",
    "not in GZIP format",
    "incorrect header check",
    "invalid stored block lengths",
)
_MISSING_MARKER = "PATH_NOT_FOUND"
# Spark reports local files as file:/path or file:///path; callers name them /path.
_LOCAL_SCHEME = r"^file:(?://)?(?=/)"
_FILE_IN_MESSAGE = re.compile(r"(?:reading file|Path does not exist:)\s+(\S+?)\.?(?:\s|$)")
_CAUSE_LINE = re.compile(r"Caused by: [\w.$]+(?:Exception|Error): (.+)")


@contextmanager
def read_errors_named(spark: SparkSession, files: Sequence[str], file_format: str) -> Iterator[None]:
    """Turn a Spark failure to read one of ``files`` into InputDataError naming that file."""
    try:
        yield
    except Exception as exc:
        message = str(exc)
        if _MISSING_MARKER in message:
            missing = _file_named_in(message, files)
            raise InputDataError(missing or files[0], "file does not exist (removed after listing?)") from exc
        if not any(marker in message for marker in _READ_FAILURE_MARKERS):
            raise
        named = _file_named_in(message, files) or find_unreadable_file(spark, files, file_format)
        causes = _CAUSE_LINE.findall(message)
        why = f" ({causes[-1].strip()})" if causes else ""
        location = named or f"one of {len(files)} file(s) starting with {files[0]}"
        raise InputDataError(
            location, f"cannot read the {file_format} file{why}: truncated or corrupt? re-deliver or remove it"
        ) from exc


def find_unreadable_file(spark: SparkSession, files: Sequence[str], file_format: str) -> str | None:
    """The first of ``files`` Spark cannot read in full (reads each file: only used after a failure)."""
    for path in files:
        reader = spark.read.parquet if file_format == "parquet" else spark.read.text
        try:
            reader(path).count()
        except Exception:  # noqa: BLE001 - any failure marks this file as the unreadable one
            return path
    return None


def _normalize_path(path: str) -> str:
    return re.sub(_LOCAL_SCHEME, "", unquote(path))


def _file_named_in(message: str, files: Sequence[str]) -> str | None:
    match = _FILE_IN_MESSAGE.search(message)
    if not match:
        return None
    reported = _normalize_path(match.group(1))
    for path in files:
        if _normalize_path(path) == reported:
            return path
    return reported


# ---------------------------------------------------------------- raw reading per format


def _source_schema(spark: SparkSession, files: tuple[str, ...], file_format: str) -> T.StructType | None:
    """The source columns the files have, from metadata (None when unknown)."""
    if file_format == "parquet":
        return spark.read.parquet(files[0]).schema
    names = PANOS_CSV_FIELDS if file_format == "panos_csv" else _json_keys_of_first_lines(spark, files[0])
    return None if names is None else T.StructType([T.StructField(name, T.StringType()) for name in names])


def _read_raw(
    spark: SparkSession, files: tuple[str, ...], file_format: str, columns: Sequence[str], source: T.StructType | None
) -> DataFrame:
    """Raw source columns + ``_source_file``, ``_raw_record`` and a preliminary ``_read_status``."""
    if file_format == "parquet":
        # The first file's types, for the needed columns only: every file reads the same way, a file
        # without a column gives nulls, and one with an incompatible type fails naming itself.
        schema = T.StructType([source[name] for name in columns])
        return spark.read.schema(schema).parquet(*files).select(
            *[_raw(name) for name in columns],
            _source_file_col().alias(_SOURCE_FILE),
            F.to_json(F.struct(*[_raw(name) for name in columns])).alias(_RAW_RECORD),
            F.lit(None).cast(T.StringType()).alias(_STATUS),
        )
    if file_format == "panos_csv":
        lines = spark.read.text(list(files)).filter(F.trim(F.col("value")) != F.lit(""))
        parsed = parse_panos_lines(lines.select("value", _source_file_col().alias(_SOURCE_FILE)))
        log_type = F.col("type")
        status = (
            F.when(log_type.isNotNull() & ~is_traffic_type(log_type), F.lit(NON_TRAFFIC))
            .when(F.col("log_field_count") < MIN_TRAFFIC_FIELDS, F.lit("short_line"))
            .when(log_type.isNull(), F.lit("garbled_line"))  # a full line without a log type
        )
        return parsed.select("*", F.col("value").alias(_RAW_RECORD), status.alias(_STATUS))
    # JSON lines: every field as a string (a bad value must not fail the file), corrupt lines kept.
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in columns] + [T.StructField(_CORRUPT, T.StringType())]
    )
    raw = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .json(list(files))
    )
    corrupt = F.col(_CORRUPT)
    return raw.select(
        *[_raw(name) for name in columns],
        _source_file_col().alias(_SOURCE_FILE),
        F.coalesce(corrupt, F.to_json(F.struct(*[_raw(name) for name in columns]))).alias(_RAW_RECORD),
        F.when(corrupt.isNotNull(), F.lit("unparseable_json")).alias(_STATUS),
    )


def _json_keys_of_first_lines(spark: SparkSession, path: str) -> list[str] | None:
    """Keys of the JSON objects among the first lines of one file (None if none is an object)."""
    lines = spark.read.text(path).limit(_JSON_SAMPLE_LINES)
    keys = F.flatten(F.collect_list(F.json_object_keys(F.col("value"))))
    objects = F.count(F.json_object_keys(F.col("value")))
    row = lines.agg(F.array_distinct(keys).alias("keys"), objects.alias("objects")).first()
    return list(row["keys"]) if row["objects"] else None


def _raw(name: str) -> Column:
    # Backticks: source names may contain dots or other characters Spark would interpret.
    return F.col(f"`{name}`")


def _source_file_col() -> Column:
    """The record's file, as the caller named it (Spark reports a percent-encoded URI)."""
    reported = F.col("_metadata.file_path")
    # '+' is literal in a URI path; protect it from url_decode, which reads it as a space.
    decoded = F.coalesce(F.try_url_decode(F.regexp_replace(reported, r"\+", "%2B")), reported)
    return F.regexp_replace(decoded, _LOCAL_SCHEME, "")


def _mini_batch_id_col(source_file: Column, mini_batch_ids: Sequence[str] | None) -> Column:
    if mini_batch_ids:
        pattern = "/(" + "|".join(re.escape(m) for m in mini_batch_ids) + ")/"
        return F.regexp_extract(source_file, pattern, 1)
    return F.regexp_extract(source_file, r"([^/]+)/[^/]+$", 1)


def _check_mini_batch_folders(files: Sequence[str], mini_batch_ids: Sequence[str]) -> None:
    for path in files:
        found = [m for m in mini_batch_ids if f"/{m}/" in path]
        if len(found) != 1:
            raise ValueError(f"{path}: expected exactly one mini-batch folder of {list(mini_batch_ids)}, found {found}")


# ---------------------------------------------------------------- canonical columns


def _convert(raw: Column, raw_type: T.DataType, target: T.DataType) -> Column:
    """A raw value as its canonical type; null when it cannot be converted."""
    if isinstance(raw_type, T.StringType):
        text = F.when(F.trim(raw) != F.lit(""), raw)
        if isinstance(target, T.TimestampType):
            return parse_timestamp(text)
        return text if isinstance(target, T.StringType) else F.trim(text).try_cast(target)
    if isinstance(target, T.TimestampType) and isinstance(raw_type, T.NumericType):
        return F.timestamp_seconds(raw)
    return raw.try_cast(target)


def _shift_seconds(ts: Column, seconds: Column) -> Column:
    return F.timestamp_micros(F.unix_micros(ts) + (seconds * F.lit(1_000_000)).try_cast(T.LongType()))


def _derive_times(columns: dict[str, Column], kept: Collection[str]) -> dict[str, Column]:
    """Fill a missing start, end or duration from the other two (a kept field only)."""
    start, end, duration = columns["event_start"], columns["event_end"], columns["duration_s"]
    derived = {
        "event_start": F.coalesce(start, _shift_seconds(end, -duration)),
        "event_end": F.coalesce(end, _shift_seconds(start, duration)),
        "duration_s": F.coalesce(duration, (F.unix_micros(end) - F.unix_micros(start)) / F.lit(1_000_000.0)),
    }
    return {**columns, **{field: value for field, value in derived.items() if field in kept}}


def _to_records(
    raw: DataFrame,
    sources: dict[str, str | None],
    file_format: str,
    mini_batch_ids: Sequence[str] | None,
) -> DataFrame:
    raw_types = {f.name: f.dataType for f in raw.schema.fields}
    columns: dict[str, Column] = {}
    garbled: list[Column] = []
    for field, target in _CANONICAL_TYPES.items():
        source = sources.get(field)
        if source is None:
            columns[field] = F.lit(None).cast(target)
            continue
        value = _convert(_raw(source), raw_types[source], target)
        if field in _LOWER_CASE_FIELDS:
            value = F.lower(F.trim(value))
        columns[field] = value
        if not isinstance(target, T.StringType):
            present = _raw(source).isNotNull()
            if isinstance(raw_types[source], T.StringType):
                present = present & (F.trim(_raw(source)) != F.lit(""))
            garbled.append(present & value.isNull())
    columns = _derive_times(columns, kept=sources.keys())

    status = F.col(_STATUS)
    if file_format != "panos_csv" and sources.get("log_type") is not None:
        # PAN-OS JSON/Parquet exports may mix log types too; only TRAFFIC records are sessions.
        log_type = _raw(sources["log_type"])
        status = F.coalesce(status, F.when(log_type.isNotNull() & ~is_traffic_type(log_type), F.lit(NON_TRAFFIC)))
    if garbled:
        is_garbled = F.lit(False)
        for condition in garbled:
            is_garbled = is_garbled | condition
        status = F.coalesce(status, F.when(is_garbled, F.lit("garbled_line")))

    source_file = F.col(_SOURCE_FILE)
    return raw.select(
        *[columns[field].cast(target).alias(field) for field, target in _CANONICAL_TYPES.items()],
        _mini_batch_id_col(source_file, mini_batch_ids).alias("mini_batch_id"),
        source_file.alias("source_file"),
        status.alias(_STATUS),
        F.col(_RAW_RECORD),
    )
