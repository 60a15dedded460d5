"""The generator agrees with the seed templates that configure the readers and the enrichment."""

from __future__ import annotations

import json
from pathlib import Path

from ndr_jobs.synthetic.network import SEGMENT_CIDRS
from ndr_jobs.synthetic.records import RAW_TRAFFIC_FIELDS

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _delta_builder_spec() -> dict:
    return json.loads((SEEDS / "templates" / "delta_builder.json").read_text())


def _find(tree: object, key: str) -> object:
    """The first value stored under ``key`` anywhere in a JSON tree."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def test_segments_are_the_seed_segment_mapping():
    segments = _find(_delta_builder_spec(), "segment_mapping")["segments"]
    assert {s["segment_id"]: s["cidr"] for s in segments} == SEGMENT_CIDRS


def test_vdi_machines_carry_the_seed_non_persistent_prefix():
    assert "VDI-" in _find(_delta_builder_spec(), "vdi_hostname_prefixes")


def test_records_hold_every_raw_field_of_the_default_field_mapping():
    mapping = _find(_delta_builder_spec(), "field_mapping")
    assert set(mapping.values()) <= set(RAW_TRAFFIC_FIELDS)
