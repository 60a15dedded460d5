"""A tiny real model bundle for the model tests: an IsolationForest fitted on seeded synthetic rows.

Robust scaling as training does it (centre = median, scale = interquartile range), so the baseline
(the training median) preprocesses to the zero vector: a record equal to the baseline is scored as
``-model.score_samples(zeros)``.
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
                top_features: int | None = None, seed: int = 3) -> dict:
    """A complete bundle (the keys of ``ndr_assets.models.bundle``) fitted on ``training_rows``."""
    features = list(features or FEATURES)
    x = training_rows(rows, len(features), seed)
    median = np.median(x, axis=0)
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    preprocessing = {"eps": 1e-6, "scaling_method": "robust", "outlier_method": "clip", "z_max": 6.0,
                     "center": median.tolist(), "scale": (q3 - q1).tolist()}
    model = IsolationForest(n_estimators=n_estimators, max_samples=128, random_state=seed).fit(preprocess(x, preprocessing))
    training_scores = -model.score_samples(preprocess(x, preprocessing))
    bundle = {
        "format": BUNDLE_FORMAT,
        "model_name": "isolation_forest",
        "model_version": "v-test-1",
        "month": "2026-04",
        "features": features,
        "preprocessing": preprocessing,
        "baseline": median.tolist(),
        "model": model,
        "score_threshold": float(np.quantile(training_scores, 0.99)),
        "trained_on": {"rows": rows, "sampled_rows": rows, "sampling": "all"},
    }
    if top_features is not None:
        bundle["top_features"] = top_features
    return bundle


def write_bundle(model_dir: str, bundle: dict) -> str:
    """``model_dir`` holding ``model.joblib`` (what an extracted model.tar.gz holds); returns it."""
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(bundle, os.path.join(model_dir, MODEL_FILE))
    return model_dir


def sklearn_scores(bundle: dict, x: np.ndarray) -> np.ndarray:
    """The reference: what the model itself says about raw rows ``x``."""
    return -bundle["model"].score_samples(preprocess(np.asarray(x, dtype=np.float64), bundle["preprocessing"]))
