"""Every raw record of a window range is published, quarantined, or skipped by a rule: counted per window.

One outcome per record, decided where the record leaves the flow (the reader, the DQ rules, the
redelivery rule, the asset's own rule); one aggregation counts them per window, so
``records_in = published + quarantined + skipped`` holds for every window by construction, and the
asset checks compare these counts with what was actually written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.traffic.raw_input import arrival_window_col
from ndr_assets.transforms.dq import DQ_RULE_ORDER, REASON_COL, DqResult
from ndr_assets.transforms.readers import READ_REJECT_REASONS, READ_STATUS_COLUMN, SKIPPED_STATUSES
from ndr_assets.transforms.windows import partition_values

PUBLISHED = "published"
OUTCOME = "outcome"
UNDECLARED = "undeclared_outcome"
QUARANTINE_REASONS = (*READ_REJECT_REASONS, *DQ_RULE_ORDER)
# Skipped by the reader: records that are not sessions to count (other log types, start logs).
READ_SKIP_REASONS = SKIPPED_STATUSES


def window_label(window_start: datetime) -> str:
    """``YYYY-MM-DD/HHMM``: the label of a window's partition (``PartitionSpec.label``)."""
    if window_start.tzinfo is None:  # Spark returns session-time (UTC) wall clock
        window_start = window_start.replace(tzinfo=UTC)
    return "/".join(value for _, value in partition_values(window_start))


def record_outcomes(
    records: DataFrame,
    dq: DqResult,
    kept: DataFrame,
    kept_outcome: Column,
    measures: Mapping[str, Column] | None = None,
) -> DataFrame:
    """``window_start``, ``outcome`` and the ``measures`` of every record read.

    ``records``: the reader's records (``TrafficRead.records``); ``dq``: the DQ split of their traffic
    rows; ``kept``: the clean rows (with ``window_start``) that reach the asset's own rule, and
    ``kept_outcome`` that rule as a column (a skip reason, or null for a published record); the
    redelivery rule is the first part of that rule (``kept`` holds the redelivered rows too).
    ``measures`` are numbers summed per window beside the counts (0 for records not in ``kept``).
    """
    measures = dict(measures or {})
    zeros = [F.lit(0).cast("long").alias(name) for name in measures]
    status = F.col(READ_STATUS_COLUMN)
    by_reader = records.filter(status.isNotNull()).select(
        arrival_window_col().alias("window_start"), status.alias(OUTCOME), *zeros
    )
    by_dq = dq.flagged.filter(F.col(REASON_COL).isNotNull()).select(
        arrival_window_col().alias("window_start"), F.col(REASON_COL).alias(OUTCOME), *zeros
    )
    by_rule = kept.select(
        "window_start",
        F.coalesce(kept_outcome, F.lit(PUBLISHED)).alias(OUTCOME),
        *[value.cast("long").alias(name) for name, value in measures.items()],
    )
    return by_reader.unionByName(by_dq).unionByName(by_rule)


@dataclass(frozen=True)
class RecordAccounts:
    """Records per window and outcome, plus the summed measures, for one window range."""

    skip_reasons: tuple[str, ...]
    per_window: dict[str, dict[str, int]]  # window label -> outcome (or measure) -> count

    @property
    def outcomes(self) -> tuple[str, ...]:
        return (PUBLISHED, *QUARANTINE_REASONS, *self.skip_reasons)

    def window(self, label: str) -> dict[str, int]:
        counts = self.per_window.get(label, {})
        quarantined = sum(counts.get(reason, 0) for reason in QUARANTINE_REASONS)
        skipped = sum(counts.get(reason, 0) for reason in self.skip_reasons)
        published = counts.get(PUBLISHED, 0)
        return {
            "records_in": published + quarantined + skipped + counts.get(UNDECLARED, 0),
            "records_published": published,
            "records_quarantined": quarantined,
            "records_skipped": skipped,
            **{name: value for name, value in counts.items() if name not in self.outcomes},
        }

    def totals(self) -> dict[str, int]:
        summed: dict[str, int] = {}
        for label in self.per_window:
            for name, value in self.window(label).items():
                summed[name] = summed.get(name, 0) + value
        return summed

    def by_reason(self, reasons: Sequence[str]) -> dict[str, int]:
        """Records per reason over the range (reasons that never occurred are left out)."""
        totals = {reason: sum(c.get(reason, 0) for c in self.per_window.values()) for reason in reasons}
        return {reason: n for reason, n in totals.items() if n}

    def notable_windows_markdown(self, limit: int = 24) -> str:
        """The windows that quarantined or skipped anything, as a small Markdown table."""
        header = "| window | records in | published | quarantined | skipped |\n|---|---|---|---|---|\n"
        notable = [label for label in sorted(self.per_window)
                   if self.window(label)["records_quarantined"] or self.window(label)["records_skipped"]]
        lines = [
            f"| {label} | {w['records_in']} | {w['records_published']} | {w['records_quarantined']} | "
            f"{w['records_skipped']} |\n"
            for label in notable[:limit]
            for w in [self.window(label)]
        ]
        more = f"\n{len(notable) - limit} more window(s) not shown.\n" if len(notable) > limit else ""
        return header + ("".join(lines) or "| none | | | | |\n") + more


def account_records(
    outcomes: DataFrame, window_starts: Sequence[datetime], skip_reasons: Sequence[str]
) -> RecordAccounts:
    """Counts per window of :func:`record_outcomes` in one aggregation (one small row per window)."""
    known = (PUBLISHED, *QUARANTINE_REASONS, *skip_reasons)
    outcome = F.col(OUTCOME)
    measures = [c for c in outcomes.columns if c not in ("window_start", OUTCOME)]
    rows = (
        outcomes.groupBy("window_start")
        .agg(
            *[F.count_if(outcome == F.lit(name)).alias(name) for name in known],
            # Stays 0 unless a rule produced an outcome nobody declared: then it shows, never vanishes.
            F.count_if(~outcome.isin(*known)).alias(UNDECLARED),
            *[F.sum(name).alias(name) for name in measures],
        )
        .take(len(window_starts) + 1)
    )
    per_window = {window_label(start): {} for start in window_starts}
    for row in rows:
        counts = {name: int(row[name] or 0) for name in (*known, UNDECLARED, *measures)}
        per_window[window_label(row["window_start"])] = {k: v for k, v in counts.items() if v or k in measures}
    return RecordAccounts(skip_reasons=tuple(skip_reasons), per_window=per_window)
