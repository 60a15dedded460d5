"""PAN-OS syslog CSV lines -> raw PAN-OS TRAFFIC columns, without Python UDFs.

A PAN-OS log line is positional CSV, optionally behind a syslog header (:data:`SYSLOG_HEADER_PATTERN`):
RFC 3164 ``<14>Jan  5 08:24:55 fw01 `` (with or without ``<pri>``), RFC 5424
``<14>1 2026-01-05T08:24:55.123Z fw01 - - - - `` (with or without ``<pri>``, structured data
``[meta sequenceId="1"]`` or ``-``, an optional BOM before the message), or an RFC 3339 timestamp
and host ``2026-01-05T08:24:55+00:00 fw01 `` (syslog-ng / rsyslog templates). Fields may be
double-quoted and then contain commas (rule names, for example), with ``""`` for a literal quote. Positions are counted from 0 after the header; a
TRAFFIC line has at least :data:`MIN_TRAFFIC_FIELDS` fields (real lines have more; extra fields are
ignored).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# Position (0-based, after the syslog header) -> raw PAN-OS field name (see notes/common.md).
PANOS_CSV_POSITIONS: dict[int, str] = {
    1: "receive_time",
    2: "serial",
    3: "type",
    4: "subtype",
    6: "time_generated",
    7: "src",
    8: "dst",
    11: "rule",
    14: "app",
    16: "from",
    17: "to",
    22: "sessionid",
    24: "sport",
    25: "dport",
    29: "proto",
    30: "action",
    31: "bytes",
    32: "bytes_sent",
    33: "bytes_received",
    34: "packets",
    35: "start",
    36: "elapsed",
    44: "pkts_sent",
    45: "pkts_received",
    46: "session_end_reason",
}
PANOS_CSV_FIELDS = tuple(PANOS_CSV_POSITIONS.values())
MIN_TRAFFIC_FIELDS = 47

# Syslog headers in front of the CSV body (Java regex). Each form needs spaces between its tokens,
# which a PAN-OS CSV body never starts with ("1,2026/01/05 ...").
_PRI = r"(?:<\d{1,3}>)?"
_BOM = r"\x{FEFF}?"
_RFC3339 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})"
# RFC 3164: "Mon DD HH:MM:SS host " (the day is space-padded: "Jan  5").
_RFC3164_HEADER = _PRI + r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \S+ "
# RFC 5424: "VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA "; an SD element is
# [id name="value" ...], where a value may hold backslash-escaped quotes and brackets.
_SD_ELEMENT = r'\[(?:[^\]"\\]|"(?:[^"\\]|\\.)*")*\]'
_RFC5424_HEADER = _PRI + r"\d{1,2} (?:" + _RFC3339 + r"|-) \S+ \S+ \S+ \S+ (?:-|(?:" + _SD_ELEMENT + r")+) "
# A forwarder's template: "RFC3339-TIMESTAMP host ".
_RFC3339_HEADER = _PRI + _RFC3339 + r" \S+ "
SYSLOG_HEADER_PATTERN = (
    "^" + _BOM + "(?:" + "|".join((_RFC5424_HEADER, _RFC3164_HEADER, _RFC3339_HEADER)) + ")?" + _BOM
)
# One quoted field, including doubled quotes inside it ("a ""b"", c" is two adjacent quoted runs).
_QUOTED_RUN_PATTERN = r'(?:"[^"]*+")++'
_FROM_CSV_SCHEMA = ", ".join(f"c{i} STRING" for i in range(MIN_TRAFFIC_FIELDS))
_FROM_CSV_OPTIONS = {"quote": '"', "escape": '"', "mode": "PERMISSIVE"}


def strip_syslog_header(line: Column) -> Column:
    """The CSV body of a line, with a leading syslog header (and byte-order mark) removed when there is one."""
    return F.regexp_replace(line, SYSLOG_HEADER_PATTERN, "")


def csv_field_count(body: Column) -> Column:
    """How many comma-separated fields a CSV body has, counting a quoted field (commas and all) as one."""
    return F.size(F.split(F.regexp_replace(body, _QUOTED_RUN_PATTERN, "q"), ",", -1))


def parse_panos_lines(lines: DataFrame, line_col: str = "value") -> DataFrame:
    """Add the raw PAN-OS columns (all strings, blank -> null) and ``log_field_count``.

    ``lines`` holds one log line per row in ``line_col`` (``spark.read.text``); every other column is
    kept. Callers decide what to do with short lines (``log_field_count < MIN_TRAFFIC_FIELDS``) and
    with log types other than TRAFFIC (:func:`is_traffic_type`).
    """
    body = strip_syslog_header(F.col(line_col))
    parsed = F.from_csv(body, _FROM_CSV_SCHEMA, _FROM_CSV_OPTIONS)
    fields = {name: _blank_to_null(parsed.getField(f"c{pos}")) for pos, name in PANOS_CSV_POSITIONS.items()}
    return lines.select(
        "*",
        *[col.alias(name) for name, col in fields.items()],
        csv_field_count(body).alias("log_field_count"),
    )


def is_traffic_type(log_type: Column) -> Column:
    """True when a PAN-OS ``type`` value says TRAFFIC (any case), False otherwise (null included)."""
    return F.coalesce(F.upper(F.trim(log_type)) == F.lit("TRAFFIC"), F.lit(False))


def _blank_to_null(value: Column) -> Column:
    return F.when(F.trim(value) != F.lit(""), value)
