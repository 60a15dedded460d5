"""Window-end arithmetic shared by the FG-A metric families.

FG-A computes, for every requested window end ``E``, windows of length ``L`` covering the slices with
``slice_start`` in ``[E - L, E - 15 min]``, i.e. the ``L / 15 min`` slices up to the window's own slice.

:func:`sliding_window_sums` computes all window lengths for all window ends in one pass without
repeating slice rows: per series (a host and role, or a peer key) it builds the dense 15-minute grid
from the series' first slice, takes running sums once, and reads each window sum as the difference
of the running sum at the window's last slice and ``L / 15 min`` rows earlier (``lag``).

Expressions are SQL text: FG-A builds about a thousand of them, and one ``F.expr`` per expression keeps
plan construction fast (a Column-API tree costs one JVM round trip per node).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ndr_assets.transforms.windows import (
    GRID_OFFSET_SECONDS,
    SLICE_MINUTES,
    SLICE_SECONDS,
    WINDOW_LENGTHS_MINUTES,
    floor_to_window_start,
)

# Number of 15-minute slices in each window length.
LABEL_SLICES: dict[str, int] = {label: minutes // SLICE_MINUTES for label, minutes in WINDOW_LENGTHS_MINUTES.items()}
MAX_SLICES = max(LABEL_SLICES.values())
LONGEST_LABEL = max(LABEL_SLICES, key=LABEL_SLICES.__getitem__)
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


def slice_range(end_epochs: list[int]) -> tuple[int, int]:
    """First and last slice start (epoch seconds) any requested window reads."""
    return end_epochs[0] - MAX_SLICES * SLICE_SECONDS, end_epochs[-1] - SLICE_SECONDS


def is_requested_end(column: str, end_epochs: list[int]) -> str:
    """SQL: ``column`` is one of the requested window ends (one expression even for a month of ends)."""
    return f"{column} IN ({', '.join(str(e) for e in end_epochs)})"


def on_grid_slice(epoch: str) -> str:
    """SQL: the epoch is a slice start (minutes 08/23/38/53)."""
    return f"pmod({epoch} - {GRID_OFFSET_SECONDS}, {SLICE_SECONDS}) = 0"


def shuffle_partitions(df: DataFrame) -> int:
    """The session's shuffle partition count, given explicitly to ``repartition``.

    An explicit count keeps adaptive execution from coalescing the small but compute-heavy window
    stages into a single task.
    """
    return int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)


def sliding_window_sums(
    slices: DataFrame, keys: list[str], sums: list[str], maxima: list[str], end_epochs: list[int]
) -> DataFrame:
    """Per series ``keys`` and requested window end, every window length's sums and maxima.

    Output columns: ``keys``, ``end_epoch``, ``<c>_<w>`` (sum of ``c`` over the window's slices) for
    ``c`` in ``sums``, ``<m>_<w>`` (maximum, null without slices) for ``m`` in ``maxima``,
    ``slices_<w>`` (slices with a row) and ``own_slice`` (1 if the window's own slice has a row). Only
    ends with at least one slice in the longest window get a row. Several rows of a series in one
    slice are summed (maxima: maximum) first.

    Running sums are taken on the slice rows; each slice row then fills the dense grid up to the
    series' next slice (or 24 h, or the last end), and ``lag`` over the dense grid reads the running
    sum ``L / 15 min`` slices earlier.
    """
    lowest, highest = slice_range(end_epochs)
    double_sums = {f.name for f in slices.schema.fields if f.name in sums and isinstance(f.dataType, T.DoubleType)}
    cumulative = [c for c in [*sums, "_rows"] if c not in double_sums]
    series = ", ".join(keys)
    per_slice = (
        slices.selectExpr(*keys, "unix_timestamp(slice_start) AS _t", *sums, *maxima)
        .where(f"_t BETWEEN {lowest} AND {highest} AND {on_grid_slice('_t')}")
        # One partitioning by series serves the per-slice aggregate and both window passes.
        .repartition(shuffle_partitions(slices), *keys)
        .groupBy(*keys, "_t")
        .agg(
            *[F.expr(f"sum({c}) AS {c}") for c in sums],
            *[F.expr(f"max({m}) AS {m}") for m in maxima],
            F.expr("1 AS _rows"),
        )
    )
    # Window functions are interpreted row by row, so the running sums travel as one array: one
    # lag per window length instead of one per column and window length.
    over = f"OVER (PARTITION BY {series} ORDER BY _t"
    running_sums = ", ".join(f"sum({c}) {over} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)" for c in cumulative)
    running = per_slice.selectExpr(
        *keys, "_t", *double_sums, *maxima, f"array({running_sums}) AS _cum", f"lead(_t, 1) {over}) AS _next"
    )
    # Dense grid: a slice's running sums hold until the series' next slice.
    last_filled = f"coalesce(_next - {SLICE_SECONDS}, least(_t + {(MAX_SLICES - 1) * SLICE_SECONDS}, {highest}))"
    dense = running.selectExpr(
        *keys,
        "_cum",
        "_t AS _slice",
        *double_sums,
        *maxima,
        f"explode(sequence(_t, {last_filled}, CAST({SLICE_SECONDS} AS BIGINT))) AS _t",
    ).selectExpr(
        *keys,
        "_t",
        "_cum",
        # Per-slice values only on the slice's own grid row.
        *[f"IF(_t = _slice, {c}, NULL) AS {c}" for c in [*double_sums, *maxima]],
        "IF(_t = _slice, 1, 0) AS own_slice",
    )
    lagged = [f"lag(_cum, {n}) {over}) AS _lag_{label}" for label, n in LABEL_SLICES.items()]
    framed = []
    for label, n in LABEL_SLICES.items():
        frame = f"{over} ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW)"
        # A frame sum keeps doubles exact (a difference of running sums would not).
        framed += [f"coalesce(sum({c}) {frame}, 0D) AS {c}_{label}" for c in double_sums]
        framed += [f"max({m}) {frame} AS {m}_{label}" for m in maxima]
    windowed = dense.selectExpr(*keys, "_t", "own_slice", "_cum", *lagged, *framed)
    differences = []
    for label in LABEL_SLICES:
        for index, c in enumerate(cumulative, start=1):
            name = "slices" if c == "_rows" else c
            # No row n slices back: the series starts inside the window and the earlier sum is 0.
            earlier = f"coalesce(element_at(_lag_{label}, {index}), 0)"
            differences.append(f"element_at(_cum, {index}) - {earlier} AS {name}_{label}")
    framed_names = [f"{c}_{label}" for label in LABEL_SLICES for c in [*double_sums, *maxima]]
    return windowed.selectExpr(
        *keys, f"_t + {SLICE_SECONDS} AS end_epoch", "own_slice", *differences, *framed_names
    ).where(f"{is_requested_end('end_epoch', end_epochs)} AND slices_{LONGEST_LABEL} > 0")
