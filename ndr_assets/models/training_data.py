"""The training rows that reach the one machine fitting the model: a seeded, bounded Spark sample.

Only the sample is converted to pandas; the full frame stays in Spark. One aggregation counts the
rows (per stratum when stratified), then:

- at most ``max_rows`` rows in total: all of them (``method="all"``);
- else a Bernoulli sample with fraction ``max_rows / total`` (``"bernoulli"``), or with
  ``strata``, ``DataFrame.sampleBy`` with per-stratum fractions (``"stratified"``): proportional
  allocation (the model must learn the mix it will score), except that a stratum whose share
  would give it fewer than ``min(its rows, floor)`` rows gets that many, where
  ``floor = min(MAX_STRATUM_FLOOR, target // (2 * strata))``; the other strata share what is
  left, so the expected total stays the target (below).

Bernoulli draws scatter around their expectation by about sqrt(expected rows), and a
``limit`` that cuts an overshoot takes its rows from the last partitions, i.e. from whichever
strata and windows come last. So the draw aims at ``sample_target(max_rows)`` = ``max_rows``
minus three standard deviations (200,000 -> 198,658), and the final ``limit(max_rows)`` is only a
hard bound that bites in about one draw in a thousand.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# sampleBy keys strata by value; rows whose stratum is null are given this label so they are sampled too.
NULL_STRATUM = "__null__"
# Rows a rare stratum is guaranteed in expectation (when it has them); see the module doc.
MAX_STRATUM_FLOOR = 1_000


@dataclass(frozen=True)
class SamplingInfo:
    total_rows: int
    sampled_rows: int
    method: str  # "all" | "bernoulli" | "stratified"
    seed: int
    max_rows: int
    fraction: float
    strata: str | None = None
    stratum_rows: dict[str, int] = field(default_factory=dict)
    stratum_fractions: dict[str, float] = field(default_factory=dict)

    def to_metadata(self) -> dict:
        """JSON-able, for Dagster metadata and the bundle's ``trained_on.sampling``."""
        return asdict(self)


def sample_training_rows(df: DataFrame, *, max_rows: int, seed: int,
                         strata: str | None = "window_label") -> tuple[pd.DataFrame, SamplingInfo]:
    """A seeded sample of at most ``max_rows`` rows of ``df`` as pandas, and how it was drawn."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if strata is not None and strata not in df.columns:
        raise ValueError(f"stratum column {strata!r} is not in the training frame; columns: {df.columns}")

    if strata is None:
        stratum_rows: dict[str, int] = {}
        total = df.count()
    else:
        labelled = F.coalesce(F.col(strata).cast("string"), F.lit(NULL_STRATUM))
        counts = df.groupBy(labelled.alias("stratum")).count().collect()
        stratum_rows = {row["stratum"]: int(row["count"]) for row in sorted(counts, key=lambda r: r["stratum"])}
        total = sum(stratum_rows.values())

    if total <= max_rows:
        sample = df.toPandas()
        return sample, SamplingInfo(total_rows=total, sampled_rows=len(sample), method="all", seed=seed,
                                    max_rows=max_rows, fraction=1.0, strata=strata, stratum_rows=stratum_rows,
                                    stratum_fractions=dict.fromkeys(stratum_rows, 1.0))

    target = sample_target(max_rows)
    fraction = target / total
    if strata is None:
        sampled = df.sample(withReplacement=False, fraction=fraction, seed=seed)
        fractions: dict[str, float] = {}
        method = "bernoulli"
    else:
        fractions = stratum_fractions(stratum_rows, target)
        key = "__ndr_stratum__"
        sampled = df.withColumn(key, labelled).sampleBy(key, fractions=fractions, seed=seed).drop(key)
        method = "stratified"
    sample = sampled.limit(max_rows).toPandas()
    return sample, SamplingInfo(total_rows=total, sampled_rows=len(sample), method=method, seed=seed, max_rows=max_rows,
                                fraction=fraction, strata=strata, stratum_rows=stratum_rows, stratum_fractions=fractions)


def sample_target(max_rows: int) -> int:
    """Expected sample size: ``max_rows`` less three standard deviations of a Bernoulli draw."""
    return max(1, max_rows - math.ceil(3 * math.sqrt(max_rows)))


def stratum_fractions(stratum_rows: dict[str, int], target: int) -> dict[str, float]:
    """Per-stratum sampling fractions for ``target`` expected rows: proportional, with the floor of the module doc."""
    floor = min(MAX_STRATUM_FLOOR, target // (2 * len(stratum_rows)))
    floored: set[str] = set()
    while True:
        reserved = sum(min(stratum_rows[s], floor) for s in floored)
        rest = sum(n for s, n in stratum_rows.items() if s not in floored)
        base = (target - reserved) / rest if rest else 1.0
        newly = {s for s, n in stratum_rows.items() if s not in floored and n * base < min(n, floor)}
        if not newly:
            break
        floored |= newly
    return {s: (min(1.0, floor / n) if s in floored else min(1.0, base)) for s, n in stratum_rows.items()}
