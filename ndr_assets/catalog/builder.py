"""Builds the feature catalog from the schema contracts and the formula registries.

Column names, types, nullability and order come from ``ndr_assets.transforms.schemas`` (the same
contracts every writer enforces), so the catalog cannot drift from what the builders write. Which
FG-B and FG-C columns exist depends on the job specs (baseline metrics, FG-C metrics, transforms,
horizons, suspicion and rare-pair metrics); without a spec the v1 defaults apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyspark.sql import types as T

from ndr_assets.catalog import helper_formulas as hf
from ndr_assets.catalog.entry import (
    AUXILIARY,
    FEATURE,
    KEY,
    METRIC_PLACEHOLDER,
    MODEL_CONSUMER,
    FeatureEntry,
    feature_id,
)
from ndr_assets.catalog.formulas import (
    BASE_METRIC_DOCS,
    DELTA_EXTRA_DOCS,
    DELTA_KEY_DOCS,
    DERIVED_METRIC_DOCS,
    FG_A_KEY_DOCS,
    HIGH_RISK_SEGMENT_DOCS,
    NOVELTY_HISTORY,
    NOVELTY_METRIC_DOCS,
    PAIR_COUNTS_DOCS,
    PEER_SLICE_DOCS,
    TIME_FEATURE_DOCS,
    WINDOW_COMBINATION,
    ColumnDoc,
    window_phrase,
    windowed_formula,
)
from ndr_assets.transforms.schemas import (
    BASE_METRICS,
    BASELINE_STATS,
    DELTA_HOST_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SCHEMA,
    DIRECTION_PREFIXES,
    DISTRIBUTION_METRICS,
    FG_A_METRICS,
    FG_B_IP_METADATA_SCHEMA,
    FG_C_LEADING_FIELDS,
    PAIR_COUNTS_SCHEMA,
    PAIR_RARITY_HOST_SCHEMA,
    PAIR_RARITY_SEGMENT_SCHEMA,
    PAIR_RARITY_VALUE_COLUMNS,
    SUSPICION_PREFIXES,
    SUSPICION_SCALARS,
    TIME_FEATURES,
    curated_fg_c_columns,
    fg_a_schema,
    fg_b_host_schema,
    fg_b_segment_schema,
    fg_c_feature_name,
    horizon_suffix,
    machine_inventory_schema,
)
from ndr_assets.transforms.baselines import BaselineMetricError, resolve_baseline_metrics
from ndr_assets.transforms.fg_c import FgCColumnLists, resolve_fg_c_lists
from ndr_assets.transforms.windows import WINDOW_LABELS
from ndr_resources.errors import SpecError
from ndr_resources.specs import FgBBuilderSpec, FgCBuilderSpec, MachineInventoryUnloadSpec

# ---------------------------------------------------------------- groups


@dataclass(frozen=True)
class GroupInfo:
    """A dataset of the catalog: who writes it, where it lives, whether the model reads it."""

    name: str
    title: str
    creator_script: str
    data_subpath: str  # under s3://<bucket>/projects/<project>/versions/<v>/data/
    model_input: bool
    summary: str
    partitioning: str
    # Names in the creator module's FORMULAS that define the whole group (shown once in Markdown).
    context: tuple[str, ...] = ()


GROUPS: dict[str, GroupInfo] = {
    g.name: g
    for g in (
        GroupInfo(
            "delta_host_slices", "Delta: host slices", "ndr_assets.transforms.delta", "features/delta/host_slices/",
            False, "Per host, role (outbound/inbound) and 15-minute slice: the 31 base metrics of FG-A.",
            "dt=YYYY-MM-DD/window=HHMM (slice start, UTC)",
        ),
        GroupInfo(
            "delta_peer_slices", "Delta: peer slices", "ndr_assets.transforms.delta", "features/delta/peer_slices/",
            False, "Per host, role, slice and peer endpoint: sessions and bytes, the peer detail FG-A needs "
            "for distinct counts, entropies, top-1 shares, high-risk segments and 30-day novelty.",
            "dt=YYYY-MM-DD/window=HHMM (slice start, UTC)",
        ),
        GroupInfo(
            "pair_counts", "Pair counts", "ndr_assets.transforms.pair_counts", "features/pair_counts/",
            False, "Sessions per (src_ip, dst_ip, dst_port) and 15-minute window: the input of pair rarity "
            "and of FG-C's rare-pair features.",
            "dt=YYYY-MM-DD/window=HHMM (window start, UTC)",
        ),
        GroupInfo(
            "fg_a", "FG-A (model input)", "ndr_assets.transforms.fg_a", "features/fg_a/",
            True, "Per active host and 15-minute window: 48 metrics x 5 window lengths x 2 directions, "
            "hour of day and 4 time-band flags.",
            "dt=YYYY-MM-DD/window=HHMM (window start, UTC)",
        ),
        GroupInfo(
            "fg_b_host", "FG-B: host baselines", hf.BASELINES_MODULE, "features/fg_b/host/",
            False, "Monthly robust statistics of each baseline metric per (host_ip, window_label), per horizon.",
            "feature_spec_version/baseline_horizon/baseline_month (the month the baseline serves)",
            ("horizon", "anomaly_capping"),
        ),
        GroupInfo(
            "fg_b_segment", "FG-B: segment baselines", hf.BASELINES_MODULE, "features/fg_b/segment/",
            False, "The host statistics over the pooled host-windows of each (segment_id, window_label): the "
            "baseline of cold-start and non-persistent hosts.",
            "feature_spec_version/baseline_horizon/baseline_month",
            ("horizon", "anomaly_capping"),
        ),
        GroupInfo(
            "fg_b_ip_metadata", "FG-B: IP metadata", hf.BASELINES_MODULE, "features/fg_b/ip_metadata/",
            False, "Per (host_ip, window_label): history support and the cold-start flags that route FG-C to "
            "host or segment baselines.",
            "feature_spec_version/baseline_horizon/baseline_month",
        ),
        GroupInfo(
            "pair_rarity_host", "Pair rarity: host", hf.PAIR_RARITY_MODULE, "features/fg_b/pair_rarity/host/",
            False, "Per (host_ip = src_ip, dst_ip, dst_port): how often and how recently the pair occurred in the horizon.",
            "feature_spec_version/baseline_horizon/baseline_month",
        ),
        GroupInfo(
            "pair_rarity_segment", "Pair rarity: segment", hf.PAIR_RARITY_MODULE,
            "features/fg_b/pair_rarity/segment/",
            False, "Per (segment of src_ip, dst_ip, dst_port): the host table's fields over the segment's hosts.",
            "feature_spec_version/baseline_horizon/baseline_month",
        ),
        GroupInfo(
            "fg_c", "FG-C (model input)", hf.FG_C_MODULE, "features/fg_c/",
            True, "Per FG-A row: each curated FG-A metric compared with the host's (or, for cold-start hosts, the "
            "segment's) baseline of the month, plus suspicion and rare-pair features.",
            "dt=YYYY-MM-DD/window=HHMM (window start, UTC)",
            ("baseline_month", "scale"),
        ),
        GroupInfo(
            "machine_inventory", "Machine inventory", "ndr_assets.inventory.unload", "reference/machine_inventory/",
            False, "Monthly snapshot of IP -> machine name from the warehouse; FG-B flags non-persistent (VDI) machines.",
            "snapshot_month=YYYY-MM",
        ),
    )
}
MODEL_INPUT_GROUPS = tuple(name for name, g in GROUPS.items() if g.model_input)
DATA_ROOT_TEMPLATE = "s3://<bucket>/projects/<project>/versions/{version}/data/"


def default_storage_path(group: str, feature_spec_version: str) -> str:
    """Template location of a group's dataset when no job spec names it."""
    return DATA_ROOT_TEMPLATE.format(version=feature_spec_version) + GROUPS[group].data_subpath


