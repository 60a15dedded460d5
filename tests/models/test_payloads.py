"""Payload splitting and encoding: both limits held exactly, envelope included, nothing dropped."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from ndr_assets.models import serving
from ndr_assets.models.payloads import (
    PayloadTooLargeError,
    build_payloads,
    encode_records,
    max_payload_bytes,
    split_payloads,
    wire_format,
)


def test_byte_limit_is_held_exactly_at_the_boundary():
    # Three 10-byte records, 5 bytes of envelope, 1 byte between records: two records weigh 5+10+1+10 = 26.
    assert split_payloads([10, 10, 10], 100, 26, overhead_bytes=5, separator_bytes=1) == [(0, 2), (2, 3)]
    assert split_payloads([10, 10, 10], 100, 25, overhead_bytes=5, separator_bytes=1) == [(0, 1), (1, 2), (2, 3)]
    assert split_payloads([10, 10, 10], 100, 37, overhead_bytes=5, separator_bytes=1) == [(0, 3)]
    assert split_payloads([10, 10, 10], 100, 36, overhead_bytes=5, separator_bytes=1) == [(0, 2), (2, 3)]


def test_record_limit_is_held_exactly():
    assert split_payloads([1] * 7, 3, 10**6) == [(0, 3), (3, 6), (6, 7)]
    assert split_payloads([1] * 6, 3, 10**6) == [(0, 3), (3, 6)]
    assert split_payloads([1] * 6, 1, 10**6) == [(i, i + 1) for i in range(6)]
    assert split_payloads([], 3, 10) == []


def test_records_themselves_are_measured_in_utf8_bytes():
    # "é" is 2 bytes: 10 + 5 + 5; counted in characters the first two would fit 14 bytes together.
    assert split_payloads(["é" * 5, b"12345", "abcde"], 10, 14) == [(0, 1), (1, 3)]


def test_a_record_too_big_alone_is_named_not_dropped():
    # 5 bytes of envelope + 21 = 26 fits a 26-byte limit exactly; 5 + 22 does not.
    assert split_payloads([21], 10, 26, overhead_bytes=5) == [(0, 1)]
    with pytest.raises(PayloadTooLargeError, match=r"record 'host-b' needs a 27-byte payload on its own, over the limit of 26"):
        split_payloads([3, 22, 3], 10, 26, overhead_bytes=5, record_ids=["host-a", "host-b", "host-c"])
    assert split_payloads([3, 3, 22, 3], 10, 26, overhead_bytes=5, separator_bytes=1, oversized="alone") == [
        (0, 2), (2, 3), (3, 4)]


def test_max_payload_bytes_counts_decimal_megabytes():
    assert max_payload_bytes(5) == 5_000_000 and max_payload_bytes(0.5) == 500_000


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.uniform(0, 1000, size=(n, 3)), columns=["a", "b", "c"])
    if n > 3:
        frame.loc[2, "b"] = np.nan
        frame.loc[3, "c"] = np.inf
    frame.insert(0, "rid", [f"10.0.0.{i}|w" for i in range(n)])
    return frame


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_bodies_fill_to_the_limit_and_decode_to_the_same_records(content_type):
    frame = _frame(10)
    encoded = encode_records(frame, record_id_col="rid", feature_columns=["a", "b", "c"], content_type=content_type)
    wire = wire_format(content_type, ["a", "b", "c"])
    three = len(wire.body(encoded, 0, 3))
    assert three == wire.overhead_bytes + sum(map(len, encoded[:3])) + 2 * len(wire.separator)

    payloads = build_payloads(frame, record_id_col="rid", feature_columns=["a", "b", "c"], content_type=content_type,
                              max_records=4, max_bytes=three)
    assert len(payloads[0].body) == three and payloads[0].records == 3  # exactly at the byte limit
    assert all(len(p.body) <= three and p.records <= 4 for p in payloads)
    assert [(p.start, p.end) for p in payloads][-1][1] == 10
    assert all(a.end == b.start for a, b in itertools.pairwise(payloads))

    decoded = pd.concat([serving.input_fn(p.body, content_type) for p in payloads], ignore_index=True)
    assert decoded["record_id"].tolist() == frame["rid"].tolist()
    expected = frame[["a", "b", "c"]].replace(np.inf, np.nan)
    np.testing.assert_array_equal(decoded[["a", "b", "c"]].to_numpy(dtype=float), expected.to_numpy())


def test_json_body_is_the_dense_columns_form():
    payloads = build_payloads(_frame(2), record_id_col="rid", feature_columns=["a"], content_type="application/json",
                              max_records=10, max_bytes=10**6)
    body = json.loads(payloads[0].body)
    assert body["columns"] == ["record_id", "a"] and [row[0] for row in body["data"]] == ["10.0.0.0|w", "10.0.0.1|w"]


def test_encoding_names_missing_columns_and_unknown_formats():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['zz'\]"):
        encode_records(_frame(1), record_id_col="rid", feature_columns=["a", "zz"], content_type="text/csv")
    with pytest.raises(ValueError, match=r"cannot encode payloads as 'application/x-npy'"):
        wire_format("application/x-npy", ["a"])
