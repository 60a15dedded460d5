"""Builds the feature catalog from the schema contracts and the formula registries.

Column names, types, nullability and order come from ``ndr_assets.transforms.schemas`` (the same
contracts every writer enforces), so the catalog cannot drift from what the builders write. Which
FG-B and FG-C columns exist depends on the job specs (baseline metrics, FG-C metrics, transforms,
horizons, suspicion and rare-pair metrics); without a spec the v1 defaults apply.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import types as T

from ndr_assets.catalog import helper_formulas as hf
from ndr_assets.catalog.baseline_columns import (
    fg_b_host_columns,
    fg_b_ip_metadata_columns,
    fg_b_segment_columns,
    machine_inventory_columns,
    pair_rarity_columns,
)
from ndr_assets.catalog.columns import ColumnSpec, module_formula, spec_from
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
    BEACON_CADENCE_DOCS,
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
    window_phrase,
    windowed_formula,
)
from ndr_assets.catalog.groups import GROUPS, default_storage_path, offline_feature_group_name
from ndr_assets.transforms.baselines import BaselineMetricError, resolve_baseline_metrics
from ndr_assets.transforms.fg_c import FgCColumnLists, resolve_fg_c_lists
from ndr_assets.transforms.schemas import (
    BASE_METRICS,
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
    SUSPICION_PREFIXES,
    SUSPICION_SCALARS,
    TIME_FEATURES,
    curated_fg_c_columns,
    fg_a_schema,
    fg_b_host_schema,
    fg_b_segment_schema,
    fg_c_feature_name,
    horizon_suffix,
    is_inbound_column,
    machine_inventory_schema,
)
from ndr_assets.transforms.windows import WINDOW_LABELS
from ndr_resources.errors import SpecError
from ndr_resources.parameter_store.base import versioned_job_key
from ndr_resources.specs import FgBBuilderSpec, FgCBuilderSpec, MachineInventoryUnloadSpec


def group_context(group: str) -> list[tuple[str, str]]:
    """(name, formula) of the definitions that apply to every column of a group (e.g. FG-B's horizon)."""
    info = GROUPS[group]
    return [(name, module_formula((info.creator_script,), name)) for name in info.context]


# ---------------------------------------------------------------- per-column documentation


def _delta_host_columns() -> dict[str, ColumnSpec]:
    consumers = ("fg_a",)
    columns = {name: spec_from(doc, KEY, consumers) for name, doc in DELTA_KEY_DOCS.items()}
    columns |= {name: spec_from(BASE_METRIC_DOCS[name], FEATURE, consumers) for name in BASE_METRICS}
    columns |= {name: spec_from(doc, AUXILIARY, ()) for name, doc in DELTA_EXTRA_DOCS.items()}
    return columns


def _delta_peer_columns() -> dict[str, ColumnSpec]:
    consumers = ("fg_a",)
    columns = {name: spec_from(doc, KEY, consumers) for name, doc in DELTA_KEY_DOCS.items()}
    for name, doc in PEER_SLICE_DOCS.items():
        role = FEATURE if name in ("sessions_cnt", "bytes_sum", "session_timeline") else KEY
        columns[name] = spec_from(doc, role, consumers)
    return columns


def _pair_counts_columns() -> dict[str, ColumnSpec]:
    consumers = ("pair_rarity_host", "pair_rarity_segment", "fg_c")
    return {
        name: spec_from(doc, FEATURE if name == "sessions_cnt" else KEY, consumers)
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
    columns = {name: spec_from(doc, KEY, key_consumers) for name, doc in FG_A_KEY_DOCS.items()}
    columns |= {name: spec_from(TIME_FEATURE_DOCS[name], FEATURE, (MODEL_CONSUMER,), "0") for name in TIME_FEATURES}
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
    # Beacon cadence: model inputs only (FG-B/FG-C compare the 480 metric columns).
    columns |= {name: spec_from(doc, FEATURE, (MODEL_CONSUMER,), "0") for name, doc in BEACON_CADENCE_DOCS.items()}
    return columns


# ---------------------------------------------------------------- FG-C


def fg_c_lists(spec: FgCBuilderSpec, feature_spec_version: str = "v1") -> FgCColumnLists:
    """The metric, transform, horizon, suspicion and rare-pair lists FG-C builds from ``spec``."""
    try:
        return resolve_fg_c_lists(spec)
    except ValueError as exc:
        key = str(exc).split(":", 1)[0]
        raise SpecError("-", versioned_job_key("fg_c_builder", feature_spec_version), key, str(exc)) from None


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
        formula = f"fg_a.{name}" if role == KEY else module_formula(modules, name)
        upstream = ("fg_a",) if role == KEY else ("fg_b_ip_metadata", "fg_c_builder.segment_mapping")
        columns[name] = ColumnSpec(role, formula, leading_text[name], upstream, consumers)

    def baseline_of(column: str) -> tuple[str, ...]:
        return (f"fg_a.{column}", f"fg_b_host.{column}_*", f"fg_b_segment.{column}_*", "fg_b_ip_metadata.is_cold_start")

    for horizon in lists.horizons:
        suffix = horizon_suffix(lists.horizons, horizon)
        for column in lists.metric_columns:
            for transform in lists.transforms:
                name = fg_c_feature_name(transform, column, suffix)
                formula = f"{module_formula(modules, transform)}; x = fg_a.{column}; {_BASELINE_CHOICE}, horizon {horizon}"
                description = f"{_TRANSFORM_TEXT[transform]} of {column} ({horizon} baseline)."
                family = fg_c_feature_name(transform, METRIC_PLACEHOLDER, suffix)
                columns[name] = ColumnSpec(FEATURE, formula, description, baseline_of(column), consumers, family=family)
    main = lists.horizons[0]
    for prefix in SUSPICION_PREFIXES:
        for metric in lists.suspicion_metrics:
            name = f"{prefix}_{metric}"
            formula = f"{module_formula(modules, name, prefix)}; x = fg_a.{metric}; {_BASELINE_CHOICE}, horizon {main}"
            description = _SUSPICION_TEXT[prefix].format(m=metric) + f" ({main} baseline)."
            family = f"{prefix}_{METRIC_PLACEHOLDER}"
            columns[name] = ColumnSpec(FEATURE, formula, description, baseline_of(metric), consumers, family=family)
    pair_inputs = ("pair_counts", "pair_rarity_host", "pair_rarity_segment")
    for name, _ in SUSPICION_SCALARS:
        # Pair features are 0 when FG-C gets no pair counts (fg_c counter pair_counts_missing).
        if name.startswith("rare_pair"):
            columns[name] = ColumnSpec(FEATURE, module_formula(modules, name), _SCALAR_TEXT[name], pair_inputs, consumers, "0")
        else:
            upstream = ("fg_a", "fg_b_host", "fg_b_segment", "fg_b_ip_metadata")
            columns[name] = ColumnSpec(FEATURE, module_formula(modules, name), _SCALAR_TEXT[name], upstream, consumers)
    for metric in lists.rare_pair_metrics:
        name = f"rare_pair_weighted_z_{metric}"
        formula = f"{module_formula(modules, name, 'rare_pair_weighted_z')}; m = fg_a.{metric}; horizon {main}"
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
        raise SpecError("-", versioned_job_key("fg_b_builder", feature_spec_version), exc.key, exc.problem) from None


def _describes_inbound(group: str, name: str, spec: ColumnSpec) -> bool:
    """An FG-A inbound column, or an FG-C column computed from one. The model scores a host as the
    source of its sessions: inbound values are what other hosts did to it, so the targets of one scan
    or a busy server would outrank the attackers (docs/design.md, "Model inputs")."""
    if group == "fg_a":
        return is_inbound_column(name)
    fg_a_inputs = [u.removeprefix("fg_a.") for u in spec.upstream if u.startswith("fg_a.")]
    return group == "fg_c" and bool(fg_a_inputs) and all(is_inbound_column(u) for u in fg_a_inputs)


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
                is_model_input=info.model_input and spec.role == FEATURE and not _describes_inbound(group, field.name, spec),
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
        ("fg_b_host", fg_b_host_schema(b_metrics), lambda: fg_b_host_columns(b_metrics)),
        ("fg_b_segment", fg_b_segment_schema(b_metrics), lambda: fg_b_segment_columns(b_metrics)),
        ("fg_b_ip_metadata", FG_B_IP_METADATA_SCHEMA, fg_b_ip_metadata_columns),
        ("pair_rarity_host", PAIR_RARITY_HOST_SCHEMA, lambda: pair_rarity_columns(PAIR_RARITY_HOST_SCHEMA)),
        ("pair_rarity_segment", PAIR_RARITY_SEGMENT_SCHEMA, lambda: pair_rarity_columns(PAIR_RARITY_SEGMENT_SCHEMA)),
        ("fg_c", fg_c.schema(), lambda: _fg_c_columns(fg_c)),
        (
            "machine_inventory",
            machine_inventory_schema(ip_column, name_column),
            lambda: machine_inventory_columns(ip_column, name_column),
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

