"""The feature catalog against hand-derived counts and the schema contracts the builders declare."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ndr_assets.baselines.datasets import fg_b_table_uri
from ndr_assets.catalog import (
    GROUPS,
    MODEL_CONSUMER,
    REGENERATE_COMMAND,
    build_catalog,
    catalog_contract,
    column_counts,
    counts_by_group,
    default_storage_path,
    group_entries,
    read_parquet,
    to_markdown,
    to_parquet,
)
from ndr_assets.datasets import delta_host_slices_uri, delta_peer_slices_uri
from ndr_assets.transforms import baselines, fg_c
from ndr_assets.transforms.fg_c import fg_c_output_schema
from ndr_assets.transforms.schemas import (
    DELTA_HOST_SLICE_SCHEMA,
    DELTA_PEER_SLICE_SCHEMA,
    FG_B_IP_METADATA_SCHEMA,
    PAIR_COUNTS_SCHEMA,
    PAIR_RARITY_HOST_SCHEMA,
    PAIR_RARITY_SEGMENT_SCHEMA,
    curated_fg_c_columns,
    fg_a_metric_columns,
    fg_a_schema,
    fg_b_host_schema,
    fg_b_segment_schema,
    machine_inventory_schema,
)
from ndr_resources.errors import SpecError
from ndr_resources.lake import LocalLake
from ndr_resources.specs import FG_C_TRANSFORMS, FgBBuilderSpec, FgCBuilderSpec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "feature_catalog.md"


def fg_c_spec(**overrides) -> FgCBuilderSpec:
    return FgCBuilderSpec.model_validate(
        {
            "fg_a_input": {"s3_prefix": "s3://lake/fg_a/"},
            "fg_b_input": {"s3_prefix": "s3://lake/fg_b/"},
            "fg_c_output": {"s3_prefix": "s3://lake/fg_c/"},
            **overrides,
        }
    )


def fg_b_spec(**overrides) -> FgBBuilderSpec:
    return FgBBuilderSpec.model_validate(
        {"fg_a_input": {"s3_prefix": "s3://lake/fg_a/"}, "fg_b_output": {"s3_prefix": "s3://lake/fg_b/"}, **overrides}
    )


@pytest.fixture(scope="module")
def catalog():
    return build_catalog()


def by_name(entries, group: str, name: str):
    (entry,) = [e for e in entries if e.feature_group == group and e.feature_name == name]
    return entry


# ---------------------------------------------------------------- counts (spec 003 item 15, v1)

# FG-C suspicion features: 3 per-metric prefixes x 10 default suspicion metrics + 6 scalars
# + 3 rare-pair-weighted z (one per default rare-pair metric).
SUSPICION_FEATURES = 3 * 10 + 6 + 3


def test_feature_counts_per_group_for_the_v1_defaults(catalog):
    assert counts_by_group(catalog) == {
        "delta_host_slices": 31,
        "delta_peer_slices": 3,  # sessions_cnt, bytes_sum, session_timeline per peer endpoint
        "pair_counts": 1,  # sessions_cnt; the other 4 of the 5 fields are keys
        "fg_a": 493,  # 48 metrics x 5 windows x 2 directions + hour_of_day + 4 flags + 8 beacon cadence
        "fg_b_host": 440 * 8,
        "fg_b_segment": 440 * 8,
        "fg_b_ip_metadata": 4,  # support_count and the 3 flags
        "pair_rarity_host": 7,
        "pair_rarity_segment": 7,
        "fg_c": 440 * 3 + SUSPICION_FEATURES,  # 1,320 + 39 = 1,359
        "machine_inventory": 1,
    }


def test_keys_and_columns_per_group(catalog):
    counts = column_counts(catalog)
    assert counts["pair_counts"] == {"features": 1, "keys": 4, "auxiliary": 0, "columns": 5}
    assert counts["fg_a"] == {"features": 493, "keys": 3, "auxiliary": 0, "columns": 496}
    assert counts["delta_host_slices"] == {"features": 31, "keys": 4, "auxiliary": 2, "columns": 37}
    assert counts["pair_rarity_host"] == {"features": 7, "keys": 3, "auxiliary": 0, "columns": 10}
    # Keys host_ip/window_label/window_end_ts; segment_id, baseline_source, is_cold_start describe the route.
    assert counts["fg_c"] == {"features": 1359, "keys": 3, "auxiliary": 3, "columns": 1365}
    assert [e.feature_name for e in group_entries(catalog, "fg_a") if e.column_role == "key"] == [
        "host_ip", "window_label", "window_end_ts",
    ]


def test_fg_c_metrics_augment_the_curated_list(catalog):
    # tcp_cnt is not curated (transport counts are dropped); sessions_cnt_w_15m already is.
    spec = fg_c_spec(metrics=["tcp_cnt_w_15m", "in_tcp_cnt_w_1h", "sessions_cnt_w_15m"])
    augmented = build_catalog(fg_c_spec=spec)
    assert counts_by_group(augmented)["fg_c"] == counts_by_group(catalog)["fg_c"] + 2 * 3
    names = [e.feature_name for e in group_entries(augmented, "fg_c")]
    assert names.index("log_ratio_in_has_high_risk_segment_interaction_w_24h") + 1 == names.index("z_mad_tcp_cnt_w_15m")


def test_every_transform_gives_seven_columns_per_metric():
    full = build_catalog(fg_c_spec=fg_c_spec(transforms=list(FG_C_TRANSFORMS)))
    assert counts_by_group(full)["fg_c"] == 440 * 7 + SUSPICION_FEATURES
    # Spec 003's "full expansion": all 480 FG-A metric columns x 7 transforms = 3,360.
    everything = build_catalog(fg_c_spec=fg_c_spec(transforms=list(FG_C_TRANSFORMS), metrics=fg_a_metric_columns()))
    transform_columns = [e for e in group_entries(everything, "fg_c") if "<metric>" in e.feature_family
                         and not e.feature_family.startswith(("excess", "iqr_dev", "rare_pair"))]
    assert len(transform_columns) == 3360


def test_a_second_horizon_adds_suffixed_transform_columns():
    two = build_catalog(fg_c_spec=fg_c_spec(horizons=["30d", "7d"]))
    assert counts_by_group(two)["fg_c"] == 2 * 440 * 3 + SUSPICION_FEATURES
    assert by_name(two, "fg_c", "z_mad_sessions_cnt_w_15m_bl7d").feature_family == "z_mad_<metric>_bl7d"


def test_fg_b_baseline_metrics_choose_the_stat_columns():
    spec = fg_b_spec(baseline_metrics=["sessions_cnt_w_15m", "tcp_cnt_w_1h"])
    counts = counts_by_group(build_catalog(fg_b_spec=spec))
    assert counts["fg_b_host"] == counts["fg_b_segment"] == 2 * 8


def test_unknown_metrics_name_the_spec_key():
    with pytest.raises(SpecError) as err:
        build_catalog(fg_c_spec=fg_c_spec(metrics=["nope_w_15m"]))
    assert err.value.key == "metrics" and "nope_w_15m" in str(err.value) and "fg_c_builder#v1" in str(err.value)
    with pytest.raises(SpecError) as err:
        build_catalog(fg_b_spec=fg_b_spec(baseline_metrics=["sessions_cnt"]), feature_spec_version="v2")
    assert err.value.key == "baseline_metrics" and "fg_b_builder#v2" in str(err.value)


# ---------------------------------------------------------------- contracts = the builders' schemas


def test_catalog_contracts_equal_the_declared_schemas(catalog):
    declared = {
        "delta_host_slices": DELTA_HOST_SLICE_SCHEMA,
        "delta_peer_slices": DELTA_PEER_SLICE_SCHEMA,
        "pair_counts": PAIR_COUNTS_SCHEMA,
        "fg_a": fg_a_schema(),
        "fg_b_host": fg_b_host_schema(curated_fg_c_columns()),
        "fg_b_segment": fg_b_segment_schema(curated_fg_c_columns()),
        "fg_b_ip_metadata": FG_B_IP_METADATA_SCHEMA,
        "pair_rarity_host": PAIR_RARITY_HOST_SCHEMA,
        "pair_rarity_segment": PAIR_RARITY_SEGMENT_SCHEMA,
        "fg_c": fg_c_output_schema(fg_c_spec()),
        "machine_inventory": machine_inventory_schema(),
    }
    assert list(declared) == list(GROUPS)
    for group, schema in declared.items():
        assert catalog_contract(catalog, group) == schema, group


def test_fg_c_contract_follows_the_spec():
    spec = fg_c_spec(metrics=["tcp_cnt_w_15m"], transforms=["diff", "z_mad_clipped"], horizons=["7d", "30d"],
                     suspicion_metrics=["deny_ratio_w_15m"], rare_pair_metrics=[])
    assert catalog_contract(build_catalog(fg_c_spec=spec), "fg_c") == fg_c_output_schema(spec)


# ---------------------------------------------------------------- entry fields


def test_every_entry_is_complete_and_numbered(catalog):
    assert all(e.feature_formula.strip() and e.feature_description.strip() for e in catalog)
    assert len({e.feature_id for e in catalog}) == len(catalog)
    for group in GROUPS:
        entries = group_entries(catalog, group)
        assert [e.feature_number for e in entries] == list(range(1, len(entries) + 1))
        assert {e.creator_script for e in entries} == {GROUPS[group].creator_script}
    model_features = [e for e in catalog if e.is_model_input]
    assert {e.feature_group for e in model_features} == {"fg_a", "fg_c"}
    # Outbound only: FG-A 240 of its 480 metric columns + 5 time + 8 cadence; FG-C the 220 outbound of its
    # 440 metrics x 3 transforms + 39 suspicion/rare-pair features less the 6 built on inbound metrics.
    assert len(model_features) == (240 + 5 + 8) + (220 * 3 + 39 - 6)
    assert all(e.downstream_consumers[0] == MODEL_CONSUMER for e in model_features)
    assert all(e.feature_group_name_online is None and e.feature_spec_version == "v1" for e in catalog)


def test_inbound_columns_are_context_not_model_input(catalog):
    """The model scores a host as the source of its sessions; inbound columns stay in FG-A/FG-C."""
    for group, name in [("fg_a", "in_deny_ratio_w_1h"), ("fg_c", "z_mad_in_sessions_cnt_w_1h"),
                        ("fg_c", "iqr_dev_in_peer_ip_nunique_w_15m")]:
        assert by_name(catalog, group, name).is_model_input is False, name
    for group, name in [("fg_a", "deny_ratio_w_1h"), ("fg_a", "hour_of_day"), ("fg_a", "beacon_cadence_score_w_24h"),
                        ("fg_c", "z_mad_sessions_cnt_w_1h"), ("fg_c", "anomaly_strength_core"),
                        ("fg_c", "rare_pair_weighted_z_sessions_cnt_w_15m")]:
        assert by_name(catalog, group, name).is_model_input is True, name


def test_windowed_fg_a_columns_read_their_formula_from_the_metric(catalog):
    entry = by_name(catalog, "fg_a", "in_deny_ratio_w_1h")
    assert entry.feature_id == "fg_a:in_deny_ratio_w_1h"
    assert entry.feature_formula == (
        "deny_cnt / sessions_cnt (0 when sessions_cnt = 0) over the trailing 1 h ending at window_end_ts; "
        "in_ prefix = inbound direction (the host is the session destination)"
    )
    assert entry.upstream_dependencies == ("fg_a.in_deny_cnt_w_1h", "fg_a.in_sessions_cnt_w_1h")
    assert (entry.data_type, entry.nullable, entry.default_value) == ("double", False, "0")
    assert entry.downstream_consumers == (MODEL_CONSUMER, "fg_b_host", "fg_b_segment", "fg_c")

    additive = by_name(catalog, "fg_a", "bytes_src_sum_w_8h")
    assert additive.feature_formula == (
        "sum(coalesce(bytes_sent, 0)), bytes_sent = the host's side of the session over the trailing 8 h ending at "
        "window_end_ts; sum of the window's delta host slices; outbound direction (the host is the session source)"
    )
    assert additive.upstream_dependencies == ("delta_host_slices.bytes_src_sum",)
    # tcp_cnt is not an FG-C/FG-B input by default: only the model reads it.
    assert by_name(catalog, "fg_a", "tcp_cnt_w_15m").downstream_consumers == (MODEL_CONSUMER,)


def test_fg_b_and_fg_c_formulas_come_from_the_modules_that_compute_them(catalog):
    median = by_name(catalog, "fg_b_host", "in_peer_ip_entropy_w_24h_median")
    assert median.feature_formula == f"{baselines.FORMULAS['median']}; x = fg_a.in_peer_ip_entropy_w_24h"
    assert median.feature_family == "<metric>_median"
    support = by_name(catalog, "fg_b_ip_metadata", "support_count")
    assert support.feature_formula == baselines.FORMULAS["ip_metadata.support_count"]
    z = by_name(catalog, "fg_c", "z_mad_sessions_cnt_w_15m")
    assert z.feature_formula.startswith(fg_c.FORMULAS["z_mad"] + "; x = fg_a.sessions_cnt_w_15m")
    assert by_name(catalog, "fg_c", "beacon_suspicion_score").feature_formula == fg_c.FORMULAS["beacon_suspicion_score"]


def test_storage_paths_default_to_templates_that_match_the_dataset_layout(catalog):
    assert by_name(catalog, "fg_a", "host_ip").s3_storage_path == (
        "s3://<bucket>/projects/<project>/versions/v1/data/features/fg_a/"
    )
    root = "s3://<bucket>/projects/<project>/versions/v1/data/features/"
    assert default_storage_path("delta_host_slices", "v1") == delta_host_slices_uri(root + "delta/")
    assert default_storage_path("delta_peer_slices", "v1") == delta_peer_slices_uri(root + "delta/")
    for group, table in [("fg_b_host", "host"), ("fg_b_segment", "segment"), ("fg_b_ip_metadata", "ip_metadata"),
                         ("pair_rarity_host", "pair_rarity_host"), ("pair_rarity_segment", "pair_rarity_segment")]:
        assert default_storage_path(group, "v1") == fg_b_table_uri(root + "fg_b/", table)

    given = build_catalog(feature_spec_version="v2", storage_paths={"fg_c": "s3://b/fg_c/"})
    assert by_name(given, "fg_c", "rare_pair_flag").s3_storage_path == "s3://b/fg_c/"
    assert by_name(given, "fg_a", "hour_of_day").s3_storage_path.endswith("/versions/v2/data/features/fg_a/")
    with pytest.raises(ValueError, match="fg_z"):
        build_catalog(storage_paths={"fg_z": "s3://b/x/"})


# ---------------------------------------------------------------- Markdown and Parquet


def test_markdown_has_one_section_per_group_with_its_count(catalog):
    markdown = to_markdown(catalog)
    sections = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert sections == list(GROUPS)
    assert "**493 features** (3 keys, 0 auxiliary columns, 496 columns) - model input: the 253 outbound" in markdown
    assert "**1,359 features** (3 keys, 3 auxiliary columns, 1,365 columns) - model input: the 693 outbound" in markdown
    assert "| fg_a | 253 | 493 | 3 | 0 | 496 |" in markdown
    # Large groups: one row per family; the 440 metrics are listed once per set.
    assert "| 4 | &lt;metric>_median | M1: 440 columns | feature | double |" in markdown
    assert len(markdown) < 400_000


def test_full_markdown_lists_every_column(catalog):
    markdown = to_markdown(catalog, max_rows=None)
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == len(catalog)


def test_parquet_round_trip(tmp_path, catalog):
    path = tmp_path / "out" / "feature_catalog.parquet"
    to_parquet(catalog, path)
    table = pq.read_table(path)
    assert table.num_rows == len(catalog)
    for name in ("upstream_dependencies", "downstream_consumers"):
        column_type = table.schema.field(name).type
        assert pa.types.is_list(column_type) and column_type.value_type == pa.string()
    assert table.schema.names[:3] == ["feature_id", "feature_number", "feature_name"]
    assert read_parquet(path) == catalog


def test_parquet_to_an_s3_uri_goes_through_the_lake(tmp_path):
    entries = group_entries(build_catalog(), "pair_counts")
    lake = LocalLake(root=str(tmp_path))
    uri = to_parquet(entries, "s3://bucket/catalog/v1/feature_catalog.parquet", lake)
    assert (tmp_path / "bucket/catalog/v1/feature_catalog.parquet").is_file()
    assert read_parquet(uri, lake) == entries
    with pytest.raises(ValueError, match="needs a lake"):
        to_parquet(entries, "s3://bucket/x.parquet")


def test_docs_feature_catalog_is_up_to_date(catalog):
    expected = to_markdown(catalog)
    actual = DOCS.read_text() if DOCS.exists() else ""
    assert actual == expected, (
        f"docs/feature_catalog.md is stale; regenerate it with: {REGENERATE_COMMAND} "
        "(or .venv/bin/python -m ndr_jobs.catalog_cli write --out docs --no-parquet)"
    )