def group_context(group: str) -> list[tuple[str, str]]:
    """(name, formula) of the definitions that apply to every column of a group (e.g. FG-B's horizon)."""
    info = GROUPS[group]
    return [(name, _formula((info.creator_script,), name)) for name in info.context]


def offline_feature_group_name(group: str, feature_spec_version: str) -> str:
    return f"ndr_{group}_{feature_spec_version}"


# ---------------------------------------------------------------- per-column documentation


@dataclass(frozen=True)
class ColumnSpec:
    """Everything of a catalog entry that is not read from the schema field or the group."""

    role: str
    formula: str
    description: str
    upstream: tuple[str, ...]
    consumers: tuple[str, ...]
    default: str | None = None
    family: str | None = None  # name pattern with METRIC_PLACEHOLDER; None = the column name


def _spec_from(doc: ColumnDoc, role: str, consumers: tuple[str, ...], default: str | None = None) -> ColumnSpec:
    return ColumnSpec(role, doc.formula, doc.description, doc.inputs, consumers, default)


def _delta_host_columns() -> dict[str, ColumnSpec]:
    consumers = ("fg_a",)
    columns = {name: _spec_from(doc, KEY, consumers) for name, doc in DELTA_KEY_DOCS.items()}
    columns |= {name: _spec_from(BASE_METRIC_DOCS[name], FEATURE, consumers) for name in BASE_METRICS}
    columns |= {name: _spec_from(doc, AUXILIARY, ()) for name, doc in DELTA_EXTRA_DOCS.items()}
    return columns


