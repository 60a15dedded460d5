"""Window-end arithmetic shared by the FG-A metric families.

FG-A computes, for every requested window end ``E``, windows of length ``L`` that cover the slices with
``slice_start`` in ``[E - L, E - 15 min]``. A slice starting at ``s`` therefore contributes to the ends
``E = s + k * 15 min`` for ``k = 1 .. L / 15 min``; ``k`` (the slice's *rank* from the window end, 1 = the
window's own slice) decides which window lengths include it: the slice is inside ``w_L`` iff
``k <= LABEL_SLICES[w_L]``. Exploding each slice row to its ``k`` values once, then aggregating with
conditions on ``k``, computes all window lengths for all window ends in one pass.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.windows import SLICE_MINUTES, SLICE_SECONDS, WINDOW_LENGTHS_MINUTES, floor_to_window_start

# Number of 15-minute slices in each window length.
LABEL_SLICES: dict[str, int] = {label: minutes // SLICE_MINUTES for label, minutes in WINDOW_LENGTHS_MINUTES.items()}
MAX_SLICES = max(LABEL_SLICES.values())
SECONDS_PER_DAY = 86_400


def window_end_epochs(window_starts: list[datetime]) -> list[int]:
    """Sorted, distinct window ends (epoch seconds) of the requested windows; rejects off-grid starts."""
    ends = set()
    for start in window_starts:
        aware = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
        if floor_to_window_start(aware) != aware:
            raise ValueError(f"FG-A window start {start.isoformat()} is not on the 08/23/38/53 grid")
        ends.add(int(aware.timestamp()) + SLICE_SECONDS)
    return sorted(ends)


def slice_epoch(column: str = "slice_start") -> Column:
    return F.unix_timestamp(F.col(column))


def explode_to_window_ends(slices: DataFrame, end_epochs: list[int]) -> DataFrame:
    """Repeat each slice row once per requested window end within 24 h after it.

    Adds ``end_epoch`` (epoch seconds of the window end) and ``slice_rank`` (1 = the end's own slice).
    The rank range is bounded by the first and last requested end, so a day's backfill generates only
    the rows it aggregates; the final ``isin`` keeps only requested ends (and drops off-grid slices).
    """
    first, last = min(end_epochs), max(end_epochs)
    start = F.col("_slice_epoch")
    rank_lo = F.greatest(F.lit(1), F.ceil((F.lit(first) - start) / SLICE_SECONDS)).cast("int")
    rank_hi = F.least(F.lit(MAX_SLICES), F.floor((F.lit(last) - start) / SLICE_SECONDS)).cast("int")
    exploded = (
        slices.withColumn("_slice_epoch", slice_epoch())
        .where(rank_lo <= rank_hi)
        .withColumn("slice_rank", F.explode(F.sequence(rank_lo, rank_hi)))
        .withColumn("end_epoch", start + F.col("slice_rank") * SLICE_SECONDS)
    )
    return exploded.where(F.col("end_epoch").isin(end_epochs)).drop("_slice_epoch")


def in_window(label: str) -> str:
    """SQL condition: the exploded row's slice lies inside the ``label`` window of its end.

    Conditions and aggregates are SQL text: FG-A builds ~1,000 expressions, and one ``F.expr`` per
    expression keeps plan construction fast (Column-API trees cost one JVM round trip per node).
    """
    return f"slice_rank <= {LABEL_SLICES[label]}"
