"""Asset checks of the FG-B tables, computed in the FG-B body over every (month, horizon) it published.

Blocking where FG-C must not consume bad baselines: the published schemas must equal their
contracts, the segment table must carry exactly the host table's statistics (cold-start hosts read
it instead), and a baseline must have support. The cold-start share only warns: a tenant in its
first months is legitimately mostly cold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
from pyspark.sql import types as T

from ndr_assets.baselines.datasets import fg_b_table_uri
from ndr_assets.checks import SCHEMA_MATCHES_CONTRACT, schema_differences
from ndr_assets.contracts import dataset_contract
from ndr_assets.naming import FG_B_TABLES
from ndr_assets.transforms.baselines import FgBFrames
from ndr_resources.lake import Lake, PartitionSpec, join_uri
from ndr_resources.specs import FgBBuilderSpec

SEGMENT_HOST_PARITY = "segment_host_schema_parity"
BASELINE_SUPPORT = "baseline_support"
COLD_START_SHARE = "cold_start_share"


def fg_b_check_specs(keys: dict[str, dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(SCHEMA_MATCHES_CONTRACT, asset=key, blocking=True,
                          description="Every published (month, horizon) partition has the catalog's schema.")
        for key in keys.values()
    ]
    specs += [
        dg.AssetCheckSpec(SEGMENT_HOST_PARITY, asset=keys["segment"], blocking=True,
                          description="Segment baselines carry exactly the host baselines' statistic columns "
                                      "(names and types), so FG-C can serve cold-start hosts from them."),
        dg.AssetCheckSpec(BASELINE_SUPPORT, asset=keys["host"], blocking=True,
                          description="Every (month, horizon) has host baselines, and some host has a full history."),
        dg.AssetCheckSpec(COLD_START_SHARE, asset=keys["ip_metadata"],
                          description="Share of cold-start (host, time band) rows is under the spec's max_cold_start_share."),
    ]
    return specs


def summarize_horizon(frames: FgBFrames, *, spec: FgBBuilderSpec, month: str) -> dict:
    """Counts of one (month, horizon) for metadata and checks (FG-B's own counters plus where they apply)."""
    counters = frames.counters()
    counters["full_history_host_labels"] = counters["host_labels"] - counters["short_history_host_labels"]
    return {**counters, "month": month, "horizon": frames.horizon, "days": frames.days, "gap_days": frames.gap_days,
            "support_min": spec.support_min_of(frames.horizon)}


# Keys and bookkeeping columns of the host and segment tables; everything else is a statistic.
_NON_STAT_COLUMNS = {"host_ip", "segment_id", "window_label", "host_count", "baseline_start_ts", "baseline_end_ts"}


def _stat_fields(schema: T.StructType) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields if f.name not in _NON_STAT_COLUMNS]


@dataclass
class FgBCheckInputs:
    """What the checks need, gathered per published (month, horizon) partition."""

    schema_problems: dict[str, list[str]] = field(default_factory=dict)
    parity_problems: list[str] = field(default_factory=list)
    support: list[dict] = field(default_factory=list)
    cold_start: list[dict] = field(default_factory=list)
    max_cold_start_share: float = 0.5

    def add(self, *, lake: Lake, session, spec: FgBBuilderSpec, partition: PartitionSpec, summary: dict,
            rows: dict[str, int]) -> None:
        contracts = {name: dataset_contract(table.catalog_group, fg_b_spec=spec) for name, table in FG_B_TABLES.items()}
        published = {}
        for table, contract in contracts.items():
            schema = None
            if rows.get(table):
                uri = join_uri(fg_b_table_uri(spec.fg_b_output.s3_prefix, table), partition.path())
                schema = session.read.parquet(lake.spark_uri(uri)).schema
            published[table] = schema
            for problem in schema_differences(schema, contract):
                self.schema_problems.setdefault(table, []).append(f"{partition.label()}: {problem}")
        if published["host"] is not None and published["segment"] is not None:
            host_stats, segment_stats = _stat_fields(published["host"]), _stat_fields(published["segment"])
            if host_stats != segment_stats:
                only = sorted(set(host_stats) ^ set(segment_stats))[:10]
                self.parity_problems.append(f"{partition.label()}: {only or 'column order differs'}")
        self.support.append({**summary, "host_rows": rows.get("host", 0), "segment_rows": rows.get("segment", 0)})
        self.cold_start.append(summary)
        self.max_cold_start_share = spec.max_cold_start_share

    def results(self, keys: dict[str, dg.AssetKey]) -> list[dg.AssetCheckResult]:
        table_asset = {"host": "host", "segment": "segment", "ip_metadata": "ip_metadata",
                       "pair_rarity_host": "pair_rarity", "pair_rarity_segment": "pair_rarity"}
        problems_by_asset: dict[str, list[str]] = {name: [] for name in keys}
        for table, problems in self.schema_problems.items():
            problems_by_asset[table_asset[table]] += [f"{table} {p}" for p in problems]
        out = [
            dg.AssetCheckResult(
                asset_key=key, check_name=SCHEMA_MATCHES_CONTRACT, passed=not problems_by_asset[name],
                metadata={"differences": "; ".join(problems_by_asset[name][:10]) or "none"},
            )
            for name, key in keys.items()
        ]
        out.append(dg.AssetCheckResult(
            asset_key=keys["segment"], check_name=SEGMENT_HOST_PARITY, passed=not self.parity_problems,
            metadata={"partitions_checked": len(self.support), "differences": "; ".join(self.parity_problems) or "none"},
        ))
        unsupported = [
            f"{s['month']}/{s['horizon']}" for s in self.support
            if s["host_rows"] == 0 or s["segment_rows"] == 0 or s["full_history_host_labels"] == 0
        ]
        out.append(dg.AssetCheckResult(
            asset_key=keys["host"], check_name=BASELINE_SUPPORT, passed=not unsupported,
            metadata={
                "without_support": ", ".join(unsupported) or "none",
                "full_history_host_labels": dg.MetadataValue.json(
                    {f"{s['month']}/{s['horizon']}": s["full_history_host_labels"] for s in self.support}
                ),
            },
        ))
        shares = {
            f"{s['month']}/{s['horizon']}": round(s["cold_start_host_labels"] / s["host_labels"], 4) if s["host_labels"] else 1.0
            for s in self.cold_start
        }
        out.append(dg.AssetCheckResult(
            asset_key=keys["ip_metadata"], check_name=COLD_START_SHARE,
            passed=all(v <= self.max_cold_start_share for v in shares.values()),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"cold_start_share": dg.MetadataValue.json(shares), "threshold": self.max_cold_start_share},
        ))
        return out
