"""Spark schemas of the model datasets: predictions and the prediction-feature join's added columns."""

from __future__ import annotations

from pyspark.sql import types as T

from ndr_assets.models import bundle

TOP_FEATURE_TYPE = T.StructType(
    [
        T.StructField("feature", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("baseline", T.DoubleType(), True),
        T.StructField("contribution", T.DoubleType(), True),
    ]
)

# Predictions only (spec 003 item 13): keys, score, label, lineage, and the explanation. Stored under
# ``<output.s3_prefix>feature_spec_version=<v>/dt=<day>/window=<HHMM>/`` (the declared partition keys,
# plus ``window`` so one window is replaced alone); ``feature_spec_version`` is also a data column.
PREDICTIONS_SCHEMA = T.StructType(
    [
        T.StructField("host_ip", T.StringType(), False),
        T.StructField("window_label", T.StringType(), False),
        T.StructField("window_end_ts", T.TimestampType(), False),
        T.StructField("feature_spec_version", T.StringType(), False),
        T.StructField(bundle.SCORE, T.DoubleType(), False),
        T.StructField(bundle.LABEL, T.IntegerType(), False),
        T.StructField(bundle.MODEL_VERSION, T.StringType(), False),
        T.StructField(bundle.MODEL_NAME, T.StringType(), False),
        T.StructField("inference_ts", T.TimestampType(), False),
        T.StructField("mini_batch_id", T.StringType(), False),
        T.StructField(bundle.RECORD_ID, T.StringType(), False),
        # True where the model was trained on this very window (see if_training window.in_month_days).
        T.StructField("in_sample", T.BooleanType(), False),
        T.StructField(bundle.TOP_FEATURES, T.ArrayType(TOP_FEATURE_TYPE, False), False),
    ]
)
PREDICTION_KEYS = ("host_ip", "window_label", "window_end_ts")