def _delta_peer_columns() -> dict[str, ColumnSpec]:
    consumers = ("fg_a",)
    columns = {name: _spec_from(doc, KEY, consumers) for name, doc in DELTA_KEY_DOCS.items()}
    for name, doc in PEER_SLICE_DOCS.items():
        columns[name] = _spec_from(doc, FEATURE if name in ("sessions_cnt", "bytes_sum") else KEY, consumers)
    return columns


def _pair_counts_columns() -> dict[str, ColumnSpec]:
    consumers = ("pair_rarity_host", "pair_rarity_segment", "fg_c")
    return {
        name: _spec_from(doc, FEATURE if name == "sessions_cnt" else KEY, consumers)
        for name, doc in PAIR_COUNTS_DOCS.items()
    }


def _fg_a_metric_doc(metric: str, prefix: str, label: str) -> tuple[str, str, tuple[str, ...]]:
    """Formula, description and inputs of one windowed FG-A column."""
    window = window_phrase(label)
    direction = "inbound" if prefix else "outbound"
    how = None
    if metric in BASE_METRICS:
        doc = BASE_METRIC_DOCS[metric]
        how = WINDOW_COMBINATION[metric]
        inputs = ("delta_peer_slices",) if metric in DISTRIBUTION_METRICS else (f"delta_host_slices.{metric}",)
    elif metric in DERIVED_METRIC_DOCS:
        doc = DERIVED_METRIC_DOCS[metric]
        inputs = tuple(f"fg_a.{prefix}{m}_{label}" for m in doc.inputs)
    else:
        doc = NOVELTY_METRIC_DOCS.get(metric) or HIGH_RISK_SEGMENT_DOCS[metric]
        inputs = doc.inputs
        how = NOVELTY_HISTORY if " in H" in doc.formula else None
    return (
        windowed_formula(doc.formula, label, prefix, how),
        f"{doc.description.rstrip('.')} ({direction}, trailing {window}).",
        inputs,
    )


def _fg_a_columns(fg_b_metrics: set[str], fg_c_inputs: set[str]) -> dict[str, ColumnSpec]:
    key_consumers = (MODEL_CONSUMER, "fg_b_host", "fg_b_segment", "fg_b_ip_metadata", "fg_c")
    columns = {name: _spec_from(doc, KEY, key_consumers) for name, doc in FG_A_KEY_DOCS.items()}
    columns |= {name: _spec_from(TIME_FEATURE_DOCS[name], FEATURE, (MODEL_CONSUMER,), "0") for name in TIME_FEATURES}
    for prefix in DIRECTION_PREFIXES.values():
        for metric in FG_A_METRICS:
            for label in WINDOW_LABELS:
                name = f"{prefix}{metric}_{label}"
                formula, description, inputs = _fg_a_metric_doc(metric, prefix, label)
                consumers = (MODEL_CONSUMER,)
                consumers += ("fg_b_host", "fg_b_segment") if name in fg_b_metrics else ()
                consumers += ("fg_c",) if name in fg_c_inputs else ()
                # A direction or window without slices has 0 in every metric (never null).
                columns[name] = ColumnSpec(FEATURE, formula, description, inputs, consumers, "0")
    return columns


# ---------------------------------------------------------------- FG-B and pair rarity

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


def _formula(modules: tuple[str, ...], *candidates: str) -> str:
    text = hf.formula_for(modules, candidates)
    if not text:
        raise LookupError(f"no formula for {candidates[0]!r} in {modules} FORMULAS nor in the catalog's fallback")
    return text


