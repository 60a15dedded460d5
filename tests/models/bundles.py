"""A tiny real model bundle for the model tests: an IsolationForest fitted on seeded synthetic rows.

Robust scaling as training does it (centre = median, scale = interquartile range), so the baseline
(the training median) preprocesses to the zero vector. One forest per feature group (default: the
first half of the features and the rest), each calibrated on the training rows as training does;
:func:`sklearn_scores` recomputes the combined score from the forests themselves.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest

from ndr_assets.models.bundle import BUNDLE_FORMAT, MODEL_FILE, preprocess

FEATURES = ["bytes_out", "sessions", "distinct_peers", "distinct_ports"]


def training_rows(n: int = 400, n_features: int = len(FEATURES), seed: int = 3) -> np.ndarray:
    """Log-normal-ish positive values, one scale per feature (10, 20, 30, ...)."""
    rng = np.random.default_rng(seed)
    scales = 10.0 * np.arange(1, n_features + 1)
    return np.exp(rng.normal(0.0, 0.5, size=(n, n_features))) * scales


def make_bundle(features: list[str] | None = None, *, rows: int = 400, n_estimators: int = 50,
                top_features: int | None = None, seed: int = 3, groups: list[list[int]] | None = None) -> dict:
    """A complete bundle (the keys of ``ndr_assets.models.bundle``) fitted on ``training_rows``."""
    features = list(features or FEATURES)
    x = training_rows(rows, len(features), seed)
    median = np.median(x, axis=0)
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    preprocessing = {"eps": 1e-6, "scaling_method": "robust", "outlier_method": "clip", "z_max": 6.0,
                     "deviations": "both", "center": median.tolist(), "scale": (q3 - q1).tolist()}
    z = preprocess(x, preprocessing)
    half = max(1, len(features) // 2)
    if groups is None:
        groups = [list(range(half)), list(range(half, len(features)))] if len(features) > 1 else [[0]]
    forests, described = [], []
    for g, columns in enumerate(groups):
        forest = IsolationForest(n_estimators=n_estimators, max_samples=128, random_state=seed + g).fit(z[:, columns])
        raw = -forest.score_samples(z[:, columns])
        forests.append(forest)
        described.append({"name": f"group{g}", "columns": list(columns), **every_score_a_knot(raw)})
    model_bundle = {"model": forests, "groups": described, "preprocessing": preprocessing}
    training_scores = sklearn_scores(model_bundle, x)
    bundle = {
        "format": BUNDLE_FORMAT,
        "model_name": "isolation_forest",
        "model_version": "v-test-1",
        "month": "2026-04",
        "features": features,
        "preprocessing": preprocessing,
        "baseline": median.tolist(),
        "model": forests,
        "groups": described,
        "score_threshold": float(np.quantile(training_scores, 0.99)),
        "trained_on": {"rows": rows, "sampled_rows": rows, "sampling": "all"},
    }
    if top_features is not None:
        bundle["top_features"] = top_features
    return bundle


def every_score_a_knot(raw: np.ndarray) -> dict:
    """A tail calibration with every distinct training score as a knot (training keeps fewer):
    level = -log10(count(raw >= knot) / (n + 1)); tail scale = mean excess of the top 1 % over q99."""
    knots = np.unique(raw)
    levels = [-np.log10(np.sum(raw >= k) / (raw.size + 1)) for k in knots]
    q99 = np.quantile(raw, 0.99)
    return {"knots": knots.tolist(), "levels": levels, "tail_scale": float(raw[raw >= q99].mean() - q99)}


def calibrated(raw: np.ndarray, group: dict) -> np.ndarray:
    """The documented calibration, from the group's knots: linear between knots, exponential above."""
    knots, levels = np.asarray(group["knots"]), np.asarray(group["levels"])
    out = np.interp(raw, knots, levels)
    above = raw > knots[-1]
    out[above] = levels[-1] + (raw[above] - knots[-1]) / group["tail_scale"] / np.log(10)
    return out


def write_bundle(model_dir: str, bundle: dict) -> str:
    """``model_dir`` holding ``model.joblib`` (what an extracted model.tar.gz holds); returns it."""
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(bundle, os.path.join(model_dir, MODEL_FILE))
    return model_dir


def sklearn_scores(bundle: dict, x: np.ndarray) -> np.ndarray:
    """The reference: what the forests themselves say about raw rows ``x``, combined as documented
    (the sum of the three largest calibrated group scores, or of all when fewer)."""
    z = preprocess(np.asarray(x, dtype=np.float64), bundle["preprocessing"])
    per_group = np.array([calibrated(-forest.score_samples(z[:, group["columns"]]), group)
                          for forest, group in zip(bundle["model"], bundle["groups"], strict=True)])
    return np.sort(per_group, axis=0)[-3:].sum(axis=0)


def reference_contributions(bundle: dict, x: np.ndarray) -> np.ndarray:
    """The reference explanation of raw rows ``x`` (rows x features), from the forests themselves:
    each group's calibrated score minus its score of the baseline row, shared among the group's
    features by their distance from the baseline in preprocessed units."""
    z = preprocess(np.asarray(x, dtype=np.float64), bundle["preprocessing"])
    z_base = preprocess(np.asarray([bundle["baseline"]], dtype=np.float64), bundle["preprocessing"])
    out = np.zeros_like(z)
    for forest, group in zip(bundle["model"], bundle["groups"], strict=True):
        columns = group["columns"]

        def of(rows, forest=forest, group=group, columns=columns):
            return calibrated(-forest.score_samples(rows[:, columns]), group)
        anomaly = of(z) - of(z_base)[0]
        distance = np.abs(z[:, columns] - z_base[:, columns])
        total = distance.sum(axis=1, keepdims=True)
        out[:, columns] = anomaly[:, None] * np.where(total > 0, distance / np.where(total > 0, total, 1.0), 0.0)
    return out
