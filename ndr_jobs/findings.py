"""What the demo's features show about the injected attacks: a first look before any model.

For every labelled scenario window of the synthetic ground truth, the scenario host's value of the
FG-A feature that should reveal it, and where that value ranks among all host-windows of the
tenant (percentile). A summary for people, computed once at the end of the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from pyspark.sql.window import Window

from ndr_assets.datasets import window_partitions
from ndr_assets.transforms.schemas import fg_a_schema
from ndr_assets.transforms.windows import SLICE_MINUTES
from ndr_jobs.evaluation import read_ground_truth
from ndr_resources.lake import Lake

# The FG-A feature each scenario should stand out on.
REVEALING_FEATURE = {
    "c2_beaconing": "peer_ip_top1_sessions_share_w_8h",
    "bulk_exfiltration": "bytes_src_sum_w_15m",
    "internal_port_scan": "peer_ip_nunique_w_15m",
    "rare_external_pairs": "new_pair_cnt_lookback30d_w_15m",
}
# The FG-C feature (host compared with its own or its segment's baseline) for each scenario.
REVEALING_FG_C_FEATURE = {
    "c2_beaconing": "beacon_suspicion_score",
    "bulk_exfiltration": "exfiltration_suspicion_score",
    "internal_port_scan": "z_mad_peer_ip_nunique_w_15m",
    "rare_external_pairs": "rare_pair_session_share",
}


@dataclass(frozen=True)
class Finding:
    scenario: str
    host_ip: str
    window_start: str
    feature: str
    value: float | None
    percentile: float | None  # share of the tenant's host-windows with a lower value


def scenario_findings(
    spark: SparkSession,
    lake: Lake,
    *,
    fg_a_uri: str,
    ground_truth_uri: str,
    window_starts: list,
    revealing: dict[str, str] = REVEALING_FEATURE,
    schema: StructType | None = None,
) -> list[Finding]:
    """One finding per ground-truth row (host, window, scenario) inside ``window_starts``.

    ``fg_a_uri``/``schema``/``revealing`` name the feature dataset (FG-A by default, FG-C with its
    contract); the value is None where the dataset has no row for the scenario's host-window.
    """
    truth = read_ground_truth(spark, lake, ground_truth_uri)
    features, _ = lake.read_partitions(spark, fg_a_uri, window_partitions(window_starts), schema or fg_a_schema())
    ends = [start + timedelta(minutes=SLICE_MINUTES) for start in window_starts]
    truth = truth.where(F.col("window_end_ts").isin(ends))
    ranked = features.select(
        "host_ip",
        "window_end_ts",
        *[
            F.percent_rank().over(Window.orderBy(feature)).alias(f"{feature}__pct")
            for feature in sorted(set(revealing.values()))
        ],
        *sorted(set(revealing.values())),
    )
    rows = truth.join(ranked, ["host_ip", "window_end_ts"], "left").orderBy("scenario", "window_start").take(500)
    findings = []
    for row in rows:
        feature = revealing.get(row["scenario"])
        if feature is None:
            continue
        findings.append(
            Finding(row["scenario"], row["host_ip"], row["window_start"][:16], feature, row[feature], row[f"{feature}__pct"])
        )
    return findings