def _stat_columns(metrics: list[str], pooled: str, extra_upstream: tuple[str, ...]) -> dict[str, ColumnSpec]:
    modules = (hf.BASELINES_MODULE,)
    columns = {}
    for metric in metrics:
        for stat in BASELINE_STATS:
            name = f"{metric}_{stat}"
            formula = f"{_formula(modules, name, f'{METRIC_PLACEHOLDER}_{stat}', stat)}; x = fg_a.{metric}"
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
        formula = f"fg_a.{name}" if name in ("host_ip", "window_label") else _formula((hf.BASELINES_MODULE,), name)
        upstream = ("fg_a", "fg_b_builder.segment_mapping") if name == "segment_id" else ("fg_a",)
        role = KEY if name in keys else AUXILIARY
        columns[name] = ColumnSpec(role, formula, _FG_B_TABLE_TEXT[name], upstream, ("fg_c",))
    return columns


_PERIOD = ("baseline_start_ts", "baseline_end_ts")


def _fg_b_host_columns(metrics: list[str]) -> dict[str, ColumnSpec]:
    keys = ("host_ip", "window_label")
    return (
        _fg_b_table_columns((*keys, "segment_id"), keys)
        | _stat_columns(metrics, "the host's windows", ())
        | _fg_b_table_columns(_PERIOD, keys)
    )


def _fg_b_segment_columns(metrics: list[str]) -> dict[str, ColumnSpec]:
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


def _fg_b_ip_metadata_columns() -> dict[str, ColumnSpec]:
    modules = (hf.BASELINES_MODULE,)
    columns = _fg_b_table_columns(("host_ip", "window_label", "segment_id"), ("host_ip", "window_label"))
    for name, (description, role, upstream) in _IP_METADATA_TEXT.items():
        formula = _formula(modules, f"ip_metadata.{name}", name)
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


def _pair_rarity_columns(schema: T.StructType) -> dict[str, ColumnSpec]:
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
        formula = _formula(modules, f"{'segment' if owner == 'segment_id' else 'host'}.{name}", name)
        inputs = (*upstream, "fg_b_builder.pair_rarity")
        columns[name] = ColumnSpec(FEATURE, formula, _PAIR_RARITY_TEXT[name], inputs, ("fg_c",))
    return columns


def _machine_inventory_columns(ip_column: str, name_column: str) -> dict[str, ColumnSpec]:
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


# ---------------------------------------------------------------- FG-C


def fg_c_lists(spec: FgCBuilderSpec, feature_spec_version: str = "v1") -> FgCColumnLists:
    """The metric, transform, horizon, suspicion and rare-pair lists FG-C builds from ``spec``."""
    try:
        return resolve_fg_c_lists(spec)
    except ValueError as exc:
        key = str(exc).split(":", 1)[0]
        raise SpecError("-", f"fg_c_builder#{feature_spec_version}", key, str(exc)) from None


_TRANSFORM_TEXT = {
    "diff": "Deviation from the baseline median",
    "ratio": "Ratio to the baseline median",
    "log_ratio": "Log ratio to the baseline median",
    "z_mad": "Robust z-score (median/MAD)",
    "abs_dev_over_mad": "Absolute deviation in MAD units",
    "z_mad_clipped": "Robust z-score clipped to [-z_max, z_max]",
    "z_mad_signed_pow3": "Cube of the clipped robust z-score (magnifies large deviations)",
}
_SUSPICION_TEXT = {
    "excess_over_p95": "Excess of {m} over its baseline p95",
    "excess_ratio_p95": "Excess of {m} over its baseline p95, relative to the p95",
    "iqr_dev": "Distance of {m} outside its baseline interquartile range, in IQR units",
}
_SCALAR_TEXT = {
    "time_band_violation_flag": "The host is active in a time band where it has no full history.",
    "anomaly_strength_core": "Overall deviation strength of the core suspicion metrics.",
    "beacon_suspicion_score": "Beaconing shape: one dominant peer and a session spike.",
    "exfiltration_suspicion_score": "Exfiltration shape: outbound byte asymmetry and a spike of bytes sent.",
    "rare_pair_flag": "The window has an outbound (dst_ip, dst_port) pair that is rare, new or unknown.",
    "rare_pair_session_share": "Share of the window's outbound sessions on rare pairs.",
}
_BASELINE_CHOICE = "baseline = the host's FG-B row, or the segment's when is_cold_start = 1"


