"""Serving code of the Isolation Forest model, in the contract of SageMaker's scikit-learn container.

This file is copied into ``model.tar.gz`` as ``code/inference.py``: it imports nothing of ours (only
the standard library, numpy, pandas, scikit-learn and joblib, which that container has), and the
embedded endpoint calls the same functions in process. The bundle's keys are documented in
:mod:`ndr_assets.models.bundle`, which re-exports the names defined here.

The four handlers the container calls, in order:

- ``model_fn(model_dir)``: the bundle dict of ``model_dir/model.joblib``.
- ``input_fn(body, content_type)``: a DataFrame with ``record_id`` and the feature columns, from
  ``application/json`` (``{"instances": [{"record_id": .., "<feature>": ..}, ..]}`` or the denser
  ``{"columns": [..], "data": [[..], ..]}``) or ``text/csv`` (a header row, then one row a record).
- ``predict_fn(frame, bundle)``: one prediction dict a record (score, label, lineage, explanation).
- ``output_fn(predictions, accept)``: ``(body, content_type)``, JSON (``{"predictions": [..]}``) or
  CSV (``top_features`` as a JSON string column).

Scores: the model is one Isolation Forest per feature group (the columns of one FG-A metric: its
FG-A windows and every FG-C comparison of it, see ``ndr_assets.models.groups``). A group's raw score
``r = -forest.score_samples(z[:, columns])`` is calibrated to its tail probability among the n
training rows, in decades: ``calibrated = -log10(P(training raw >= r))`` with
``P = count(training raw >= r) / (n + 1)``, interpolated linearly between the group's ``knots``
(training raw scores, ascending) and their ``levels`` (that value for each knot); above the
largest knot the tail continues exponentially, ``levels[-1] + (r - knots[-1]) / tail_scale *
log10(e)``, with ``tail_scale`` the mean excess of the training top 1 % over its 99th percentile.
So 2 means "one training row in a hundred is as odd in this behaviour", in every group alike; then::

    prediction_score = sum of the TOP_GROUPS largest calibrated group scores

higher is more anomalous; ``prediction_label = int(prediction_score >= score_threshold)``. Why per
group: one forest over all features would dilute an excess in one metric among hundreds of ordinary
ones (a forest picks split features at random). Why tail probabilities, not a median/quantile
scale: a one-feature group (a bounded 0..1 cadence score) and a heavy-tailed one (bytes) then speak
the same unit, and a record far out in a bounded group is not outshouted by every ordinary record's
noise in a heavy one. Why the top three: one odd behaviour happens to every host now and then
across ~70 groups; attacks move a few at once (a beacon: cadence, new ports, one busy peer).

Explanations (``top_features``) ask the model itself, per behaviour: a feature's group is reset to the
baseline row (every feature at its training median, ``z_base``), and the group's calibrated score drop,
``anomaly_g = calibrated_g(z) - calibrated_g(z_base)`` (the second term is a constant of the bundle),
is shared among the group's features in proportion to their distance from the baseline::

    contribution_j = anomaly_g(j) * |z_j - z_base_j| / sum over i in g(j) of |z_i - z_base_i|

so a positive contribution means "this value made the record more anomalous", a feature at its
baseline contributes 0, and a group's contributions add up to its anomaly. Why not reset one feature
at a time: a group holds a metric's windows and FG-C comparisons, which move together; with the others
still far out, the forest isolates the record just as fast, so a one-feature reset changes nothing and
every contribution read 0.000 on real-looking data. Why not the drop of the combined score: with two
anomalous behaviours the max falls only to the other one, and both would look harmless. The cost is
one matrix product per payload, no extra scoring pass, no Python loop over features. The ``top_k``
features with the largest contribution are reported with their raw value and raw baseline (ties: the
larger distance first); ``top_k`` is the bundle's ``"top_features"`` if present, else 5 (never below
3, never above the number of features). ``calibrated_g(z_base)`` is each group's ``"baseline"`` in the
bundle when training stored it, else computed here from the forest.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

BUNDLE_FORMAT = "ndr-isolation-forest/3"
MODEL_FILE = "model.joblib"
MODEL_ARCHIVE = "model.tar.gz"
SERVING_ENTRY = "code/inference.py"

RECORD_ID = "record_id"
SCORE = "prediction_score"
LABEL = "prediction_label"
TOP_FEATURES = "top_features"
MODEL_VERSION = "model_version"
MODEL_NAME = "model_name"

PREPROCESSING_KEYS = ("eps", "scaling_method", "outlier_method", "z_max", "deviations", "center", "scale")
GROUP_KEYS = ("name", "columns", "knots", "levels", "tail_scale")
# Groups whose calibrated scores add up to the record's score (all of them when there are fewer).
TOP_GROUPS = 3

JSON = "application/json"
CSV = "text/csv"
DEFAULT_TOP_FEATURES = 5
MIN_TOP_FEATURES = 3
PREDICTION_COLUMNS = (RECORD_ID, SCORE, LABEL, MODEL_VERSION, MODEL_NAME, TOP_FEATURES)


def preprocess(values: np.ndarray, preprocessing: dict) -> np.ndarray:
    """Raw feature values (rows x features, model column order) -> what the forest sees.

    ``z = (x - center) / scale`` per feature (training fitted ``center``/``scale``; ``scale`` is never
    below ``eps``); a missing or non-finite value becomes the centre (z = 0); with
    ``outlier_method == "clip"`` z is clipped to ``[-z_max, z_max]``; with ``deviations == "excess"``
    values below the centre become 0: only an excess over the training median (more sessions, bytes,
    peers, failures, novelty than usual) is a deviation, a quieter host is not an anomaly.
    """
    x = np.asarray(values, dtype=np.float64)
    center = np.asarray(preprocessing["center"], dtype=np.float64)
    scale = np.maximum(np.asarray(preprocessing["scale"], dtype=np.float64), float(preprocessing["eps"]))
    z = (x - center) / scale
    z[~np.isfinite(z)] = 0.0
    if preprocessing.get("outlier_method", "clip") == "clip":
        z_max = float(preprocessing["z_max"])
        np.clip(z, -z_max, z_max, out=z)
    if preprocessing.get("deviations", "both") == "excess":
        np.maximum(z, 0.0, out=z)
    return z


def group_scores(z: np.ndarray, bundle: dict) -> np.ndarray:
    """Calibrated score of every group (groups x records) of preprocessed rows ``z``."""
    out = np.empty((len(bundle["groups"]), z.shape[0]), dtype=np.float64)
    for g, (forest, group) in enumerate(zip(bundle["model"], bundle["groups"], strict=True)):
        out[g] = calibrate_raw(-forest.score_samples(z[:, group["columns"]]), group)
    return out


def calibrate_raw(raw: np.ndarray, group: dict) -> np.ndarray:
    """A group's raw forest scores -> training tail probability in decades (module docstring)."""
    knots = np.asarray(group["knots"], dtype=np.float64)
    levels = np.asarray(group["levels"], dtype=np.float64)
    out = np.interp(raw, knots, levels)
    beyond = raw > knots[-1]
    out[beyond] = levels[-1] + (raw[beyond] - knots[-1]) / float(group["tail_scale"]) * np.log10(np.e)
    return out


