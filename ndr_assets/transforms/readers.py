"""Raw mini-batch files -> canonical traffic (``TRAFFIC_SCHEMA``), reader rejects and read counters.

The caller lists the files of one or more mini-batch folders (the Lake does that) and passes their
Spark-readable paths; every path contains ``/<mini_batch_id>/``. One pass over the files gives one
row per record with a read status:

- null: a canonical traffic row, one session (-> :attr:`TrafficRead.traffic`);
- skipped by rule (counted, neither traffic nor a reject): ``non_traffic``, a log line of another
  PAN-OS type (THREAT, SYSTEM, ...); ``start_log``, a TRAFFIC record of subtype ``start`` (any case,
  trimmed), which a firewall logging at session start writes when a session opens: the session is
  counted once, by its ``end`` record (or by the single ``drop``/``deny`` record of a session that
  never opened, or by a record without a subtype);
- a reject reason (-> :attr:`TrafficRead.rejects`, ``REJECT_SCHEMA``), the first that applies:
  ``record_too_large`` (a line, or a Parquet row as JSON, longer than ``input.max_record_bytes``,
  default 1 MiB; checked before any parsing, so a huge line is named for what it is),
  ``unparseable_json`` (a JSON line that is not a JSON object), ``short_line`` (a PAN-OS CSV line
  with fewer than 47 fields), ``garbled_line`` (a number or timestamp that cannot be parsed, in any
  format, or a CSV line without a log type). Rejects carry no ``window_start``:
  :func:`ndr_assets.transforms.dq.to_quarantine` adds it. Their ``raw_record`` is binary: the line's
  bytes as delivered (JSON, CSV), so a line with bytes that are not UTF-8 stays readable in the
  quarantine Parquet; a Parquet row's raw record is its columns as JSON text in UTF-8.

Values are normalized where sources differ in spelling: ``protocol`` and ``log_subtype`` trimmed and
lower case, ``action`` by :func:`ndr_assets.transforms.actions.normalized_action` (``reset both`` ->
``reset-both``). Kept sessions with an action outside the seven documented ones, or a subtype other
than start/end/drop/deny, are counted (``unknown_action``, ``unknown_subtype``), never dropped.

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
(``.gz``); ``format`` ``json`` and ``jsonl`` both mean JSON lines.

Time zone: PAN-OS writes device-local times. A timestamp text without an explicit offset (PAN-OS
``yyyy/MM/dd HH:mm:ss``, ISO 8601 without offset) is wall time in ``input.timezone`` (default UTC)
and converted to UTC; ISO 8601 with an offset, epoch seconds and native Parquet timestamps are
instants and stay as they are. (The Spark session time zone is UTC, see ``ndr_resources.spark``.)
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

from ndr_assets.transforms.actions import is_unknown_action, normalized_action
from ndr_assets.transforms.panos_csv import (
    MIN_TRAFFIC_FIELDS,
    PANOS_CSV_FIELDS,
    is_traffic_type,
    parse_panos_lines,
)
from ndr_assets.transforms.schemas import TRAFFIC_SCHEMA
from ndr_resources.errors import InputDataError, UnreadableFileError
from ndr_resources.specs import CANONICAL_TRAFFIC_FIELDS, REQUIRED_TRAFFIC_FIELDS, DeltaInput

RECORD_TOO_LARGE = "record_too_large"
READ_REJECT_REASONS = (RECORD_TOO_LARGE, "unparseable_json", "short_line", "garbled_line")
NON_TRAFFIC = "non_traffic"
START_LOG = "start_log"
SKIPPED_STATUSES = (NON_TRAFFIC, START_LOG)  # counted, neither traffic nor a reject
START_SUBTYPE = "start"
# TRAFFIC subtypes of one session each; any other non-null subtype is counted as unknown_subtype.
SESSION_SUBTYPES = ("end", "drop", "deny")
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

# The read status of each record in TrafficRead.records (null: a traffic row).
READ_STATUS_COLUMN = "_read_status"
_STATUS = READ_STATUS_COLUMN
_RAW_RECORD = "_raw_record"
_SOURCE_FILE = "_source_file"
_CORRUPT = "_corrupt_record"
_LINE = "_line"
_JSON_SAMPLE_LINES = 10
_CANONICAL_TYPES = {f.name: f.dataType for f in TRAFFIC_SCHEMA.fields if f.name in CANONICAL_TRAFFIC_FIELDS}
_LOWER_CASE_FIELDS = ("protocol", "log_subtype")
_RULE_FIELDS = ("log_type", "log_subtype")  # read for the skip rules even when not projected
_RECORDS_SCHEMA = T.StructType(
    TRAFFIC_SCHEMA.fields
    + [T.StructField(_STATUS, T.StringType()), T.StructField(_RAW_RECORD, T.BinaryType())]
)


# ---------------------------------------------------------------- public API


@dataclass(frozen=True)
class TrafficRead:
    """What :func:`read_traffic` found: traffic rows, rejected rows, and every record with its status."""

    traffic: DataFrame  # TRAFFIC_SCHEMA
    rejects: DataFrame  # REJECT_SCHEMA (QUARANTINE_SCHEMA without window_start)
    records: DataFrame  # one row per record read: canonical columns + _read_status + _raw_record (binary)
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

        ``rows_read`` (records; non-blank lines for JSON and CSV), ``traffic_rows`` (sessions),
        ``non_traffic_lines``, ``start_logs_skipped``, ``unknown_subtype`` and ``unknown_action``
        (sessions kept with a subtype / an action outside the known ones), ``unparseable_lines`` (all
        reader rejects) and one count per reason of ``READ_REJECT_REASONS``.
        """
        status = F.col(_STATUS)
        session = status.isNull()
        subtype = F.col("log_subtype")
        unknown_subtype = subtype.isNotNull() & ~subtype.isin(*SESSION_SUBTYPES, START_SUBTYPE)
        with self.named_read_errors():
            row = self.records.agg(
                F.count(F.lit(1)).alias("rows_read"),
                F.count_if(session).alias("traffic_rows"),
                F.count_if(status == F.lit(NON_TRAFFIC)).alias("non_traffic_lines"),
                F.count_if(status == F.lit(START_LOG)).alias("start_logs_skipped"),
                F.count_if(session & unknown_subtype).alias("unknown_subtype"),
                F.count_if(session & is_unknown_action(F.col("action"))).alias("unknown_action"),
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
            source_schema = _source_schema(spark, files, spec)
        present = None if source_schema is None else source_schema.fieldNames()
        sources = resolve_sources(kept, spec.field_mapping, present, location=files[0])
        rule_sources = _rule_sources(spec.field_mapping, present)
        columns = sorted({s for s in [*sources.values(), *rule_sources.values()] if s is not None})
        with read_errors_named(spark, files, spec.format):
            raw = _read_raw(spark, files, spec, columns, source_schema)
        records = _to_records(raw, sources, rule_sources, spec, mini_batch_ids)
    status = F.col(_STATUS)
    traffic = records.filter(status.isNull()).select(*TRAFFIC_SCHEMA.fieldNames())
    rejects = records.filter(status.isNotNull() & ~status.isin(*SKIPPED_STATUSES)).select(
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


def traffic_file_problem(name: str, file_format: str) -> str | None:
    """Why a mini-batch object named ``name`` is not a data file of ``file_format`` (None when it is)."""
    if name.startswith("."):
        return "hidden file (name starts with '.')"
    if name.startswith("_"):
        return "marker or temporary file (name starts with '_')"
    suffixes = TRAFFIC_FILE_SUFFIXES[file_format]
    if not name.lower().endswith(suffixes):
        return f"not a {file_format} file (input.format is {file_format}: names end with {', '.join(suffixes)})"
    return None


def select_traffic_files(uris: Sequence[str], file_format: str) -> list[str]:
    """The data files among a mini-batch folder's objects (markers, checksums and hidden files dropped)."""
    return [uri for uri in uris if traffic_file_problem(uri.rstrip("/").rsplit("/", 1)[-1], file_format) is None]


def parse_timestamp(text: Column, time_zone: str = "UTC") -> Column:
    """A UTC timestamp from PAN-OS ``yyyy/MM/dd HH:mm:ss``, ISO 8601 or epoch seconds text (else null).

    Text without an explicit offset is wall time in ``time_zone`` (an IANA name or a fixed offset);
    ISO text with an offset (``Z``, ``+01:00``, ``-0500``) and epoch seconds are instants.
    """
    value = F.trim(text)
    epoch = F.when(value.rlike(r"^\d{1,11}(\.\d+)?$"), F.timestamp_seconds(value.try_cast(T.DoubleType())))
    panos = F.try_to_timestamp(value, F.lit(PANOS_TIME_FORMAT))
    iso = F.try_to_timestamp(value)
    if time_zone != "UTC":
        # Parsed in the (UTC) session zone, so a wall time without offset comes out as UTC wall time.
        panos = F.to_utc_timestamp(panos, time_zone)
        iso = F.when(value.rlike(_EXPLICIT_OFFSET), iso).otherwise(F.to_utc_timestamp(iso, time_zone))
    return F.coalesce(panos, epoch, iso)


# A time of day followed by a zone designator: Z, +hh, +hhmm or +hh:mm.
_EXPLICIT_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*([zZ]|[+-]\d{2}(:?\d{2})?)$"


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
        why = causes[-1].strip() if causes else f"not a readable {file_format} file"
        location = named or f"one of {len(files)} file(s) starting with {files[0]}"
        raise UnreadableFileError(location, why) from exc


def find_unreadable_file(spark: SparkSession, files: Sequence[str], file_format: str) -> str | None:
    """The first of ``files`` Spark cannot read in full (reads each file: only used after a failure)."""
    for path in files:
        reader = spark.read.parquet if file_format == "parquet" else spark.read.text
        try:
            reader(path).count()
        except Exception:
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


def _source_schema(spark: SparkSession, files: tuple[str, ...], spec: DeltaInput) -> T.StructType | None:
    """The source columns the files have, from metadata (None when unknown)."""
    if spec.format == "parquet":
        return spark.read.parquet(files[0]).schema
    if spec.format == "panos_csv":
        names: Sequence[str] | None = PANOS_CSV_FIELDS
    else:
        names = _json_keys_of_first_lines(spark, files[0], spec.max_record_bytes)
    return None if names is None else T.StructType([T.StructField(name, T.StringType()) for name in names])


def _read_raw(
    spark: SparkSession, files: tuple[str, ...], spec: DeltaInput, columns: Sequence[str], source: T.StructType | None
) -> DataFrame:
    """Raw source columns + ``_source_file``, ``_raw_record`` (binary) and a preliminary ``_read_status``."""
    limit = F.lit(spec.max_record_bytes)
    if spec.format == "parquet":
        # The first file's types, for the needed columns only: every file reads the same way, a file
        # without a column gives nulls, and one with an incompatible type fails naming itself.
        schema = T.StructType([source[name] for name in columns])
        record = F.to_json(F.struct(*[_raw(name) for name in columns]))
        return spark.read.schema(schema).parquet(*files).select(
            *[_raw(name) for name in columns],
            _source_file_col().alias(_SOURCE_FILE),
            record.cast(T.BinaryType()).alias(_RAW_RECORD),
            F.when(F.octet_length(record) > limit, F.lit(RECORD_TOO_LARGE)).alias(_STATUS),
        )
    # JSON lines and CSV: one text line per record. The text reader keeps the bytes as delivered
    # (casting the line to binary gives them back, valid UTF-8 or not), and a line over the limit is
    # never handed to a parser (Jackson refuses long strings with a misleading error).
    lines = spark.read.text(list(files)).filter(F.trim(F.col("value")) != F.lit(""))
    line = F.col(_LINE)
    too_large = F.octet_length(line) > limit
    lines = lines.select(F.col("value").alias(_LINE), _source_file_col().alias(_SOURCE_FILE))
    lines = lines.withColumn(_RAW_RECORD, line.cast(T.BinaryType()))
    if spec.format == "panos_csv":
        parsed = parse_panos_lines(lines.withColumn("_body", F.when(~too_large, line)), line_col="_body")
        status = F.when(too_large, F.lit(RECORD_TOO_LARGE)).otherwise(
            F.coalesce(
                _skip_status(F.col("type"), F.col("subtype")),
                F.when(F.col("log_field_count") < MIN_TRAFFIC_FIELDS, F.lit("short_line")).when(
                    F.col("type").isNull(), F.lit("garbled_line")  # a full line without a log type
                ),
            )
        )
        return parsed.select("*", status.alias(_STATUS))
    # JSON lines: every field as a string (a bad value must not fail the file), corrupt lines kept.
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in columns] + [T.StructField(_CORRUPT, T.StringType())]
    )
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
    parsed = F.from_json(F.when(~too_large, line), schema, options)
    status = F.when(too_large, F.lit(RECORD_TOO_LARGE)).when(
        parsed.getField(_CORRUPT).isNotNull(), F.lit("unparseable_json")
    )
    return lines.select(
        *[parsed.getField(name).alias(name) for name in columns],
        F.col(_SOURCE_FILE),
        F.col(_RAW_RECORD),
        status.alias(_STATUS),
    )


