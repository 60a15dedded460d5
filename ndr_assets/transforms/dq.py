"""Data-quality rules of the delta builder (spec 001 ``dq``) and the quarantine record format.

Every traffic row gets at most one ``reject_reason``: the first failing rule in
:data:`DQ_RULE_ORDER`. The reason is computed in one pass (one ``F.when`` chain); clean rows and
rejected rows are two filters of that one frame, and the per-rule counts are one aggregation.

Rules, in order (the structural rule is always on, the others follow the spec's switches):

1. ``missing_timestamp`` (always): ``event_start`` or ``event_end`` is null.
2. ``malformed_ip`` (``drop_malformed_ip``): ``source_ip`` or ``destination_ip`` is not a valid
   IPv4/IPv6 address (null included).
3. ``null_bytes_or_port`` (``filter_null_bytes_ports``): ``source_bytes``, ``destination_bytes`` or
   ``destination_port`` is null.
4. ``negative_bytes`` (``bytes_non_negative``): ``source_bytes`` or ``destination_bytes`` < 0.
5. ``negative_duration`` (``duration_non_negative``): ``duration_s`` < 0 or ``event_end`` <
   ``event_start``.

Rejected rows (from these rules and from the readers) share :data:`REJECT_SCHEMA`, which is
``QUARANTINE_SCHEMA`` without ``window_start``: a traffic row does not know its window, the caller
does (it assigned mini-batches to windows), so :func:`to_quarantine` adds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms.ip import is_valid_ip
from ndr_assets.transforms.schemas import QUARANTINE_SCHEMA, TRAFFIC_SCHEMA, enforce_schema
from ndr_resources.specs import DeltaDQ

REASON_COL = "reject_reason"
DQ_RULE_ORDER = ("missing_timestamp", "malformed_ip", "null_bytes_or_port", "negative_bytes", "negative_duration")
# Rejected rows before the caller assigns their window.
REJECT_SCHEMA = T.StructType([f for f in QUARANTINE_SCHEMA.fields if f.name != "window_start"])


def _is_true(condition: Column) -> Column:
    # A comparison with a null is null; a rule only fires on a definite true.
    return F.coalesce(condition, F.lit(False))


def _rule_conditions() -> dict[str, Column]:
    c = F.col
    return {
        "missing_timestamp": c("event_start").isNull() | c("event_end").isNull(),
        "malformed_ip": ~is_valid_ip(c("source_ip")) | ~is_valid_ip(c("destination_ip")),
        "null_bytes_or_port": c("source_bytes").isNull()
        | c("destination_bytes").isNull()
        | c("destination_port").isNull(),
        "negative_bytes": _is_true((c("source_bytes") < 0) | (c("destination_bytes") < 0)),
        "negative_duration": _is_true(c("duration_s") < 0) | _is_true(c("event_end") < c("event_start")),
    }


def enabled_rules(dq: DeltaDQ) -> tuple[str, ...]:
    """The rules ``dq`` switches on, in evaluation order."""
    switches = {
        "missing_timestamp": True,
        "malformed_ip": dq.drop_malformed_ip,
        "null_bytes_or_port": dq.filter_null_bytes_ports,
        "negative_bytes": dq.bytes_non_negative,
        "negative_duration": dq.duration_non_negative,
    }
    return tuple(rule for rule in DQ_RULE_ORDER if switches[rule])


def reject_reason_col(dq: DeltaDQ) -> Column:
    """The first failing enabled rule of a traffic row, or null when the row is clean."""
    conditions = _rule_conditions()
    rules = enabled_rules(dq)
    reason = F.when(conditions[rules[0]], F.lit(rules[0]))
    for rule in rules[1:]:
        reason = reason.when(conditions[rule], F.lit(rule))
    return reason


@dataclass(frozen=True)
class DqResult:
    """``flagged`` is the input plus ``reject_reason``; ``clean`` and ``rejects`` are its two halves."""

    flagged: DataFrame
    clean: DataFrame  # TRAFFIC_SCHEMA
    rejects: DataFrame  # REJECT_SCHEMA

    def counts(self) -> dict[str, int]:
        return dq_counts(self.flagged)


def apply_dq(traffic: DataFrame, dq: DeltaDQ) -> DqResult:
    """Split canonical traffic (``TRAFFIC_SCHEMA``) into clean rows and quarantine rows."""
    flagged = traffic.withColumn(REASON_COL, reject_reason_col(dq))
    clean = flagged.filter(F.col(REASON_COL).isNull()).select(*TRAFFIC_SCHEMA.fieldNames())
    rejects = flagged.filter(F.col(REASON_COL).isNotNull()).select(
        F.col(REASON_COL).alias("reject_reason"),
        F.to_json(F.struct(*[F.col(name) for name in TRAFFIC_SCHEMA.fieldNames()]))
        .cast(T.BinaryType())  # UTF-8 bytes of the JSON text (QUARANTINE_SCHEMA)
        .alias("raw_record"),
        "source_file",
        "mini_batch_id",
    )
    return DqResult(flagged=flagged, clean=clean, rejects=rejects)


def dq_counts(flagged: DataFrame) -> dict[str, int]:
    """``rows_in``, ``rows_clean``, ``rows_rejected`` and one count per rule (0 when it never fired).

    One aggregation over a frame carrying ``reject_reason`` (:attr:`DqResult.flagged`).
    """
    reason = F.col(REASON_COL)
    row = flagged.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.count_if(reason.isNull()).alias("rows_clean"),
        *[F.count_if(reason == F.lit(rule)).alias(rule) for rule in DQ_RULE_ORDER],
    ).first()
    counts = {name: int(row[name] or 0) for name in ("rows_in", "rows_clean", *DQ_RULE_ORDER)}
    counts["rows_rejected"] = counts["rows_in"] - counts["rows_clean"]
    return counts


def rejection_rate(counts: Mapping[str, int]) -> float:
    """Share of the input rows the rules rejected (0.0 for an empty input)."""
    rows_in = counts.get("rows_in", 0)
    if not rows_in:
        return 0.0
    return (rows_in - counts.get("rows_clean", 0)) / rows_in


def to_quarantine(rejects: DataFrame, window_start: datetime | Column | Mapping[str, datetime]) -> DataFrame:
    """Rejected rows (``REJECT_SCHEMA``) -> ``QUARANTINE_SCHEMA`` with their window.

    ``window_start`` is one window for every row (a ``datetime``), a column expression, or the
    caller's assignment of mini-batches to windows (``{mini_batch_id: window_start}``).
    """
    if isinstance(window_start, Column):
        window = window_start
    elif isinstance(window_start, Mapping):
        pairs = chain.from_iterable((F.lit(mb), F.lit(ws)) for mb, ws in window_start.items())
        window = F.create_map(*pairs)[F.col("mini_batch_id")] if window_start else F.lit(None)
    else:
        window = F.lit(window_start)
    with_window = rejects.withColumn("window_start", window.cast(T.TimestampType()))
    return enforce_schema(with_window, QUARANTINE_SCHEMA, "quarantine")
