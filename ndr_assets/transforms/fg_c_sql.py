"""SQL text of FG-C's per-metric expressions over private arrays: scale, z, transforms, suspicion.

FG-A values travel as one array ``__x`` and each chosen baseline stat as one array
``__b<i>_<stat>`` (horizon number ``i``, 0 = main), in the order fixed by :class:`FgCLayout`, so
the route joins stay narrow (see ``fg_c.py``, Performance). These helpers only produce SQL text
for ``selectExpr``; they never touch Spark.
"""

from __future__ import annotations

from ndr_assets.transforms.schemas import horizon_suffix

MAD_TO_SIGMA = 0.6745  # modified z-score constant (Iglewicz and Hoaglin): 0.6745 = Phi^-1(0.75)
TRANSFORM_STATS = ("median", "mad", "iqr")  # every transform needs these
SUSPICION_STATS = ("p25", "p75", "p95")  # and the per-metric suspicion features these

# Metrics that can be negative, with the offset that makes them non-negative: ratio and log_ratio
# are taken of (x + offset) and (median + offset), otherwise ln() of a negative ratio is undefined.
# bytes_asymmetry_ratio lies in [-1, 1] (FG-A), so +1 maps it onto [0, 2].
SIGNED_METRIC_OFFSETS: dict[str, float] = {"bytes_asymmetry_ratio": 1.0}

TRANSFORM_FORMULAS: dict[str, str] = {
    "scale": "mad if mad > 0, else iqr / 2 if iqr > 0, else eps (baseline of the chosen source: host or segment)",
    "diff": "x - median",
    "ratio": "(x + eps) / (median + eps); bytes_asymmetry_ratio (range [-1, 1]) uses x + 1 and median + 1",
    "log_ratio": "ln((x + eps) / (median + eps)); bytes_asymmetry_ratio uses x + 1 and median + 1",
    "z_mad": "0.6745 * (x - median) / scale",
    "abs_dev_over_mad": "|x - median| / scale",
    "z_mad_clipped": "min(max(z_mad, -z_max), z_max)",
    "z_mad_signed_pow3": "z_mad_clipped ** 3 (sign kept)",
}
X_ARRAY = "__x"


def quoted(name: str) -> str:
    return f"`{name}`"


def double(value: float) -> str:
    """A double literal (the string cast also covers values like 1e-06 without decimal typing)."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def stat_array(horizon_index: int, stat: str) -> str:
    """Private column holding one baseline stat of every FG-C column of a horizon (0 = main)."""
    return f"__b{horizon_index}_{stat}"


def signed_offset(column: str) -> float:
    """Offset of an FG-A column whose metric can be negative (``SIGNED_METRIC_OFFSETS``), else 0."""
    for metric, offset in SIGNED_METRIC_OFFSETS.items():
        if column.removeprefix("in_").startswith(f"{metric}_w_"):
            return offset
    return 0.0


def _array_sql(items: list[str], name: str) -> str:
    return f"array({', '.join(items)}) AS {quoted(name)}"


class FgCLayout:
    """Which FG-A columns and baseline stats FG-C reads, and their positions in the private arrays.

    Main horizon: median/mad/iqr of ``main_columns`` (the output metric columns first, then the
    columns the suspicion features take a z of) and p25/p75/p95 of the suspicion metrics; a further
    horizon: median/mad/iqr of the output metric columns. ``__x`` holds ``main_columns`` and then
    the extra FG-A columns, so position k < len(metric_columns) is the same metric in every array.
    """

    def __init__(
        self,
        horizons: list[str],
        metric_columns: list[str],
        z_columns: list[str],
        suspicion_columns: list[str],
        extra_fg_a_columns: list[str],
    ):
        self.horizons = list(horizons)
        self.metric_columns = list(metric_columns)
        main = list(dict.fromkeys(self.metric_columns + z_columns))
        self.fg_a_columns = list(dict.fromkeys(main + extra_fg_a_columns))
        self.stat_columns: dict[tuple[int, str], list[str]] = {}
        for index in range(len(horizons)):
            for stat in TRANSFORM_STATS:
                self.stat_columns[(index, stat)] = main if index == 0 else self.metric_columns
        for stat in SUSPICION_STATS:
            if suspicion_columns:
                self.stat_columns[(0, stat)] = list(suspicion_columns)
        self._x_position = {column: k for k, column in enumerate(self.fg_a_columns)}
        self._stat_position = {
            key: {column: k for k, column in enumerate(columns)} for key, columns in self.stat_columns.items()
        }

    def stats_of(self, index: int) -> dict[str, list[str]]:
        """FG-A column -> stats read from the baselines of horizon number ``index``."""
        needed: dict[str, list[str]] = {}
        for (i, stat), columns in self.stat_columns.items():
            if i == index:
                for column in columns:
                    needed.setdefault(column, []).append(stat)
        return needed

    def x_array_sql(self) -> str:
        """``selectExpr`` item packing the FG-A values (as doubles) into ``__x``."""
        return _array_sql([f"CAST({quoted(c)} AS DOUBLE)" for c in self.fg_a_columns], X_ARRAY)

    def stat_arrays_sql(self, index: int) -> list[str]:
        """``selectExpr`` items packing an FG-B table's ``<column>_<stat>`` into ``__b<index>_<stat>``."""
        return [
            _array_sql([f"CAST({quoted(f'{c}_{stat}')} AS DOUBLE)" for c in columns], stat_array(index, stat))
            for (i, stat), columns in self.stat_columns.items()
            if i == index
        ]

    def suffix(self, index: int) -> str:
        return horizon_suffix(self.horizons, self.horizons[index])

    def metric(self, index: int, column: str, eps: float, z_max: float) -> MetricSql:
        """SQL of one column against horizon ``index``'s chosen baseline (scalar expressions)."""
        offset = signed_offset(column)
        return MetricSql(
            x=f"{X_ARRAY}[{self._x_position[column]}]",
            stat=lambda name: f"{quoted(stat_array(index, name))}[{self._stat_position[(index, name)][column]}]",
            offset=double(offset) if offset else None,
            eps=eps,
            z_max=z_max,
        )

    def transform_arrays_sql(self, index: int, transforms: list[str], eps: float, z_max: float) -> list[str]:
        """``selectExpr`` items: one array per transform over the output metric columns (position k).

        A higher-order ``transform`` over the positions keeps the expression count per horizon at
        one per transform (instead of one per column), which Spark compiles and optimizes faster.
        """
        positions: dict[float, list[int]] = {}
        for k, column in enumerate(self.metric_columns):
            if signed_offset(column):
                positions.setdefault(signed_offset(column), []).append(k)
        offset = None
        if positions:
            cases = " ".join(f"WHEN k IN ({', '.join(map(str, ks))}) THEN {double(o)}" for o, ks in positions.items())
            offset = f"(CASE {cases} ELSE 0D END)"
        element = MetricSql(
            x=f"{X_ARRAY}[k]",
            stat=lambda name: f"{quoted(stat_array(index, name))}[k]",
            offset=offset,
            eps=eps,
            z_max=z_max,
        )
        last = len(self.metric_columns) - 1
        return [
            f"transform(sequence(0, {last}), k -> {element.transform(name)}) AS {quoted(transform_array(index, name))}"
            for name in transforms
        ]


