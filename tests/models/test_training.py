"""Preprocessing fit (hand-computed centres and scales) and train_model end to end on tiny frames."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ndr_assets.models.bundle import BUNDLE_FORMAT, BUNDLE_KEYS
from ndr_assets.models.serving import preprocess
from ndr_assets.models.training import fit_preprocessing, train_model
from ndr_resources.model_specs import IfTrainingSpec, Preprocessing
from tests.models.bundles import calibrated, sklearn_scores
from tests.models.test_tuning import assert_tail_calibration

TRAINED_ON = {"first_window_end": "2026-01-01T00:08:00Z", "last_window_end": "2026-04-30T23:53:00Z",
              "rows": 1000, "sampled_rows": 400, "sampling": {"method": "stratified"}}


def _spec(**overrides) -> IfTrainingSpec:
    payload = {
        "feature_inputs": {"fg_a": {"s3_prefix": "s3://features/fg_a/"}, "fg_c": {"s3_prefix": "s3://features/fg_c/"}},
        "model": {"version": "v7"},
        "output": {"artifacts_s3_prefix": "s3://models/if/", "report_s3_prefix": "s3://models/if/reports/"},
        "feature_selection": {"stability_runs": 2, "corr_threshold": 0.98},
        "tuning": {"method": "grid", "max_trials": 2,
                   "search_space": {"n_estimators": [20, 40], "max_samples": [64], "max_features": [1.0]}},
        "sampling": {"seed": 11},
        # Log-normal columns put many rows beyond 6 robust sigmas: clipping there would tie the planted
        # hosts with that tail in these one-column groups.
        "preprocessing": {"z_max": 50.0},
        **overrides,
    }
    return IfTrainingSpec.model_validate(payload)


def _frame(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({name: rng.lognormal(size=rows) for name in ("bytes", "sessions", "peers", "ports")})
    frame["flat"] = 1.0
    frame["bytes_kib"] = frame["bytes"] / 1024  # r = 1 with bytes (robust z of both are identical)
    frame.loc[[10, 20, 30], "sessions"] = np.nan
    frame.loc[[40, 50], "peers"] = np.inf
    # Two hosts far outside everything else: the forest must put them above the threshold.
    frame.loc[[0, 1], ["bytes", "bytes_kib", "sessions", "peers", "ports"]] = [400.0, 400.0 / 1024, 300.0, 200.0, 250.0]
    return frame


# ---------------------------------------------------------------- preprocessing fit


def test_robust_fit_is_median_and_scaled_mad_ignoring_non_finite_values():
    values = np.array([[1.0], [2.0], [3.0], [4.0], [100.0], [np.nan], [np.inf]])

    fit = fit_preprocessing(values, ["x"], Preprocessing())

    # Finite values 1, 2, 3, 4, 100: median 3, |x - 3| = 2, 1, 0, 1, 97 -> MAD 1.
    assert fit.center == [3.0]
    assert fit.scale == [1.4826]
    assert fit.baseline == [3.0]
    assert fit.scale_source == ["mad"]
    assert fit.finite_values == [5]


@pytest.mark.parametrize(
    ("column", "scale", "source"),
    [
        # MAD 0 (six of eight are 0); q25 = 0, q75 = 0.25 (linear, index 5.25) -> IQR / 1.349.
        ([0, 0, 0, 0, 0, 0, 1, 2], 0.25 / 1.349, "iqr"),
        # MAD 0, IQR 0; mean 1, variance (9 * 1 + 81) / 10 = 9 -> std 3.
        ([0] * 9 + [10], 3.0, "std"),
        # Nothing varies: the unit scale.
        ([5] * 10, 1.0, "unit"),
    ],
)
def test_robust_scale_falls_back_to_iqr_then_std_then_one(column, scale, source):
    fit = fit_preprocessing(np.array([column], dtype=float).T, ["x"], Preprocessing())

    assert fit.scale_source == [source]
    assert fit.scale == pytest.approx([scale])
    assert fit.center == [float(np.median(column))]


def test_standard_and_none_scaling():
    values = np.array([[1.0], [2.0], [3.0], [4.0]])

    standard = fit_preprocessing(values, ["x"], Preprocessing(scaling_method="standard"))
    unscaled = fit_preprocessing(values, ["x"], Preprocessing(scaling_method="none"))

    assert standard.center == [2.5]
    assert standard.scale == pytest.approx([math.sqrt(1.25)])
    assert (unscaled.center, unscaled.scale, unscaled.baseline) == ([0.0], [1.0], [2.5])


def test_a_column_without_finite_values_gets_the_identity_transform():
    fit = fit_preprocessing(np.array([[np.nan], [np.inf]]), ["empty"], Preprocessing())

    assert (fit.center, fit.scale, fit.baseline, fit.finite_values) == ([0.0], [1.0], [0.0], [0])


def test_serving_preprocess_consumes_the_fit():
    values = np.array([[1.0], [2.0], [3.0], [4.0], [100.0], [np.nan]])
    fit = fit_preprocessing(values, ["x"], Preprocessing(z_max=6.0))

    z = preprocess(values, fit.bundle_preprocessing(Preprocessing(z_max=6.0, deviations="both")))
    excess = preprocess(values, fit.bundle_preprocessing(Preprocessing(z_max=6.0)))

    # (x - 3) / 1.4826; 100 clips to 6; NaN is the centre.
    assert z[:, 0] == pytest.approx([-2 / 1.4826, -1 / 1.4826, 0.0, 1 / 1.4826, 6.0, 0.0])
    # The default counts only an excess over the median: below it is the median.
    assert excess[:, 0] == pytest.approx([0.0, 0.0, 0.0, 1 / 1.4826, 6.0, 0.0])


# ---------------------------------------------------------------- train_model


@pytest.fixture(scope="module")
def trained():
    frame = _frame()
    return frame, train_model(frame, list(frame.columns), _spec(), month="2026-06", trained_on=TRAINED_ON)


def test_the_bundle_has_the_contract_keys_and_the_selected_features(trained):
    _, result = trained
    bundle = result.bundle

    assert tuple(bundle) == BUNDLE_KEYS
    assert bundle["format"] == BUNDLE_FORMAT
    assert (bundle["model_name"], bundle["model_version"], bundle["month"]) == ("isolation_forest", "v7", "2026-06")
    assert bundle["features"] == ["bytes", "sessions", "peers", "ports"]
    assert len(bundle["preprocessing"]["center"]) == len(bundle["preprocessing"]["scale"]) == 4
    assert bundle["trained_on"] == TRAINED_ON
    # One forest per metric (here every column is its own metric), calibrated on the training rows.
    assert [g["name"] for g in bundle["groups"]] == ["bytes", "sessions", "peers", "ports"]
    assert [g["columns"] for g in bundle["groups"]] == [[0], [1], [2], [3]]
    assert [forest.n_features_in_ for forest in bundle["model"]] == [1, 1, 1, 1]
    frame, _ = trained
    z = preprocess(frame[bundle["features"]].to_numpy(), bundle["preprocessing"])
    for forest, group in zip(bundle["model"], bundle["groups"], strict=True):
        raw = -forest.score_samples(z[:, group["columns"]])
        assert_tail_calibration(group, raw)
        # The group's calibrated score of the baseline row (every feature at its median), for explanations.
        z_base = preprocess(np.asarray([bundle["baseline"]]), bundle["preprocessing"])
        at_baseline = -forest.score_samples(z_base[:, group["columns"]])
        assert group["baseline"] == pytest.approx(calibrated(at_baseline, group)[0], abs=1e-12)
    assert result.report["groups"] == {"by": "metric", "count": 4,
                                       "features": {"bytes": 1, "sessions": 1, "peers": 1, "ports": 1}}


def test_centre_and_baseline_are_the_training_medians(trained):
    frame, result = trained
    medians = [float(np.median(frame[c][np.isfinite(frame[c])])) for c in result.bundle["features"]]

    assert result.bundle["preprocessing"]["center"] == medians
    assert result.bundle["baseline"] == medians


def test_threshold_is_the_label_quantile_of_the_training_scores(trained):
    frame, result = trained
    bundle = result.bundle
    scores = sklearn_scores(bundle, frame[bundle["features"]].to_numpy())

    assert bundle["score_threshold"] == float(np.quantile(scores, 0.99))
    # 400 distinct scores, q = 0.99: the threshold lies between the 396th and 397th: 4 rows are at or above it.
    assert result.report["score_summary"]["labelled_anomalous"] == 4
    assert set(np.argsort(scores)[-2:]) == {0, 1}  # the two planted hosts score highest


def test_the_report_is_json_and_names_drops_non_finite_counts_and_the_trials(trained):
    _, result = trained
    report = json.loads(json.dumps(result.report))

    assert report["features"]["dropped"] == [
        {"feature": "flat", "stage": "variance", "reason": "constant (variance 0 < 1e-08)"},
        {"feature": "bytes_kib", "stage": "correlation", "reason": "correlated with bytes, r=1.00"},
    ]
    assert report["preprocessing"]["non_finite_values"] == 5
    assert report["preprocessing"]["non_finite_by_feature"] == {"sessions": 3, "peers": 2}
    assert [t["params"]["n_estimators"] for t in report["trials"]] == [20, 40]
    assert report["best_params"] == max(result.trials, key=lambda t: t["objective"])["params"]
    summary = report["score_summary"]
    assert summary["min"] <= summary["p50"] <= summary["p99"] <= summary["max"]
    assert summary["threshold"] == result.bundle["score_threshold"]
    assert result.histogram_png.startswith(b"\x89PNG\r\n\x1a\n")


def test_training_is_deterministic_for_the_spec_seed(trained):
    frame, first = trained
    second = train_model(frame, list(frame.columns), _spec(), month="2026-06", trained_on=TRAINED_ON)
    x = frame[first.bundle["features"]].to_numpy()

    assert np.array_equal(sklearn_scores(first.bundle, x), sklearn_scores(second.bundle, x))
    assert first.bundle["groups"] == second.bundle["groups"]
    assert first.bundle["score_threshold"] == second.bundle["score_threshold"]


@pytest.mark.parametrize(
    ("frame", "columns", "message"),
    [
        (pd.DataFrame({"a": pd.Series([], dtype=float)}), ["a"], "the training frame has no rows"),
        (pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}), ["a", "b"], "no usable feature: all 2 features"),
        (pd.DataFrame({"a": [np.nan, np.inf]}), ["a"], "no usable feature: none of the 1 feature columns"),
        (pd.DataFrame({"a": [1.0]}), ["a", "b"], r"missing from the training frame: \['b'\]"),
        (pd.DataFrame({"a": ["x", "y"]}), ["a"], r"not numeric: \['a'\]"),
        (pd.DataFrame({"a": [1.0]}), [], "no feature columns given"),
    ],
)
def test_unusable_input_is_refused_with_a_clear_error(frame, columns, message):
    with pytest.raises(ValueError, match=message):
        train_model(frame, columns, _spec(), month="2026-06", trained_on=TRAINED_ON)


def test_month_and_trained_on_are_checked():
    frame = _frame()
    with pytest.raises(ValueError, match="month must be 'YYYY-MM'"):
        train_model(frame, ["bytes"], _spec(), month="2026-6", trained_on=TRAINED_ON)
    with pytest.raises(ValueError, match=r"missing \['sampling'\], unknown \['extra'\]"):
        train_model(frame, ["bytes"], _spec(), month="2026-06",
                    trained_on={**{k: v for k, v in TRAINED_ON.items() if k != "sampling"}, "extra": 1})
