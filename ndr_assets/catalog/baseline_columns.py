"""Column documentation of the FG-B tables, pair rarity and the machine inventory."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import types as T

from ndr_assets.catalog import helper_formulas as hf
from ndr_assets.catalog.columns import ColumnSpec, module_formula
from ndr_assets.catalog.entry import AUXILIARY, FEATURE, KEY, METRIC_PLACEHOLDER
from ndr_assets.transforms.schemas import BASELINE_STATS, PAIR_RARITY_VALUE_COLUMNS

_STAT_TEXT = {
    "median": "Median",
    "p25": "25th percentile",
    "p75": "75th percentile",
    "p95": "95th percentile",
    "p99": "99th percentile",
    "mad": "Median absolute deviation",
    "iqr": "Interquartile range",
    "support_count": "Number of host-windows behind the statistics",
}




def _stat_columns(metrics: list[str], pooled: str, extra_upstream: tuple[str, ...]) -> dict[str, ColumnSpec]:
    modules = (hf.BASELINES_MODULE,)
    columns = {}
    for metric in metrics:
        for stat in BASELINE_STATS:
            name = f"{metric}_{stat}"
            formula = f"{module_formula(modules, name, f'{METRIC_PLACEHOLDER}_{stat}', stat)}; x = fg_a.{metric}"
            consumers = ("fg_b_ip_metadata", "fg_c") if stat == "support_count" else ("fg_c",)
            description = f"{_STAT_TEXT[stat]} of {metric} over {pooled} of the same time band in the horizon."
            upstream = (f"fg_a.{metric}", *extra_upstream)
            family = f"{METRIC_PLACEHOLDER}_{stat}"
            columns[name] = ColumnSpec(FEATURE, formula, description, upstream, consumers, family=family)
    return columns


_FG_B_TABLE_TEXT = {
    "host_ip": "The host the baseline describes.",
    "window_label": "Time band of the baseline windows (work_hours, after_hours, night, weekend).",
    "segment_id": "Network segment of the host (FG-C's fallback baseline for cold-start hosts).",
    "host_count": "Hosts pooled into the segment baseline.",
    "baseline_start_ts": "First window end included in the baseline.",
    "baseline_end_ts": "Last window end included in the baseline.",
}


def _fg_b_table_columns(names: Iterable[str], keys: tuple[str, ...]) -> dict[str, ColumnSpec]:
    """Keys and metadata columns of an FG-B table (``keys`` = the table's row key)."""
    columns = {}
    for name in names:
        formula = f"fg_a.{name}" if name in ("host_ip", "window_label") else module_formula((hf.BASELINES_MODULE,), name)
        upstream = ("fg_a", "fg_b_builder.segment_mapping") if name == "segment_id" else ("fg_a",)
        role = KEY if name in keys else AUXILIARY
        columns[name] = ColumnSpec(role, formula, _FG_B_TABLE_TEXT[name], upstream, ("fg_c",))
    return columns


_PERIOD = ("baseline_start_ts", "baseline_end_ts")


def fg_b_host_columns(metrics: list[str]) -> dict[str, ColumnSpec]:
    keys = ("host_ip", "window_label")
    return (
        _fg_b_table_columns((*keys, "segment_id"), keys)
        | _stat_columns(metrics, "the host's windows", ())
        | _fg_b_table_columns(_PERIOD, keys)
    )


def fg_b_segment_columns(metrics: list[str]) -> dict[str, ColumnSpec]:
    keys = ("segment_id", "window_label")
    return (
        _fg_b_table_columns((*keys, "host_count"), keys)
        | _stat_columns(metrics, "the pooled host-windows of the segment", ("fg_b_builder.segment_mapping",))
        | _fg_b_table_columns(_PERIOD, keys)
    )


_IP_METADATA_TEXT = {
    "machine_name": ("Machine name of the host from the inventory (null when unknown).", AUXILIARY, ("machine_inventory",)),
    "support_count": (
        "Host-windows of the time band in the horizon (minimum over the required metrics).",
        FEATURE,
        ("fg_a", "fg_b_builder.baseline_required_metrics"),
    ),
    "is_full_history": (
        "The host has enough history in this time band for its own baseline.",
        FEATURE,
        ("fg_a", "fg_b_builder.support_min"),
    ),
    "is_non_persistent_machine": (
        "The machine is non-persistent (e.g. VDI): its history is not its own.",
        FEATURE,
        ("machine_inventory", "fg_b_builder.non_persistent_machine_prefixes"),
    ),
    "is_cold_start": (
        "FG-C uses the segment baseline for this host and time band.",
        FEATURE,
        ("fg_b_ip_metadata.is_full_history", "fg_b_ip_metadata.is_non_persistent_machine"),
    ),
}


def fg_b_ip_metadata_columns() -> dict[str, ColumnSpec]:
    modules = (hf.BASELINES_MODULE,)
    columns = _fg_b_table_columns(("host_ip", "window_label", "segment_id"), ("host_ip", "window_label"))
    for name, (description, role, upstream) in _IP_METADATA_TEXT.items():
        formula = module_formula(modules, f"ip_metadata.{name}", name)
        columns[name] = ColumnSpec(role, formula, description, upstream, ("fg_c",))
    return columns


_PAIR_RARITY_TEXT = {
    "pair_seen_count": "Windows in which the pair was seen in the horizon.",
    "pair_last_seen_ts": "Last window end with the pair.",
    "active_days": "Distinct UTC days with the pair.",
    "pair_daily_avg": "Windows with the pair per active day.",
    "pair_rarity_score": "1 = never active in the horizon, 0 = active every day.",
    "is_new_pair_flag": "The pair first appeared at the end of the horizon.",
    "is_rare_pair_flag": "The pair was active on only a few days.",
}


def pair_rarity_columns(schema: T.StructType) -> dict[str, ColumnSpec]:
    modules = (hf.PAIR_RARITY_MODULE,)
    owner = schema.fields[0].name  # host_ip or segment_id
    keys = {
        "host_ip": ("pair_counts.src_ip", "The host (source of the pair's sessions)."),
        "segment_id": (
            "segments.assign_segment(pair_counts.src_ip, fg_b_builder.segment_mapping)",
            "Segment of the pair's source.",
        ),
        "dst_ip": ("pair_counts.dst_ip", "Destination of the pair."),
        "dst_port": ("pair_counts.dst_port", "Destination port of the pair."),
    }
    upstream = ("pair_counts", "fg_b_builder.segment_mapping") if owner == "segment_id" else ("pair_counts",)
    columns = {
        name: ColumnSpec(KEY, keys[name][0], keys[name][1], upstream, ("fg_c",))
        for name in (owner, "dst_ip", "dst_port")
    }
    for name in PAIR_RARITY_VALUE_COLUMNS:
        formula = module_formula(modules, f"{'segment' if owner == 'segment_id' else 'host'}.{name}", name)
        inputs = (*upstream, "fg_b_builder.pair_rarity")
        columns[name] = ColumnSpec(FEATURE, formula, _PAIR_RARITY_TEXT[name], inputs, ("fg_c",))
    return columns


def machine_inventory_columns(ip_column: str, name_column: str) -> dict[str, ColumnSpec]:
    upstream = ("redshift: machine_inventory_unload.query",)
    return {
        ip_column: ColumnSpec(
            KEY, "query.ip_column of the unload query", "IP address of the machine.", upstream, ("fg_b_ip_metadata",)
        ),
        name_column: ColumnSpec(
            FEATURE, "query.name_column of the unload query", "Machine (host) name; non-persistent prefixes mark VDI.",
            upstream, ("fg_b_ip_metadata",),
        ),
    }