def transform_array(horizon_index: int, transform: str) -> str:
    """Private column holding one transform of every output metric column of a horizon."""
    return f"__t{horizon_index}_{transform}"


class MetricSql:
    """SQL of one value ``x`` against its chosen baseline ``stat(name)``."""

    def __init__(self, x: str, stat, offset: str | None, eps: float, z_max: float):
        self.x = x
        self.stat = stat  # stat name -> SQL of that stat
        self.eps = double(eps)
        self.z_max = double(z_max)
        self._shift = f" + {offset}" if offset else ""

    @property
    def scale(self) -> str:
        mad, iqr = self.stat("mad"), self.stat("iqr")
        return f"(CASE WHEN {mad} > 0 THEN {mad} WHEN {iqr} > 0 THEN {iqr} / 2 ELSE {self.eps} END)"

    @property
    def diff(self) -> str:
        return f"({self.x} - {self.stat('median')})"

    @property
    def ratio(self) -> str:
        return f"(({self.x}{self._shift} + {self.eps}) / ({self.stat('median')}{self._shift} + {self.eps}))"

    @property
    def log_ratio(self) -> str:
        return f"LN({self.ratio})"

    @property
    def z_mad(self) -> str:
        return f"({double(MAD_TO_SIGMA)} * {self.diff} / {self.scale})"

    @property
    def abs_dev_over_mad(self) -> str:
        return f"(ABS({self.diff}) / {self.scale})"

    @property
    def z_mad_clipped(self) -> str:
        return f"GREATEST(LEAST({self.z_mad}, {self.z_max}), -{self.z_max})"

    @property
    def z_mad_signed_pow3(self) -> str:
        return f"POWER({self.z_mad_clipped}, 3)"

    def excess_over_p95(self) -> str:
        return f"GREATEST({self.x} - {self.stat('p95')}, 0D)"

    def excess_ratio_p95(self) -> str:
        return f"({self.excess_over_p95()} / ({self.stat('p95')}{self._shift} + {self.eps}))"

    def iqr_dev(self) -> str:
        x, p25, p75 = self.x, self.stat("p25"), self.stat("p75")
        spread = f"({self.stat('iqr')} + {self.eps})"
        above, below = f"({x} - {p75}) / {spread}", f"({x} - {p25}) / {spread}"
        return f"(CASE WHEN {x} > {p75} THEN {above} WHEN {x} < {p25} THEN {below} ELSE 0D END)"

    def transform(self, name: str) -> str:
        """SQL of a transform in ``FG_C_TRANSFORMS`` (its name is the property name)."""
        if name not in TRANSFORM_FORMULAS or name == "scale":
            raise ValueError(f"unknown FG-C transform '{name}'")
        return getattr(self, name)
