"""The prediction-feature join (spec 003 item 14): predictions inner-joined with FG-A and FG-C."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ndr_resources.errors import InputDataError

KEYS = ["host_ip", "window_label", "window_end_ts"]
LOST_EXAMPLES = 5


def join_predictions_with_features(preds: DataFrame, fg_a: DataFrame, fg_c: DataFrame, feature_spec_version: str) -> DataFrame:
    """Predictions inner-joined with FG-A and FG-C on the keys and ``feature_spec_version``.

    A prediction without its feature row means the features were re-published or lost after scoring:
    the join fails naming the windows and the dataset, instead of silently dropping the score. Both
    datasets are checked by ONE aggregation over the predictions left-joined with the feature keys.
    """
    keyed = [*KEYS, "feature_spec_version"]
    fg_a = fg_a.withColumn("feature_spec_version", F.lit(feature_spec_version))
    fg_c = fg_c.withColumn("feature_spec_version", F.lit(feature_spec_version))
    found = preds.select(*keyed)
    for dataset, frame in (("fg_a", fg_a), ("fg_c", fg_c)):
        found = found.join(frame.select(*keyed, F.lit(True).alias(f"__has_{dataset}")), keyed, "left")
    lost = found.agg(*[
        F.slice(F.array_sort(F.collect_set(F.when(F.col(f"__has_{dataset}").isNull(), F.col("window_end_ts")))),
                1, LOST_EXAMPLES).alias(dataset)
        for dataset in ("fg_a", "fg_c")
    ]).first()
    for dataset in ("fg_a", "fg_c"):
        lost_windows = [str(ts) for ts in lost[dataset]]
        if lost_windows:
            raise InputDataError(dataset, f"predictions of window(s) ending {lost_windows} have no {dataset} row "
                                          f"(joined on {keyed}); re-run predictions for them")
    overlap = (set(fg_a.columns) & set(fg_c.columns)) - set(keyed)
    fg_c = fg_c.drop(*overlap)  # FG-C repeats none of FG-A's features; any shared helper column comes from FG-A
    return preds.join(fg_a, keyed, "inner").join(fg_c, keyed, "inner")
