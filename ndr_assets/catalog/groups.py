"""The catalog's groups: one per dataset, with who writes it, where it lives and whether the model reads it."""

from __future__ import annotations

from dataclasses import dataclass

from ndr_assets.catalog import helper_formulas as hf


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
            "for distinct counts, entropies, top-1 shares, high-risk segments and 30-day novelty, and the "
            "outbound session timeline of its beacon cadence.",
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
            "hour of day, 4 time-band flags and 8 beacon cadence features (trailing 24 h).",
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


def offline_feature_group_name(group: str, feature_spec_version: str) -> str:
    return f"ndr_{group}_{feature_spec_version}"