def combine_group_scores(per_group: np.ndarray) -> np.ndarray:
    """The record's score from its calibrated group scores (groups x records): the sum of the
    ``TOP_GROUPS`` largest."""
    top = min(TOP_GROUPS, per_group.shape[0])
    return np.sort(per_group, axis=0)[-top:].sum(axis=0)


# ---------------------------------------------------------------- model_fn


def model_fn(model_dir: str) -> dict:
    """The bundle saved as ``model_dir/model.joblib``, refused unless its ``format`` is ours."""
    import joblib

    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {MODEL_FILE} in model directory {model_dir!r} (an extracted {MODEL_ARCHIVE})")
    bundle = joblib.load(path)
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        found = bundle.get("format") if isinstance(bundle, dict) else type(bundle).__name__
        raise ValueError(f"{path}: bundle format is {found!r}, this serving code reads {BUNDLE_FORMAT!r}")
    missing = [key for key in ("features", "preprocessing", "baseline", "model", "groups", "score_threshold")
               if key not in bundle]
    if missing:
        raise ValueError(f"{path}: bundle lacks key(s) {missing}")
    return bundle


# ---------------------------------------------------------------- input_fn


def _media_type(content_type: str | None) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def input_fn(request_body, request_content_type: str):
    """The request as a DataFrame: ``record_id`` (str) plus the columns it carries, in any order."""
    import pandas as pd

    media = _media_type(request_content_type)
    text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else str(request_body)
    if media == JSON:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"request body is not valid JSON: {exc}") from exc
        if isinstance(payload, dict) and "instances" in payload:
            frame = pd.DataFrame.from_records(payload["instances"])
        elif isinstance(payload, dict) and "columns" in payload and "data" in payload:
            frame = pd.DataFrame(payload["data"], columns=payload["columns"])
        else:
            raise ValueError('JSON request must be {"instances": [...]} or {"columns": [...], "data": [[...]]}')
    elif media == CSV:
        # round_trip: pandas' default fast parser can be 1 ulp off, and a score must not depend on the wire format.
        frame = pd.read_csv(io.StringIO(text), dtype={RECORD_ID: str}, keep_default_na=False, na_values=[""],
                            float_precision="round_trip")
    else:
        raise ValueError(f"unsupported content type {request_content_type!r}; this model reads {JSON!r} or {CSV!r}")
    if RECORD_ID not in frame.columns:
        raise ValueError(f"request has no {RECORD_ID!r} column (columns: {list(frame.columns)[:10]})")
    frame[RECORD_ID] = frame[RECORD_ID].astype(str)
    return frame