def _fg_c_columns(lists: FgCColumnLists) -> dict[str, ColumnSpec]:
    modules = hf.FG_C_MODULES
    consumers = (MODEL_CONSUMER,)
    leading_text = {
        "host_ip": "The host (FG-A row key).",
        "window_label": "Time band of the window (FG-A row key).",
        "window_end_ts": "End of the 15-minute window (FG-A row key).",
        "segment_id": "Segment of the host (the fallback baseline).",
        "baseline_source": "Which baseline the row was compared with: host or segment.",
        "is_cold_start": "1 when the segment baseline was used (cold-start or non-persistent host, or no history).",
    }
    columns: dict[str, ColumnSpec] = {}
    for field in FG_C_LEADING_FIELDS:
        name = field.name
        role = KEY if name in ("host_ip", "window_label", "window_end_ts") else AUXILIARY
        formula = f"fg_a.{name}" if role == KEY else _formula(modules, name)
        upstream = ("fg_a",) if role == KEY else ("fg_b_ip_metadata", "fg_c_builder.segment_mapping")
        columns[name] = ColumnSpec(role, formula, leading_text[name], upstream, consumers)

    def baseline_of(column: str) -> tuple[str, ...]:
        return (f"fg_a.{column}", f"fg_b_host.{column}_*", f"fg_b_segment.{column}_*", "fg_b_ip_metadata.is_cold_start")

    for horizon in lists.horizons:
        suffix = horizon_suffix(lists.horizons, horizon)
        for column in lists.metric_columns:
            for transform in lists.transforms:
                name = fg_c_feature_name(transform, column, suffix)
                formula = f"{_formula(modules, transform)}; x = fg_a.{column}; {_BASELINE_CHOICE}, horizon {horizon}"
                description = f"{_TRANSFORM_TEXT[transform]} of {column} ({horizon} baseline)."
                family = fg_c_feature_name(transform, METRIC_PLACEHOLDER, suffix)
                columns[name] = ColumnSpec(FEATURE, formula, description, baseline_of(column), consumers, family=family)
    main = lists.horizons[0]
    for prefix in SUSPICION_PREFIXES:
        for metric in lists.suspicion_metrics:
            name = f"{prefix}_{metric}"
            formula = f"{_formula(modules, name, prefix)}; x = fg_a.{metric}; {_BASELINE_CHOICE}, horizon {main}"
            description = _SUSPICION_TEXT[prefix].format(m=metric) + f" ({main} baseline)."
            family = f"{prefix}_{METRIC_PLACEHOLDER}"
            columns[name] = ColumnSpec(FEATURE, formula, description, baseline_of(metric), consumers, family=family)
    pair_inputs = ("pair_counts", "pair_rarity_host", "pair_rarity_segment")
    for name, _ in SUSPICION_SCALARS:
        # Pair features are 0 when FG-C gets no pair counts (fg_c counter pair_counts_missing).
        if name.startswith("rare_pair"):
            columns[name] = ColumnSpec(FEATURE, _formula(modules, name), _SCALAR_TEXT[name], pair_inputs, consumers, "0")
        else:
            upstream = ("fg_a", "fg_b_host", "fg_b_segment", "fg_b_ip_metadata")
            columns[name] = ColumnSpec(FEATURE, _formula(modules, name), _SCALAR_TEXT[name], upstream, consumers)
    for metric in lists.rare_pair_metrics:
        name = f"rare_pair_weighted_z_{metric}"
        formula = f"{_formula(modules, name, 'rare_pair_weighted_z')}; m = fg_a.{metric}; horizon {main}"
        description = f"Robust z-score of {metric} weighted by the rarity of the window's pairs ({main} baseline)."
        upstream = (*baseline_of(metric), *pair_inputs)
        family = f"rare_pair_weighted_z_{METRIC_PLACEHOLDER}"
        columns[name] = ColumnSpec(FEATURE, formula, description, upstream, consumers, "0", family)
    return columns


# ---------------------------------------------------------------- assembly


def fg_b_metrics(spec: FgBBuilderSpec | None, feature_spec_version: str = "v1") -> list[str]:
    """FG-A columns FG-B baselines: ``baseline_metrics``, else the curated FG-C list."""
    if spec is None:
        return curated_fg_c_columns()
    try:
        return resolve_baseline_metrics(spec)[0]
    except BaselineMetricError as exc:
        raise SpecError("-", f"fg_b_builder#{feature_spec_version}", exc.key, exc.problem) from None


