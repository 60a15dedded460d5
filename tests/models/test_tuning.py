"""The label-free parameter search: candidates, objective parts, trial budget, timeout, best trial."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_assets.models.serving import calibrate_raw
from ndr_assets.models.tuning import (
    calibrate,
    calibrated_model,
    candidate_params,
    ensemble_scores,
    fit_group_forests,
    forest_for,
    rank_stability,
    separation,
    tune,
)
from ndr_resources.model_specs import Tuning

SMALL_SPACE = {"n_estimators": [10, 20], "max_samples": [32, 64]}


def _data(rows: int = 300, features: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, features))
    z[:3] += 6.0  # a few clear outliers, so the tail stands out
    return z


def test_grid_candidates_are_the_product_in_key_order_cut_at_max_trials():
    candidates, size = candidate_params(Tuning(method="grid", max_trials=3, search_space=SMALL_SPACE), seed=1)

    assert size == 4
    assert candidates == [
        {"n_estimators": 10, "max_samples": 32},
        {"n_estimators": 10, "max_samples": 64},
        {"n_estimators": 20, "max_samples": 32},
    ]


def test_random_candidates_are_distinct_grid_points_in_a_seeded_order():
    spec = Tuning(method="random", max_trials=4, search_space=SMALL_SPACE)
    first, _ = candidate_params(spec, seed=1)
    again, _ = candidate_params(spec, seed=1)

    assert first == again
    assert sorted(map(str, first)) == sorted(map(str, candidate_params(Tuning(method="grid", search_space=SMALL_SPACE), seed=1)[0]))


def test_separation_is_the_top_tail_distance_from_the_median_in_iqrs():
    # 0..99: top 1% = [99], median 49.5, IQR = 74.25 - 24.75 = 49.5 -> raw 1.0, normalised 1 / (1 + 1).
    assert separation(np.arange(100.0)) == (1.0, 0.5)
    # 0..197 plus 500 and 700: the top 1% of 200 is [500, 700] (mean 600); median 99.5;
    # q25 = 49.75, q75 = 149.25 -> IQR 99.5; raw = (600 - 99.5) / 99.5.
    scores = np.concatenate([np.arange(198.0), [500.0, 700.0]])
    raw, normalised = separation(scores)
    assert raw == pytest.approx(500.5 / 99.5)
    assert normalised == pytest.approx(raw / (1 + raw))


def test_separation_of_scores_without_spread_is_zero():
    assert separation(np.full(50, 0.4)) == (0.0, 0.0)


def test_rank_stability_is_the_spearman_correlation_clipped_at_zero():
    a = np.array([0.1, 0.5, 0.3, 0.9])
    assert rank_stability(a, a * 2 + 1) == 1.0
    assert rank_stability(a, -a) == 0.0
    # Ranks [1, 3, 2, 4] vs [1, 2, 3, 4]: rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert rank_stability(a, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.8)


def test_every_trial_is_recorded_and_the_best_has_the_highest_objective():
    z = _data()
    spec = Tuning(method="grid", max_trials=4, search_space=SMALL_SPACE, objective_weights={"separation": 0.5, "stability": 0.5})

    result = tune(z, spec, seed=3, trial_prefix="exp")

    assert [t["trial"] for t in result.trials] == ["exp-000", "exp-001", "exp-002", "exp-003"]
    assert [t["params"] for t in result.trials] == candidate_params(spec, seed=3)[0]
    for trial in result.trials:
        # Each recorded part is what the parameters give when refitted here: one group of every column,
        # calibrated to its tail (an increasing map of the forest's own scores: the same ranks).
        scores = -forest_for(trial["params"], len(z), 3).fit(z).score_samples(z)
        other = -forest_for(trial["params"], len(z), 4).fit(z).score_samples(z)
        calibrated_scores = calibrate(scores[None, :], [("all", [0, 1, 2])])[1]
        assert trial["separation"] == pytest.approx(separation(calibrated_scores)[1], rel=1e-12)
        assert trial["stability"] == pytest.approx(rank_stability(scores, other), rel=1e-12)
        assert trial["objective"] == pytest.approx(0.5 * trial["separation"] + 0.5 * trial["stability"])
        assert trial["seconds"] >= 0
    assert result.best == max(result.trials, key=lambda t: t["objective"])
    assert result.stopped_early is False


def test_the_objective_weights_decide_the_best_trial():
    z = _data()
    space = {"n_estimators": [5, 40], "max_samples": [64]}
    by_stability = tune(z, Tuning(method="grid", search_space=space, objective_weights={"stability": 1.0}), seed=3)

    stabilities = [t["stability"] for t in by_stability.trials]
    assert by_stability.best["stability"] == max(stabilities)
    assert all(t["objective"] == t["stability"] for t in by_stability.trials)
    # More trees average more random splits: the 40-tree forest ranks the rows more alike across seeds.
    assert by_stability.best_params == {"n_estimators": 40, "max_samples": 64}


def test_a_timeout_stops_between_trials_after_at_least_one():
    spec = Tuning(method="grid", max_trials=4, timeout_seconds=1e-6, search_space=SMALL_SPACE)

    result = tune(_data(), spec, seed=3)

    assert len(result.trials) == 1
    assert result.stopped_early is True
    assert result.stop_reason.startswith("timeout: ")
    assert result.stop_reason.endswith("after 1 of 4 trials")
    assert result.to_report()["trials_run"] == 1


def test_max_samples_above_the_row_count_is_capped():
    forest = forest_for({"max_samples": 1024}, 300, seed=1).fit(_data())
    assert forest.max_samples_ == 300


def test_tuning_is_deterministic_for_a_seed():
    spec = Tuning(method="random", max_trials=2, search_space=SMALL_SPACE)
    first, second = tune(_data(), spec, seed=9), tune(_data(), spec, seed=9)

    def without_seconds(trials):
        return [{k: v for k, v in t.items() if k != "seconds"} for t in trials]

    assert without_seconds(first.trials) == without_seconds(second.trials)


def test_unknown_objective_parts_are_refused():
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['recall'\]"):
        tune(_data(), Tuning(search_space=SMALL_SPACE, objective_weights={"recall": 1.0}), seed=1)


def test_trials_score_the_groups_as_training_combines_them():
    z = _data()
    groups = [("first", [0]), ("rest", list(range(1, z.shape[1])))]
    spec = Tuning(method="grid", max_trials=1, search_space={"n_estimators": [20], "max_samples": [64]})

    [trial] = tune(z, spec, seed=3, groups=groups).trials

    scores, other = (ensemble_scores(z, *fit_group_forests(z, groups, trial["params"], s)[:2]) for s in (3, 4))
    assert trial["separation"] == separation(scores)[1]
    assert trial["stability"] == rank_stability(scores, other)
    forests, described, combined = fit_group_forests(z, groups, trial["params"], 3)
    assert np.array_equal(combined, ensemble_scores(z, forests, described))  # what serving says of the same rows
    assert [f.n_features_in_ for f in forests] == [1, z.shape[1] - 1]
    raw_first = -forests[0].score_samples(z[:, [0]])
    assert described[0]["name"] == "first" and described[0]["columns"] == [0]
    assert_tail_calibration(described[0], raw_first)


def assert_tail_calibration(group: dict, raw: np.ndarray) -> None:
    """Knots: the top 256 distinct training scores, then doubling ranks from the top, and the smallest;
    each level -log10(count(raw >= knot) / (n + 1)); tail scale: the top 1 %'s mean excess over q99."""
    descending = np.sort(raw)[::-1]
    ranks = [*range(min(raw.size, 256)), *[r for r in (256, 512, 1024, 2048) if r < raw.size], raw.size - 1]
    assert group["knots"] == sorted(set(descending[ranks].tolist()))
    assert group["levels"] == pytest.approx([-np.log10(np.sum(raw >= k) / (raw.size + 1)) for k in group["knots"]],
                                            abs=1e-12)
    q99 = np.quantile(raw, 0.99)
    assert group["tail_scale"] == pytest.approx(raw[raw >= q99].mean() - q99, rel=1e-12)