# ---------------------------------------------------------------- predict_fn


def _feature_matrix(frame, features: list[str]) -> np.ndarray:
    """The model's columns of ``frame`` as float64, naming the missing and the non-numeric ones."""
    import pandas as pd

    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(f"request lacks feature column(s) {missing} of the model's {len(features)}")
    columns = frame[features]
    try:
        return columns.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        numeric = columns.apply(pd.to_numeric, errors="coerce")
        bad = [name for name in features if (numeric[name].isna() & columns[name].notna()).any()]
        raise ValueError(f"feature column(s) {bad} hold non-numeric values") from None


def _top_k(bundle: dict, n_features: int) -> int:
    requested = int(bundle.get("top_features") or DEFAULT_TOP_FEATURES)
    return min(max(requested, MIN_TOP_FEATURES), n_features)


def scores_and_contributions(x: np.ndarray, bundle: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, top_index, top_contribution)`` of raw rows ``x``: scores (n,), and per record the
    indices (n, top_k) of its top features with their contributions, best first (module docstring)."""
    preprocessing = bundle["preprocessing"]
    z = preprocess(x, preprocessing)
    n, n_features = z.shape
    per_group = group_scores(z, bundle)
    scores = combine_group_scores(per_group)
    top_k = _top_k(bundle, n_features)
    z_base = preprocess(np.asarray(bundle["baseline"], dtype=np.float64)[None, :], preprocessing)[0]

    distance = np.abs(z - z_base)  # (n, features)
    group_of = np.empty(n_features, dtype=np.int64)
    for g, group in enumerate(bundle["groups"]):
        group_of[group["columns"]] = g
    anomaly = per_group - baseline_group_scores(bundle, z_base)[:, None]  # (groups, n)
    spread = np.zeros((len(bundle["groups"]), n), dtype=np.float64)
    np.add.at(spread, group_of, distance.T)  # each group's total distance per record
    share = np.divide(distance.T, spread[group_of], out=np.zeros_like(distance.T), where=spread[group_of] > 0)
    contribution = (anomaly[group_of] * share).T  # (n, features)

    # Best first; ties broken by distance from baseline so equal contributions keep a stable meaning.
    order = np.lexsort((-distance, -contribution), axis=1)[:, :top_k]
    return scores, order, np.take_along_axis(contribution, order, axis=1)


def baseline_group_scores(bundle: dict, z_base: np.ndarray | None = None) -> np.ndarray:
    """Each group's calibrated score of the baseline row (every feature at its training median):
    the groups' stored ``"baseline"``, else scored here."""
    stored = [group.get("baseline") for group in bundle["groups"]]
    if all(value is not None for value in stored):
        return np.asarray(stored, dtype=np.float64)
    if z_base is None:
        z_base = preprocess(np.asarray(bundle["baseline"], dtype=np.float64)[None, :], bundle["preprocessing"])[0]
    return group_scores(z_base[None, :], bundle)[:, 0]


