"""Feature selection on hand-made preprocessed matrices: what is dropped, and with which reason."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_assets.models.selection import MIN_KEPT_FEATURES, select_features
from ndr_resources.model_specs import FeatureSelection


def _independent_normals(rows: int, names: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=rows) for name in names}


def _rare_blip(rows: int) -> np.ndarray:
    # One non-zero value in the whole column: variance above any sensible threshold, yet the
    # forest can split on it only in the few nodes that hold that one row.
    column = np.zeros(rows)
    column[rows // 2] = 6.0
    return column


def _matrix(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    return np.column_stack(list(columns.values())), list(columns)


def test_constant_and_correlated_columns_are_dropped_with_their_reasons_and_independent_ones_kept():
    columns = _independent_normals(1000, ["a", "b", "c", "d"])
    columns["flat"] = np.full(1000, 0.0)
    columns["a_twice"] = 2 * columns["a"] + 1  # r = +1 with a
    columns["minus_b"] = -columns["b"]  # r = -1 with b
    z, names = _matrix(columns)

    result = select_features(z, names, FeatureSelection(stability_runs=3, corr_threshold=0.98), seed=7)

    assert result.kept == ["a", "b", "c", "d"]
    assert result.dropped == [
        {"feature": "flat", "stage": "variance", "reason": "constant (variance 0 < 1e-08)"},
        {"feature": "a_twice", "stage": "correlation", "reason": "correlated with a, r=1.00"},
        {"feature": "minus_b", "stage": "correlation", "reason": "correlated with b, r=-1.00"},
    ]
    assert result.stability_share == {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}


def test_correlation_below_the_threshold_keeps_both_columns():
    rng = np.random.default_rng(3)
    a = rng.normal(size=2000)
    # r = 0.6 / sqrt(0.36 + 0.64) = 0.6 in expectation: well below 0.98.
    related = 0.6 * a + 0.8 * rng.normal(size=2000)
    z = np.column_stack([a, related])

    result = select_features(z, ["a", "related"], FeatureSelection(corr_threshold=0.98), seed=7)

    assert result.kept == ["a", "related"]
    assert result.dropped == []


@pytest.mark.parametrize("permutation_eval", [False, True])
def test_a_column_the_forest_can_rarely_split_is_dropped_as_unstable(permutation_eval):
    columns = _independent_normals(2000, ["a", "b", "c", "d", "e"])
    columns["blip"] = _rare_blip(2000)
    z, names = _matrix(columns)

    result = select_features(z, names, FeatureSelection(stability_runs=3, permutation_eval=permutation_eval), seed=7)

    assert result.kept == ["a", "b", "c", "d", "e"]
    assert result.dropped == [
        {"feature": "blip", "stage": "stability", "reason": "unstable (informative in 0% of 3 runs < 50%)"},
    ]


def test_never_fewer_than_the_minimum_features_remain_and_the_report_says_why():
    columns = _independent_normals(2000, ["a", "b"])
    columns["blip_1"] = _rare_blip(2000)
    columns["blip_2"] = np.roll(_rare_blip(2000), 17)
    z, names = _matrix(columns)

    result = select_features(z, names, FeatureSelection(stability_runs=2), seed=7)

    assert len(result.kept) == MIN_KEPT_FEATURES == 3
    assert result.kept[:2] == ["a", "b"]
    assert [d["feature"] for d in result.dropped] == [f for f in ("blip_1", "blip_2") if f not in result.kept]
    assert result.notes == [
        f"kept {[result.kept[2]]} although informative in fewer than 50% of runs: at least 3 features must remain"
    ]


def test_selection_is_deterministic_for_a_seed():
    columns = _independent_normals(1500, ["a", "b", "c", "d", "e"], seed=11)
    columns["blip"] = _rare_blip(1500)
    z, names = _matrix(columns)
    spec = FeatureSelection(stability_runs=3)

    assert select_features(z, names, spec, seed=5) == select_features(z, names, spec, seed=5)


def test_disabled_selection_keeps_every_column():
    z = np.column_stack([np.zeros(10), np.arange(10.0)])

    result = select_features(z, ["flat", "ramp"], FeatureSelection(enabled=False), seed=7)

    assert result.kept == ["flat", "ramp"]
    assert result.dropped == []
    assert result.notes == ["feature selection disabled"]


def test_names_that_do_not_match_the_matrix_are_refused():
    with pytest.raises(ValueError, match=r"shape \(4, 2\) but 3 feature names"):
        select_features(np.zeros((4, 2)), ["a", "b", "c"], FeatureSelection(), seed=7)


def test_the_default_has_no_stability_or_correlation_stage_so_a_rare_blip_and_a_twin_are_kept():
    columns = _independent_normals(1000, ["a", "b", "c", "d"])
    columns["blip"] = _rare_blip(1000)
    columns["flat"] = np.full(1000, 0.0)
    columns["a_twice"] = 2 * columns["a"] + 1
    z, names = _matrix(columns)

    result = select_features(z, names, FeatureSelection(), seed=7)

    assert (FeatureSelection().stability_runs, FeatureSelection().corr_threshold) == (0, 1.0)
    assert result.kept == ["a", "b", "c", "d", "blip", "a_twice"]
    assert [d["feature"] for d in result.dropped] == ["flat"]
    assert result.stability_share == {}
    assert result.notes == ["stability stage off (stability_runs 0)"]
