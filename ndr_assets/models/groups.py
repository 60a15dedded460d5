"""Feature groups of the model: one Isolation Forest per FG-A metric.

A group holds every model input describing one behaviour of the host: the FG-A metric in each of its
windows (``sessions_cnt_w_15m`` .. ``_w_24h``) and every FG-C comparison of it with the baselines
(``z_mad_``, ``log_ratio_``, ``ratio_``, ``excess_over_p95_`` .. of any window and horizon). So
``metric_group("log_ratio_bytes_src_sum_w_1h_bl30d") == "bytes_src_sum"``. A column that is not
derived from an FG-A metric (a suspicion score, a time feature) is its own group.

One behaviour spans three cadence metrics: the host's most regular outbound pair, how often it was
contacted and in how many of the 24 hours (``beacon_cadence_score``, ``beacon_pair_conn_cnt``,
``beacon_hourly_coverage``) form the group ``beacon_persistence``, so the forest sees the joint
excess of a beacon (regular AND busy AND persistent) that each alone shares with ordinary hosts (a
5-hour timer is regular, a backup is busy). Measured in docs/design.md ("Model: one forest per
metric"): the beacons gain, globex's exfiltration loses some rank.

Why: an attack is usually an excess in a few metrics (bytes out, distinct ports, new peers, cadence);
one forest over ~950 inputs picks split features at random and dilutes it among hundreds of ordinary
ones, while a forest per metric isolates it and the record's score is its most anomalous group
(``ndr_assets.models.serving``). On the demo's held-out day this moved the attack hosts' best
day-rank from 70-300 to about 1-30 (docs/design.md, "Model: one forest per metric").
"""

from __future__ import annotations

import re

from ndr_assets.transforms.fg_c_sql import TRANSFORM_FORMULAS
from ndr_assets.transforms.schemas import SUSPICION_PREFIXES
from ndr_assets.transforms.windows import WINDOW_LABELS

# Longest first: "z_mad_clipped_" before "z_mad_".
COMPARISON_PREFIXES = tuple(sorted((*TRANSFORM_FORMULAS, *SUSPICION_PREFIXES), key=len, reverse=True))
# Metric -> the behaviour group it shares with other metrics (see the module doc).
BEHAVIOUR_GROUPS = {
    "beacon_cadence_score": "beacon_persistence",
    "beacon_pair_conn_cnt": "beacon_persistence",
    "beacon_hourly_coverage": "beacon_persistence",
}
_WINDOW_SUFFIX = re.compile(r"_(?:" + "|".join(map(re.escape, WINDOW_LABELS)) + r")(?:_bl\w+)?$")


def metric_group(feature: str) -> str:
    """The FG-A metric a model input describes (without window and comparison), else the name itself."""
    name = feature
    for prefix in COMPARISON_PREFIXES:
        if name.startswith(prefix + "_"):
            name = name[len(prefix) + 1:]
            break
    stripped = _WINDOW_SUFFIX.sub("", name)
    return stripped if stripped != name else feature


def group_columns(features: list[str], by: str) -> list[tuple[str, list[int]]]:
    """``[(group name, column positions)]`` in first-appearance order; ``by`` is "metric" (one group per
    metric, or per behaviour for the metrics of :data:`BEHAVIOUR_GROUPS`) or "all"."""
    if by == "all":
        return [("all", list(range(len(features))))]
    groups: dict[str, list[int]] = {}
    for position, feature in enumerate(features):
        metric = metric_group(feature)
        groups.setdefault(BEHAVIOUR_GROUPS.get(metric, metric), []).append(position)
    return list(groups.items())