def _json_number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def predict_fn(input_data, bundle: dict) -> list[dict]:
    """One dict a record: record_id, score, label, model_version, model_name, top_features."""
    features = list(bundle["features"])
    x = _feature_matrix(input_data, features)
    record_ids = input_data[RECORD_ID].astype(str).tolist()
    if not record_ids:
        return []
    scores, top_index, top_contribution = scores_and_contributions(x, bundle)
    labels = (scores >= float(bundle["score_threshold"])).astype(int)
    baseline = np.asarray(bundle["baseline"], dtype=np.float64)
    row = np.arange(len(record_ids))[:, None]
    values = x[row, top_index]  # raw values of the reported features, (n, top_k)
    baselines = baseline[top_index]
    names = np.asarray(features, dtype=object)[top_index]
    version, name = str(bundle.get("model_version", "")), str(bundle.get("model_name", ""))
    # Building the response is a loop over records (each needs its own dict); no loop over features.
    return [
        {
            RECORD_ID: record_ids[i],
            SCORE: float(scores[i]),
            LABEL: int(labels[i]),
            MODEL_VERSION: version,
            MODEL_NAME: name,
            TOP_FEATURES: [
                {"feature": f, "value": _json_number(v), "baseline": _json_number(b), "contribution": float(c)}
                for f, v, b, c in zip(names[i], values[i], baselines[i], top_contribution[i], strict=True)
            ],
        }
        for i in range(len(record_ids))
    ]


# ---------------------------------------------------------------- output_fn


def _accepted(accept: str | None) -> str:
    """The media type to answer with: JSON unless the client asks for CSV (``*/*`` and none mean JSON)."""
    for part in (accept or JSON).split(","):
        media = _media_type(part)
        if media in (JSON, CSV):
            return media
        if media in ("*/*", "application/*", ""):
            return JSON
    raise ValueError(f"unsupported accept type {accept!r}; this model answers {JSON!r} or {CSV!r}")


def output_fn(prediction: list[dict], accept: str) -> tuple[str, str]:
    """``(body, content_type)`` of the predictions."""
    import csv

    media = _accepted(accept)
    if media == JSON:
        return json.dumps({"predictions": prediction}, allow_nan=False), JSON
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PREDICTION_COLUMNS)
    for p in prediction:
        writer.writerow([p[RECORD_ID], repr(p[SCORE]), p[LABEL], p[MODEL_VERSION], p[MODEL_NAME],
                         json.dumps(p[TOP_FEATURES], allow_nan=False)])
    return out.getvalue(), CSV


def parse_predictions(body, content_type: str) -> list[dict]:
    """The client side of :func:`output_fn`: the prediction dicts of a response body."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
    media = _media_type(content_type)
    if media == JSON:
        payload = json.loads(text)
        if not isinstance(payload, dict) or "predictions" not in payload:
            raise ValueError('JSON response has no "predictions" list')
        return payload["predictions"]
    if media == CSV:
        import csv

        rows = list(csv.reader(io.StringIO(text)))
        if not rows or tuple(rows[0]) != PREDICTION_COLUMNS:
            raise ValueError(f"CSV response header is {rows[0] if rows else None}, expected {list(PREDICTION_COLUMNS)}")
        return [
            {RECORD_ID: r[0], SCORE: float(r[1]), LABEL: int(r[2]), MODEL_VERSION: r[3], MODEL_NAME: r[4],
             TOP_FEATURES: json.loads(r[5])}
            for r in rows[1:]
        ]
    raise ValueError(f"unsupported response content type {content_type!r}")
