"""What a trained model is: the keys of the model bundle and of the predictions it produces.

A bundle is a ``dict`` saved with joblib as ``model.joblib`` inside ``model.tar.gz`` (with
``code/inference.py`` = :mod:`ndr_assets.models.serving`), holding only sklearn objects, numpy
arrays and python values, so the SageMaker scikit-learn serving container loads it with nothing of
ours installed. The names are defined in ``serving`` (which must stay self-contained) and
re-exported here for the rest of the package.

Bundle keys::

    format            BUNDLE_FORMAT
    model_name        str
    model_version     str
    month             "YYYY-MM", the month of use the model scores
    features          list[str], the model's input columns, in order
    preprocessing     {"eps", "scaling_method", "outlier_method", "z_max", "deviations",
                       "center": list[float], "scale": list[float]}   (one per feature)
    baseline          list[float], per feature, the training median in raw units (what an
                      explanation compares a value with)
    model             list of fitted sklearn.ensemble.IsolationForest, one per group, on the
                      group's preprocessed columns
    groups            list of {"name", "columns": list[int] (positions in features), "knots",
                      "levels", "tail_scale"} (the calibration of the group's raw score to its
                      training tail probability, see serving), one per forest, and "baseline":
                      the group's calibrated score of the baseline row (what an explanation's
                      group anomaly is measured from; computed when absent)
    score_threshold   float, prediction_label = 1 where prediction_score >= it
    trained_on        {"first_window_end", "last_window_end", "rows", "sampled_rows", "sampling"}

Scores: ``prediction_score`` = the sum of the three largest calibrated group scores (higher is
more anomalous; a group's 2.0 is its training top 1 %), see ``serving``.
"""

from __future__ import annotations

from ndr_assets.models.serving import (
    BUNDLE_FORMAT,
    LABEL,
    MODEL_ARCHIVE,
    MODEL_FILE,
    MODEL_NAME,
    MODEL_VERSION,
    PREPROCESSING_KEYS,
    RECORD_ID,
    SCORE,
    SERVING_ENTRY,
    TOP_FEATURES,
    preprocess,
)

BUNDLE_KEYS = (
    "format", "model_name", "model_version", "month", "features", "preprocessing", "baseline", "model", "groups",
    "score_threshold", "trained_on",
)

__all__ = [
    "BUNDLE_FORMAT", "BUNDLE_KEYS", "LABEL", "MODEL_ARCHIVE", "MODEL_FILE", "MODEL_NAME", "MODEL_VERSION",
    "PREPROCESSING_KEYS", "RECORD_ID", "SCORE", "SERVING_ENTRY", "TOP_FEATURES", "preprocess",
]