def test_calibration_is_the_training_tail_probability_and_extends_above_the_largest_score():
    raw = np.arange(1.0, 601.0)  # 600 distinct scores: 256 exact knots from the top, then ranks 256 and 512, and 1
    [group], combined = calibrate(raw[None, :], [("g", [0])])

    assert group["knots"] == [1.0, 88.0, *np.arange(344.0, 601.0).tolist()]
    assert_tail_calibration(group, raw)
    # The largest training score: one row of 600 at or above it -> -log10(1 / 601); 601 continues by the tail scale.
    top = -np.log10(1 / 601)
    assert calibrate_raw(np.array([600.0, 601.0]), group).tolist() == pytest.approx(
        [top, top + 1.0 / group["tail_scale"] * np.log10(np.e)])
    # Between knots 88 (513 rows at or above it) and 344 (257 rows): linear in the raw score.
    assert calibrate_raw(np.array([216.0]), group)[0] == pytest.approx(
        (-np.log10(513 / 601) - np.log10(257 / 601)) / 2)
    assert combined.tolist() == pytest.approx(calibrate_raw(raw, group).tolist())  # one group: its own score


def test_the_best_trials_forests_are_the_model_fitted_afresh_and_calibrated_on_every_row():
    # 10 -> 20 trees grows the 10-tree forests; trials score 120 of the 300 rows, the model all of them.
    z = _data()
    groups = [("first", [0]), ("rest", [1, 2])]
    spec = Tuning(method="grid", search_space={"n_estimators": [10, 20], "max_samples": [64]},
                  objective_weights={"stability": 1.0})

    result = tune(z, spec, seed=3, groups=groups, evaluation_rows=120)
    forests, described, combined = calibrated_model(z, groups, result.best_fit)

    assert result.best_params["n_estimators"] == 20  # the grown forests (stabilities 0.867 and 0.935)
    assert result.best_fit.scored.size == 120
    fresh_forests, fresh_described, fresh_combined = fit_group_forests(z, groups, result.best_params, 3)
    assert described == fresh_described
    assert np.array_equal(combined, fresh_combined)
    for forest, fresh, (_, columns) in zip(forests, fresh_forests, groups, strict=True):
        assert forest.n_estimators == result.best_params["n_estimators"] and forest.warm_start is False
        assert np.array_equal(forest.score_samples(z[:, columns]), fresh.score_samples(z[:, columns]))
