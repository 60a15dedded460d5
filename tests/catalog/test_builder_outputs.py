"""The catalog's contracts against what the delta, pair-count and FG-A builders actually write."""

from __future__ import annotations

import pytest

from ndr_assets.catalog import build_catalog, catalog_contract
from ndr_assets.transforms.delta import build_delta
from ndr_assets.transforms.fg_a import build_fg_a
from ndr_assets.transforms.pair_counts import pair_counts_frame
from ndr_assets.transforms.port_sets import PortSets
from ndr_assets.transforms.schemas import DELTA_PEER_SLICE_SCHEMA
from ndr_resources.specs import DeltaBuilderSpec, FgABuilderSpec, PairCountsFilters
from tests.transforms.traffic_factory import W1, session, traffic_frame

DELTA_SPEC = DeltaBuilderSpec.model_validate(
    {
        "project_name": "p",
        "job_name": "delta_builder",
        "feature_spec_version": "v1",
        "input": {"s3_prefix": "s3://bucket/raw/"},
        "output": {"s3_prefix": "s3://bucket/delta/"},
    }
)
FG_A_SPEC = FgABuilderSpec.model_validate(
    {"delta_input": {"s3_prefix": "s3://bucket/delta/"}, "fg_a_output": {"s3_prefix": "s3://bucket/fg_a/"}}
)
PORTS = PortSets.from_json({"high_risk": [445], "admin": [22], "fileshare": [445], "directory": [53], "db": [1433]})


def names_and_types(schema) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


@pytest.fixture(scope="module")
def written(spark):
    traffic = traffic_frame(spark, [session(), session(destination_ip="10.40.0.7", destination_port=1433)])
    delta = build_delta(traffic, DELTA_SPEC, PORTS)
    # The frame build_pair_counts returns, without its filter-counter job.
    pairs = pair_counts_frame(traffic, PairCountsFilters()).drop("window_start")
    lookback = spark.createDataFrame([], DELTA_PEER_SLICE_SCHEMA)
    fg_a = build_fg_a(delta.host_slices, delta.peer_slices, lookback, [W1], FG_A_SPEC)
    return {
        "delta_host_slices": delta.host_slices,
        "delta_peer_slices": delta.peer_slices,
        "pair_counts": pairs,
        "fg_a": fg_a,
    }


@pytest.mark.parametrize("group", ["delta_host_slices", "delta_peer_slices", "pair_counts", "fg_a"])
def test_builder_output_has_the_catalog_columns_and_types(written, group):
    # Names, order and types; Spark widens nullability freely, the asset checks test nulls as data.
    assert names_and_types(written[group].schema) == names_and_types(catalog_contract(build_catalog(), group))