def _group_entries(
    group: str,
    schema: T.StructType,
    columns: dict[str, ColumnSpec],
    feature_spec_version: str,
    storage_paths: dict[str, str],
) -> list[FeatureEntry]:
    info = GROUPS[group]
    missing = [f.name for f in schema.fields if f.name not in columns]
    if missing:
        raise LookupError(f"catalog has no documentation for {group} column(s) {missing[:5]}")
    entries = []
    for number, field in enumerate(schema.fields, start=1):
        spec = columns[field.name]
        entries.append(
            FeatureEntry(
                feature_id=feature_id(group, field.name),
                feature_number=number,
                feature_name=field.name,
                feature_group=group,
                feature_formula=spec.formula,
                feature_description=spec.description,
                creator_script=info.creator_script,
                upstream_dependencies=tuple(spec.upstream),
                feature_spec_version=feature_spec_version,
                data_type=field.dataType.simpleString(),
                nullable=field.nullable,
                default_value=spec.default,
                downstream_consumers=tuple(spec.consumers),
                feature_group_name_offline=offline_feature_group_name(group, feature_spec_version),
                feature_group_name_online=None,
                s3_storage_path=storage_paths.get(group) or default_storage_path(group, feature_spec_version),
                column_role=spec.role,
                is_model_input=info.model_input and spec.role == FEATURE,
                feature_family=spec.family or field.name,
            )
        )
    return entries


def build_catalog(
    *,
    feature_spec_version: str = "v1",
    fg_b_spec: FgBBuilderSpec | None = None,
    fg_c_spec: FgCBuilderSpec | None = None,
    storage_paths: dict[str, str] | None = None,
    inventory_spec: MachineInventoryUnloadSpec | None = None,
) -> list[FeatureEntry]:
    """Every column of every catalog group, in group order then column order.

    ``fg_b_spec``/``fg_c_spec`` choose the FG-B and FG-C columns (None = the v1 defaults);
    ``storage_paths`` maps a group name to its dataset location (else a ``<bucket>`` template);
    ``inventory_spec`` names the inventory's output columns (default ``ip``, ``machine_name``).
    Raises SpecError naming the spec key when a metric list names something FG-A does not have.
    """
    # Defaults of the spec models without their required locations: one source for the defaults.
    fg_c = fg_c_lists(fg_c_spec or FgCBuilderSpec.model_construct(), feature_spec_version)
    b_metrics = fg_b_metrics(fg_b_spec, feature_spec_version)
    fg_c_inputs = {*fg_c.metric_columns, *fg_c.suspicion_metrics, *fg_c.rare_pair_metrics}
    if inventory_spec is not None:
        ip_column, name_column = inventory_spec.output.ip_output_column, inventory_spec.output.name_output_column
    else:
        ip_column, name_column = "ip", "machine_name"

    groups: list[tuple[str, T.StructType, Callable[[], dict[str, ColumnSpec]]]] = [
        ("delta_host_slices", DELTA_HOST_SLICE_SCHEMA, _delta_host_columns),
        ("delta_peer_slices", DELTA_PEER_SLICE_SCHEMA, _delta_peer_columns),
        ("pair_counts", PAIR_COUNTS_SCHEMA, _pair_counts_columns),
        ("fg_a", fg_a_schema(), lambda: _fg_a_columns(set(b_metrics), fg_c_inputs)),
        ("fg_b_host", fg_b_host_schema(b_metrics), lambda: _fg_b_host_columns(b_metrics)),
        ("fg_b_segment", fg_b_segment_schema(b_metrics), lambda: _fg_b_segment_columns(b_metrics)),
        ("fg_b_ip_metadata", FG_B_IP_METADATA_SCHEMA, _fg_b_ip_metadata_columns),
        ("pair_rarity_host", PAIR_RARITY_HOST_SCHEMA, lambda: _pair_rarity_columns(PAIR_RARITY_HOST_SCHEMA)),
        ("pair_rarity_segment", PAIR_RARITY_SEGMENT_SCHEMA, lambda: _pair_rarity_columns(PAIR_RARITY_SEGMENT_SCHEMA)),
        ("fg_c", fg_c.schema(), lambda: _fg_c_columns(fg_c)),
        (
            "machine_inventory",
            machine_inventory_schema(ip_column, name_column),
            lambda: _machine_inventory_columns(ip_column, name_column),
        ),
    ]
    paths = dict(storage_paths or {})
    unknown = sorted(set(paths) - set(GROUPS))
    if unknown:
        raise ValueError(f"storage_paths names unknown group(s) {unknown}; groups: {list(GROUPS)}")
    entries: list[FeatureEntry] = []
    for group, schema, columns in groups:
        entries += _group_entries(group, schema, columns(), feature_spec_version, paths)
    return entries