def _skip_status(log_type: Column, log_subtype: Column) -> Column:
    """``non_traffic`` for another log type, ``start_log`` for a TRAFFIC start record, else null."""
    return F.when(log_type.isNotNull() & ~is_traffic_type(log_type), F.lit(NON_TRAFFIC)).when(
        F.lower(F.trim(log_subtype)) == F.lit(START_SUBTYPE), F.lit(START_LOG)
    )


def _rule_sources(field_mapping: dict[str, str], present: Sequence[str] | None) -> dict[str, str | None]:
    """Source columns of the fields the skip rules read (None: not in the source)."""
    sources = {field: field_mapping.get(field, field) for field in _RULE_FIELDS}
    return {field: s if present is None or s in present else None for field, s in sources.items()}


def _json_keys_of_first_lines(spark: SparkSession, path: str, max_record_bytes: int) -> list[str] | None:
    """Keys of the JSON objects among the first lines of one file (None if none is an object)."""
    lines = spark.read.text(path).limit(_JSON_SAMPLE_LINES)
    lines = lines.filter(F.octet_length(F.col("value")) <= F.lit(max_record_bytes))  # never parse a huge line
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


def _convert(raw: Column, raw_type: T.DataType, target: T.DataType, time_zone: str) -> Column:
    """A raw value as its canonical type; null when it cannot be converted."""
    if isinstance(raw_type, T.StringType):
        text = F.when(F.trim(raw) != F.lit(""), raw)
        if isinstance(target, T.TimestampType):
            return parse_timestamp(text, time_zone)
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
    rule_sources: dict[str, str | None],
    spec: DeltaInput,
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
        value = _convert(_raw(source), raw_types[source], target, spec.timezone)
        if field in _LOWER_CASE_FIELDS:
            value = F.lower(F.trim(value))
        elif field == "action":
            value = normalized_action(value)
        columns[field] = value
        if not isinstance(target, T.StringType):
            present = _raw(source).isNotNull()
            if isinstance(raw_types[source], T.StringType):
                present = present & (F.trim(_raw(source)) != F.lit(""))
            garbled.append(present & value.isNull())
    columns = _derive_times(columns, kept=sources.keys())

    status = F.col(_STATUS)
    if spec.format != "panos_csv":  # the CSV reader applied the skip rules to its raw columns
        # PAN-OS JSON/Parquet exports may mix log types and start records too; only sessions count.
        def rule_column(field: str) -> Column:
            source = rule_sources[field]
            return F.lit(None).cast(T.StringType()) if source is None else _raw(source).cast(T.StringType())

        status = F.coalesce(status, _skip_status(rule_column("log_type"), rule_column("log_subtype")))
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
