"""The SageMaker serving contract (model_fn / input_fn / predict_fn / output_fn) on a real fitted forest."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from ndr_assets.models import serving
from tests.models.bundles import FEATURES, make_bundle, reference_contributions, sklearn_scores, write_bundle


@pytest.fixture(scope="module")
def bundle() -> dict:
    return make_bundle()


def _frame(rows: dict[str, list[float]]) -> pd.DataFrame:
    ids = [f"r{i}" for i in range(len(next(iter(rows.values()))))]
    return pd.DataFrame({"record_id": ids, **rows})


def _baseline_record(bundle: dict, **overrides: float) -> dict:
    record = dict(zip(FEATURES, bundle["baseline"], strict=True))
    record.update(overrides)
    return record


def test_model_fn_loads_the_bundle_and_refuses_another_format(tmp_path, bundle):
    loaded = serving.model_fn(write_bundle(str(tmp_path / "ok"), bundle))
    assert loaded["features"] == FEATURES and loaded["model_version"] == "v-test-1"

    write_bundle(str(tmp_path / "old"), {**bundle, "format": "ndr-isolation-forest/0"})
    with pytest.raises(ValueError, match=r"bundle format is 'ndr-isolation-forest/0'.*'ndr-isolation-forest/3'"):
        serving.model_fn(str(tmp_path / "old"))
    with pytest.raises(FileNotFoundError, match=r"no model\.joblib in model directory"):
        serving.model_fn(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    joblib.dump(bundle["model"][0], tmp_path / "plain" / "model.joblib")
    with pytest.raises(ValueError, match=r"bundle format is 'IsolationForest'"):
        serving.model_fn(str(tmp_path / "plain"))


def test_input_fn_reads_instances_columns_and_csv_alike():
    instances = json.dumps({"instances": [{"record_id": 7, "a": 1.5, "b": None}, {"record_id": "x", "a": 2, "b": 3}]})
    columns = json.dumps({"columns": ["record_id", "a", "b"], "data": [[7, 1.5, None], ["x", 2, 3]]})
    csv_body = b"record_id,a,b\n7,1.5,\nx,2,3\n"
    for body, content_type in ((instances, "application/json"), (columns.encode(), "application/json; charset=utf-8"),
                               (csv_body, "text/csv")):
        frame = serving.input_fn(body, content_type)
        assert frame["record_id"].tolist() == ["7", "x"]
        assert frame["a"].tolist() == [1.5, 2.0]
        assert np.isnan(frame["b"].iloc[0]) and frame["b"].iloc[1] == 3.0


def test_input_fn_names_what_it_cannot_read():
    with pytest.raises(ValueError, match=r"unsupported content type 'application/x-npy'"):
        serving.input_fn(b"", "application/x-npy")
    with pytest.raises(ValueError, match=r"no 'record_id' column"):
        serving.input_fn('{"instances": [{"a": 1}]}', "application/json")
    with pytest.raises(ValueError, match=r"not valid JSON"):
        serving.input_fn("{", "application/json")


def test_predict_fn_names_missing_and_non_numeric_features(bundle):
    frame = _frame({"bytes_out": [1.0], "sessions": [2.0]})
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['distinct_peers', 'distinct_ports'\]"):
        serving.predict_fn(frame, bundle)
    frame = _frame({"bytes_out": [1.0], "sessions": ["many"], "distinct_peers": [1.0], "distinct_ports": [1.0]})
    with pytest.raises(ValueError, match=r"\['sessions'\] hold non-numeric values"):
        serving.predict_fn(frame, bundle)


def test_a_record_at_the_baseline_scores_as_the_zero_vector_and_nothing_contributes(bundle):
    frame = pd.DataFrame([{"record_id": "base", **_baseline_record(bundle)}])
    [prediction] = serving.predict_fn(frame, bundle)
    assert prediction["prediction_score"] == sklearn_scores(bundle, np.asarray([bundle["baseline"]]))[0]
    assert prediction["record_id"] == "base"
    assert prediction["model_version"] == "v-test-1" and prediction["model_name"] == "isolation_forest"
    assert len(prediction["top_features"]) == 4  # default 5, but the model has 4 features
    assert [t["contribution"] for t in prediction["top_features"]] == [0.0, 0.0, 0.0, 0.0]
    for top in prediction["top_features"]:
        assert top["value"] == top["baseline"] == bundle["baseline"][FEATURES.index(top["feature"])]


def test_one_feature_far_off_comes_first_with_its_own_contribution(bundle):
    sessions_baseline = bundle["baseline"][1]
    record = _baseline_record(bundle, sessions=sessions_baseline * 40, bytes_out=bundle["baseline"][0] * 1.05)
    frame = pd.DataFrame([{"record_id": "odd", **record}])
    [prediction] = serving.predict_fn(frame, bundle)

    raw = np.array([[record[f] for f in FEATURES]])
    score = sklearn_scores(bundle, raw)[0]
    # sessions and bytes_out form group 0: its anomaly, shared by their distances from the baseline.
    expected_contribution = reference_contributions(bundle, raw)[0, 1]

    assert prediction["prediction_score"] == score
    first = prediction["top_features"][0]
    assert first == {"feature": "sessions", "value": sessions_baseline * 40, "baseline": sessions_baseline,
                     "contribution": pytest.approx(expected_contribution, abs=1e-12)}
    assert expected_contribution > 0.05  # a 40-fold value is what makes this record anomalous
    contributions = [t["contribution"] for t in prediction["top_features"]]
    assert contributions == sorted(contributions, reverse=True)


def test_top_features_count_comes_from_the_bundle_and_is_at_least_three():
    wide = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame([{"record_id": "r", **{f: 100.0 * (i + 1) for i, f in enumerate(wide)}}])
    assert len(serving.predict_fn(frame, make_bundle(wide))[0]["top_features"]) == 5
    assert len(serving.predict_fn(frame, make_bundle(wide, top_features=7))[0]["top_features"]) == 7
    assert len(serving.predict_fn(frame, make_bundle(wide, top_features=1))[0]["top_features"]) == 3


def test_missing_value_is_scored_as_the_centre_and_reported_as_null(bundle):
    body = json.dumps({"instances": [{"record_id": "gap", **_baseline_record(bundle, sessions=None)}]})
    [prediction] = serving.predict_fn(serving.input_fn(body, "application/json"), bundle)
    assert prediction["prediction_score"] == sklearn_scores(bundle, np.asarray([bundle["baseline"]]))[0]
    [sessions] = [t for t in prediction["top_features"] if t["feature"] == "sessions"]
    assert sessions["value"] is None and sessions["contribution"] == 0.0


def test_label_is_score_at_or_above_threshold(bundle):
    odd = _baseline_record(bundle, sessions=bundle["baseline"][1] * 40)
    frame = pd.DataFrame([{"record_id": "base", **_baseline_record(bundle)}, {"record_id": "odd", **odd}])
    scores = sklearn_scores(bundle, frame[FEATURES].to_numpy())
    at_odd = {**bundle, "score_threshold": float(scores[1])}
    assert [p["prediction_label"] for p in serving.predict_fn(frame, at_odd)] == [0, 1]
    above_all = {**bundle, "score_threshold": float(scores.max()) + 1e-9}
    assert [p["prediction_label"] for p in serving.predict_fn(frame, above_all)] == [0, 0]


@pytest.mark.parametrize("media", ["application/json", "text/csv"])
def test_round_trip_through_the_wire_formats_keeps_every_value(bundle, media):
    rng = np.random.default_rng(11)
    raw = rng.uniform(1.0, 400.0, size=(6, 4))
    frame = pd.DataFrame(raw, columns=FEATURES)
    frame.insert(0, "record_id", [f"host-{i},w" for i in range(6)])  # a comma, quoted by CSV
    if media == "text/csv":
        request = frame.to_csv(index=False)
    else:
        request = json.dumps({"columns": list(frame.columns), "data": frame.to_numpy(dtype=object).tolist()})

    predictions = serving.predict_fn(serving.input_fn(request, media), bundle)
    body, content_type = serving.output_fn(predictions, media)
    assert content_type == media
    parsed = serving.parse_predictions(body.encode(), content_type)

    assert parsed == predictions
    assert [p["record_id"] for p in parsed] == frame["record_id"].tolist()
    np.testing.assert_array_equal([p["prediction_score"] for p in parsed], sklearn_scores(bundle, raw))


def test_output_fn_answers_json_for_any_and_refuses_unknown_accept(bundle):
    assert serving.output_fn([], "*/*") == ('{"predictions": []}', "application/json")
    assert serving.output_fn([], "text/csv")[0] == "record_id,prediction_score,prediction_label,model_version,model_name,top_features\n"
    with pytest.raises(ValueError, match=r"unsupported accept type 'application/x-parquet'"):
        serving.output_fn([], "application/x-parquet")


def test_contributions_share_each_groups_anomaly_by_distance_in_either_group(bundle):
    # sessions (group 0) far off, bytes_out (group 0) a little, distinct_ports (group 1) mildly off.
    base = bundle["baseline"]
    record = _baseline_record(bundle, sessions=base[1] * 40, bytes_out=base[0] * 1.5, distinct_ports=base[3] * 3)
    [prediction] = serving.predict_fn(pd.DataFrame([{"record_id": "r", **record}]), bundle)

    raw = np.array([[record[f] for f in FEATURES]])
    expected = reference_contributions(bundle, raw)[0]
    by_feature = {t["feature"]: t["contribution"] for t in prediction["top_features"]}
    assert by_feature == {f: pytest.approx(expected[j], abs=1e-12) for j, f in enumerate(FEATURES)}
    assert [t["feature"] for t in prediction["top_features"]] == sorted(FEATURES, key=lambda f: -expected[FEATURES.index(f)])
    # A group's contributions add up to its anomaly: its calibrated score minus its score of the baseline row.
    z = serving.preprocess(raw, bundle["preprocessing"])
    z_base = serving.preprocess(np.asarray([base]), bundle["preprocessing"])
    anomaly = serving.group_scores(z, bundle)[:, 0] - serving.group_scores(z_base, bundle)[:, 0]
    assert by_feature["bytes_out"] + by_feature["sessions"] == pytest.approx(anomaly[0], abs=1e-12)
    assert by_feature["distinct_peers"] == 0.0  # at its baseline
    assert by_feature["distinct_ports"] == pytest.approx(anomaly[1], abs=1e-12) and anomaly[1] > 0
    assert by_feature["sessions"] > by_feature["bytes_out"] > 0


def test_explanations_use_the_stored_baseline_scores_and_compute_them_when_absent(bundle):
    record = _baseline_record(bundle, sessions=bundle["baseline"][1] * 40)
    frame = pd.DataFrame([{"record_id": "r", **record}])
    computed = serving.baseline_group_scores(bundle)
    stored = {**bundle, "groups": [{**g, "baseline": float(v)} for g, v in zip(bundle["groups"], computed, strict=True)]}

    assert serving.predict_fn(frame, stored) == serving.predict_fn(frame, bundle)
    shifted = {**bundle, "groups": [{**g, "baseline": float(v) - 1.0} for g, v in zip(bundle["groups"], computed, strict=True)]}
    # Every group anomaly one higher: sessions, the only deviating feature of group 0, takes it all.
    [odd], [reference] = serving.predict_fn(frame, shifted), serving.predict_fn(frame, bundle)
    contribution = {t["feature"]: t["contribution"] for t in odd["top_features"]}
    assert contribution["sessions"] == pytest.approx(
        next(t["contribution"] for t in reference["top_features"] if t["feature"] == "sessions") + 1.0, abs=1e-12)
