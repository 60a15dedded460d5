"""Serving code of the Isolation Forest model, in the contract of SageMaker's scikit-learn container.

This file is copied into ``model.tar.gz`` as ``code/inference.py``: it imports nothing of ours (only
the standard library, numpy, pandas, scikit-learn and joblib, which that container has), and the
embedded endpoint calls the same functions in process. The bundle's keys are documented in
:mod:`ndr_assets.models.bundle`, which re-exports the names defined here.
"""

from __future__ import annotations

import numpy as np

BUNDLE_FORMAT = "ndr-isolation-forest/1"
MODEL_FILE = "model.joblib"
MODEL_ARCHIVE = "model.tar.gz"
SERVING_ENTRY = "code/inference.py"

RECORD_ID = "record_id"
SCORE = "prediction_score"
LABEL = "prediction_label"
TOP_FEATURES = "top_features"
MODEL_VERSION = "model_version"
MODEL_NAME = "model_name"

PREPROCESSING_KEYS = ("eps", "scaling_method", "outlier_method", "z_max", "center", "scale")


def preprocess(values: np.ndarray, preprocessing: dict) -> np.ndarray:
    """Raw feature values (rows x features, model column order) -> what the forest sees.

    ``z = (x - center) / scale`` per feature (training fitted ``center``/``scale``; ``scale`` is never
    below ``eps``); a missing or non-finite value becomes the centre (z = 0); with
    ``outlier_method == "clip"`` z is clipped to ``[-z_max, z_max]``.
    """
    x = np.asarray(values, dtype=np.float64)
    center = np.asarray(preprocessing["center"], dtype=np.float64)
    scale = np.maximum(np.asarray(preprocessing["scale"], dtype=np.float64), float(preprocessing["eps"]))
    z = (x - center) / scale
    z[~np.isfinite(z)] = 0.0
    if preprocessing.get("outlier_method", "clip") == "clip":
        z_max = float(preprocessing["z_max"])
        np.clip(z, -z_max, z_max, out=z)
    return z
