"""30-day novelty of FG-A keys (peer IPs, ports, pairs, services) per host and role.

For the ``w_L`` window ending at ``E`` (15-minute window start ``W = E - 15 min``) a key's history is
the slices starting in ``[W - lookback days, E - L)``. A key of the window is *new* without any
occurrence there, *rare* when it occurred on at least 1 but fewer than the threshold distinct UTC days.

Two exact methods, chosen by how many distinct keys a host has:

- peer IPs and ports (few per host, need new and rare): :func:`key_history` keeps each key's
  occurrences as per-day slot bitmaps; :func:`with_seen_days` counts the days of a range with a few
  array look-ups per row (no search, no lambda).
- pairs and services (many per host, need new only): :func:`new_key_counts` turns each occurrence
  into the interval of window ends for which it makes the key new (+1 at its start, -1 after its end)
  and reads the count for every window end from a running sum, never materialising (key, end) rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_assets.transforms.fg_a_window_ends import (
    LABEL_SLICES,
    SECONDS_PER_DAY,
    is_requested_end,
    on_grid_slice,
    shuffle_partitions,
    slice_range,
)
from ndr_assets.transforms.windows import GRID_OFFSET_SECONDS, SLICE_SECONDS, WINDOW_LABELS

SLOTS_PER_DAY = SECONDS_PER_DAY // SLICE_SECONDS  # 96
_WORD_BITS = SLOTS_PER_DAY // 2  # a day's slots are kept in two 48-bit words


@dataclass(frozen=True)
class HistoryGrid:
    """The UTC days the history covers: day ``i`` starts at ``base_epoch + i * 86400``."""

    base_epoch: int
    days: int

    @classmethod
    def for_windows(cls, end_epochs: list[int], lookback_days: int) -> HistoryGrid:
        first_start = end_epochs[0] - SLICE_SECONDS
        last_start = end_epochs[-1] - SLICE_SECONDS
        base_day = (first_start - lookback_days * SECONDS_PER_DAY) // SECONDS_PER_DAY
        last_day = last_start // SECONDS_PER_DAY
        return cls(base_day * SECONDS_PER_DAY, last_day - base_day + 1)

    def slot(self, epoch_sql: str) -> str:
        """SQL: index of the slice starting at ``epoch_sql``, counted from the first history day (96 per day)."""
        return f"CAST(floor(({epoch_sql} - {self.base_epoch + GRID_OFFSET_SECONDS}) / {SLICE_SECONDS}) AS BIGINT)"


def key_occurrences(
    keys: DataFrame, key_columns: list[str], lower_epoch: int, upper_epoch: int, *, distinct: bool = False
) -> DataFrame:
    """``(key_columns, _t)`` with the slice start ``_t`` in ``[lower_epoch, upper_epoch)``, partitioned by key."""
    occurrences = (
        keys.selectExpr(*key_columns, "unix_timestamp(slice_start) AS _t")
        .where(f"_t >= {lower_epoch} AND _t < {upper_epoch} AND {on_grid_slice('_t')}")
        .repartition(shuffle_partitions(keys), *key_columns)
    )
    return occurrences.dropDuplicates([*key_columns, "_t"]) if distinct else occurrences


def key_history(occurrences: DataFrame, key_columns: list[str], grid: HistoryGrid) -> DataFrame:
    """Per key, its occurrences (:func:`key_occurrences` rows) as per-day bitmaps.

    Output: ``key_columns``, ``slot_words`` (two 48-bit words per history day: bit ``p`` of day ``d`` =
    an occurrence in the day's slice ``p``) and ``days_through`` (element ``d`` = the number of days
    ``0 .. d`` with an occurrence). Duplicates from overlapping reads are harmless: bits are OR-ed.
    """
    positioned = occurrences.selectExpr(
        *key_columns,
        f"CAST(floor({grid.slot('_t')} / {SLOTS_PER_DAY}) AS INT) AS _day",
        f"CAST(pmod({grid.slot('_t')}, {SLOTS_PER_DAY}) AS INT) AS _pos",
    )
    low_bit = f"CASE WHEN _pos < {_WORD_BITS} THEN shiftleft(1L, _pos) ELSE 0L END"
    high_bit = f"CASE WHEN _pos >= {_WORD_BITS} THEN shiftleft(1L, _pos - {_WORD_BITS}) ELSE 0L END"
    per_day = positioned.groupBy(*key_columns, "_day").agg(
        F.expr(f"bit_or({low_bit}) AS _w0"), F.expr(f"bit_or({high_bit}) AS _w1")
    )
    # Fixed positions per day, so that a window's boundary days are found by index, not by a search.
    days = range(grid.days)
    pivot = [f"coalesce(max(CASE WHEN _day = {d} THEN {w} END), 0L) AS {w}_{d}" for d in days for w in ("_w0", "_w1")]
    pivot += [f"count(CASE WHEN _day <= {d} THEN 1 END) AS _through_{d}" for d in days]
    pivoted = per_day.groupBy(*key_columns).agg(*[F.expr(p) for p in pivot])
    words = ", ".join(f"{w}_{d}" for d in days for w in ("_w0", "_w1"))
    through = ", ".join(f"CAST(_through_{d} AS INT)" for d in days)
    return pivoted.selectExpr(*key_columns, f"array({words}) AS slot_words", f"array({through}) AS days_through")


def with_seen_days(rows: DataFrame, history: DataFrame, key_columns: list[str], grid: HistoryGrid, lookback_days: int) -> DataFrame:
    """Adds ``seen_<w>``: distinct UTC days with an occurrence of the row's key in its history.

    The history of the ``w_L`` window ending at ``end_epoch`` is the slices starting in
    ``[end_epoch - 15 min - lookback days, end_epoch - L)``. Exact for any such range: its first and
    last day are tested slot by slot, the days between counted from ``days_through``. Needs the
    :func:`key_history` columns (a key without history: 0 days). The per-row expressions are kept
    small (day indexes and bit masks first, then a few look-ups): the JVM does not JIT-compile
    generated methods over 8 KB.
    """
    per_day, b = SLOTS_PER_DAY, _WORD_BITS
    lower = f"(end_epoch - {SLICE_SECONDS + lookback_days * SECONDS_PER_DAY})"
    first_slot = grid.slot(lower)
    positions = [
        f"CAST({first_slot} DIV {per_day} AS INT) AS _fd",
        # The first day from the range start on: the same for every window length.
        f"shiftleft(-1L, least({first_slot} % {per_day}, {b})) & {(1 << b) - 1} AS _fm0",
        f"shiftleft(-1L, greatest({first_slot} % {per_day}, {b}) - {b}) & {(1 << b) - 1} AS _fm1",
    ]
    for label, n in LABEL_SLICES.items():
        last_slot = f"({grid.slot(f'(end_epoch - {n * SLICE_SECONDS})')} - 1)"
        positions += [
            f"CAST({last_slot} DIV {per_day} AS INT) AS _ld_{label}",
            # The last day up to the range end: slots 0 .. last.
            f"shiftleft(1L, least({last_slot} % {per_day} + 1, {b})) - 1 AS _lm0_{label}",
            f"shiftleft(1L, greatest({last_slot} % {per_day} + 1, {b}) - {b}) - 1 AS _lm1_{label}",
        ]
    located = rows.join(history, key_columns, "left").selectExpr(*rows.columns, "slot_words", "days_through", *positions)

    def day_hit(day: str, mask0: str, mask1: str) -> str:
        low = f"try_element_at(slot_words, {day} * 2 + 1) & {mask0}"
        high = f"try_element_at(slot_words, {day} * 2 + 2) & {mask1}"
        return f"CAST((({low}) | ({high})) != 0 AS INT)"

    seen = []
    for label in LABEL_SLICES:
        last_day = f"_ld_{label}"
        between = f"try_element_at(days_through, {last_day}) - try_element_at(days_through, _fd + 1)"
        several_days = (
            f"{day_hit('_fd', '_fm0', '_fm1')} + {between} + {day_hit(last_day, f'_lm0_{label}', f'_lm1_{label}')}"
        )
        if lookback_days >= 2:  # every range is longer than a day: it starts and ends on different days
            count = several_days
        else:
            one_day = day_hit("_fd", f"_fm0 & _lm0_{label}", f"_fm1 & _lm1_{label}")
            count = f"CASE WHEN _fd = {last_day} THEN {one_day} ELSE {several_days} END"
        seen.append(f"coalesce({count}, 0) AS seen_{label}")
    return located.selectExpr(*rows.columns, *seen)


def new_key_counts(
    keys: DataFrame, history: DataFrame, series: list[str], end_epochs: list[int], lookback_days: int
) -> DataFrame:
    """Per ``series`` (e.g. host, role, key type) and requested window end: ``new_<w>`` = distinct new keys.

    ``keys``: the keys of the slices windows read (``series + ["key", "slice_start"]``); ``history``:
    :func:`key_occurrences` rows of the lookback (only those before the first slice any window reads
    are used). For a key's occurrence ``o`` whose previous occurrence is ``p``, ``o`` is the key's first
    slice in the ``w_L`` window ending at ``E`` and the key is new there exactly for ``E`` in
    ``[max(o + 15 min, p + lookback + 30 min), o + L]`` (no ``p``: from ``o + 15 min``); the intervals
    of one key never overlap (the lookback is longer than any window), so a running sum of +1/-1
    events counts each new key once.
    """
    key_columns = [*series, "key"]
    lowest, highest = slice_range(end_epochs)
    lookback = lookback_days * SECONDS_PER_DAY
    occurrences = key_occurrences(keys, key_columns, lowest, highest + 1, distinct=True)
    # The last occurrence before the slices windows read comes from the history.
    earlier = history.where(f"_t < {lowest}").groupBy(*key_columns).agg(F.expr("max(_t) AS _history_last"))
    order = f"OVER (PARTITION BY {', '.join(key_columns)} ORDER BY _t)"
    with_previous = occurrences.join(earlier, key_columns, "left").selectExpr(
        *series, "_t", f"coalesce(lag(_t, 1) {order}, _history_last) AS _previous"
    )
    last_end = end_epochs[-1]

    def event(time: str, label: str, sign: int) -> str:
        deltas = ", ".join(f"'d_{other}', {sign if other == label else 0}" for other in WINDOW_LABELS)
        return f"named_struct('time', {time}, {deltas})"

    events = []
    for label, n in LABEL_SLICES.items():
        start = (
            f"CASE WHEN _previous IS NULL THEN _t + {SLICE_SECONDS} "
            f"ELSE greatest(_t + {SLICE_SECONDS}, _previous + {lookback + 2 * SLICE_SECONDS}) END"
        )
        stop = f"_t + {(n + 1) * SLICE_SECONDS}"  # exclusive
        events += [
            f"IF({start} < {stop} AND {start} <= {last_end}, {event(start, label, 1)}, NULL)",
            f"IF({start} < {stop} AND {stop} <= {last_end}, {event(stop, label, -1)}, NULL)",
        ]
    exploded = with_previous.selectExpr(*series, f"explode(array({', '.join(events)})) AS e").where("e IS NOT NULL")
    deltas = exploded.selectExpr(*series, "e.time AS time", *[f"e.d_{label} AS d_{label}" for label in WINDOW_LABELS])
    # A zero row at every requested end, so that each end reads the running sum up to it.
    probes = (
        deltas.select(*series)
        .distinct()
        .selectExpr(*series, f"explode(sequence({end_epochs[0]}L, {end_epochs[-1]}L, {SLICE_SECONDS}L)) AS time")
        .where(is_requested_end("time", end_epochs))
    )
    per_time = (
        deltas.unionByName(probes, allowMissingColumns=True)
        .groupBy(*series, "time")
        .agg(*[F.expr(f"coalesce(sum(d_{label}), 0) AS d_{label}") for label in WINDOW_LABELS])
    )
    over = f"OVER (PARTITION BY {', '.join(series)} ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    return per_time.selectExpr(
        *series, "time AS end_epoch", *[f"sum(d_{label}) {over} AS new_{label}" for label in WINDOW_LABELS]
    ).where(is_requested_end("end_epoch", end_epochs))
