"""Training of a month's Isolation Forest on a (sampled) pandas frame of FG-A + FG-C rows.

``train_model`` runs, on one machine:

1. **preprocessing fit** (:func:`fit_preprocessing`): per feature a centre and a scale that
   :func:`ndr_assets.models.serving.preprocess` (the one apply function, used by serving too)
   consumes, and the training median in raw units (the bundle's ``baseline``);
2. the preprocessed matrix, through ``preprocess`` itself, so training sees exactly what
   serving will (non-finite values become the centre there; they are counted in the report);
3. feature selection (:mod:`ndr_assets.models.selection`);
4. the feature groups (:mod:`ndr_assets.models.groups`: one per FG-A metric) and the parameter
   search (:mod:`ndr_assets.models.tuning`);
5. the final forests (one per group) with the best parameters on the selected features, calibrated
   on the training rows, the threshold (the ``label_quantile`` quantile of the training scores), the
   report and the score histogram.

Every random step is seeded with ``spec.sampling.seed``: the same frame and spec give the same
bundle.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ndr_assets.models.bundle import BUNDLE_FORMAT, BUNDLE_KEYS, preprocess
from ndr_assets.models.groups import group_columns
from ndr_assets.models.selection import select_features
from ndr_assets.models.serving import baseline_group_scores
from ndr_assets.models.tuning import calibrated_model, tune
from ndr_resources.model_specs import IfTrainingSpec, Preprocessing

# Gaussian consistency constants: 1.4826 * MAD and IQR / 1.349 estimate sigma for normal data.
MAD_TO_SIGMA = 1.4826
IQR_TO_SIGMA = 1.349
TRAINED_ON_KEYS = ("first_window_end", "last_window_end", "rows", "sampled_rows", "sampling")
HISTOGRAM_BINS = 60


@dataclass(frozen=True)
class PreprocessingFit:
    """What the preprocessing fit learned, per feature, in the order of ``features``."""

    features: list[str]
    center: list[float]
    scale: list[float]
    baseline: list[float]  # training median in raw units
    # Which estimate each scale is: "mad", "iqr", "std" or "unit" (the 1.0 fallback; "none" scaling too).
    scale_source: list[str]
    finite_values: list[int]  # finite values each feature's fit saw

    def bundle_preprocessing(self, settings: Preprocessing, columns: list[int] | None = None) -> dict:
        """The bundle's ``preprocessing`` dict (for the given column positions, default all)."""
        pick = range(len(self.features)) if columns is None else columns
        return {
            "eps": float(settings.eps),
            "scaling_method": settings.scaling_method,
            "outlier_method": settings.outlier_method,
            "z_max": float(settings.z_max),
            "deviations": settings.deviations,
            "center": [float(self.center[j]) for j in pick],
            "scale": [float(self.scale[j]) for j in pick],
        }


def fit_preprocessing(values: np.ndarray, features: list[str], settings: Preprocessing) -> PreprocessingFit:
    """Per-feature centre/scale of ``settings.scaling_method``; NaN and +-inf are left out of the fit.

    robust: centre = median, scale = 1.4826 * MAD, else IQR / 1.349, else std, else 1.0 (each
    fallback taken when the estimate is below ``eps``: a feature that is mostly one value has
    MAD 0 but may still vary). standard: mean / std (else 1.0). none: 0 / 1. A feature with no
    finite value gets centre 0, scale 1 and baseline 0 (``train_model`` drops it).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features):
        raise ValueError(f"values have shape {x.shape} but {len(features)} feature names were given")
    center, scale, baseline, source, finite_counts = [], [], [], [], []
    for j in range(x.shape[1]):
        column = x[:, j]
        finite = column[np.isfinite(column)]
        finite_counts.append(int(finite.size))
        median = float(np.median(finite)) if finite.size else 0.0
        c, s, how = _center_and_scale(finite, median, settings)
        center.append(c)
        scale.append(s)
        source.append(how)
        baseline.append(median)
    return PreprocessingFit(list(features), center, scale, baseline, source, finite_counts)


def _center_and_scale(finite: np.ndarray, median: float, settings: Preprocessing) -> tuple[float, float, str]:
    eps = settings.eps
    if finite.size == 0 or settings.scaling_method == "none":
        return 0.0, 1.0, "unit"
    std = float(finite.std())
    if settings.scaling_method == "standard":
        return (float(finite.mean()), std, "std") if std >= eps else (float(finite.mean()), 1.0, "unit")
    mad = MAD_TO_SIGMA * float(np.median(np.abs(finite - median)))
    if mad >= eps:
        return median, mad, "mad"
    q25, q75 = np.quantile(finite, [0.25, 0.75])
    iqr = float(q75 - q25) / IQR_TO_SIGMA
    if iqr >= eps:
        return median, iqr, "iqr"
    if std >= eps:
        return median, std, "std"
    return median, 1.0, "unit"


@dataclass(frozen=True)
class TrainingResult:
    bundle: dict  # keys exactly bundle.BUNDLE_KEYS
    report: dict  # JSON-able
    trials: list[dict]
    histogram_png: bytes


def train_model(frame: pd.DataFrame, feature_columns: list[str], spec: IfTrainingSpec, *, month: str,
                trained_on: dict) -> TrainingResult:
    """Fit preprocessing, select features, tune and fit the month's forest; see the module doc."""
    started = time.perf_counter()
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    missing_keys = [k for k in TRAINED_ON_KEYS if k not in trained_on]
    extra_keys = sorted(set(trained_on) - set(TRAINED_ON_KEYS))
    if missing_keys or extra_keys:
        raise ValueError(f"trained_on must have exactly the keys {list(TRAINED_ON_KEYS)}; "
                         f"missing {missing_keys}, unknown {extra_keys}")
    values = _feature_matrix(frame, feature_columns)
    seed = spec.sampling.seed
    settings = spec.preprocessing

    fit = fit_preprocessing(values, feature_columns, settings)
    non_finite = {name: int(values.shape[0] - n) for name, n in zip(feature_columns, fit.finite_values, strict=True)}
    z_all = preprocess(values, fit.bundle_preprocessing(settings))
    del values  # the raw copy is not needed past this point; 1M x 100 doubles is 800 MB

    no_value = [j for j, n in enumerate(fit.finite_values) if n == 0]
    usable = [j for j in range(len(feature_columns)) if j not in set(no_value)]
    dropped = [{"feature": feature_columns[j], "stage": "input", "reason": "no finite value in the training rows"}
               for j in no_value]
    if not usable:
        raise ValueError(f"no usable feature: none of the {len(feature_columns)} feature columns has a finite value")

    selection = select_features(z_all[:, usable], [feature_columns[j] for j in usable], spec.feature_selection, seed=seed)
    dropped += selection.dropped
    if not selection.kept:
        raise ValueError(f"no usable feature: all {len(usable)} features with values are constant after preprocessing "
                         f"(variance < {spec.feature_selection.variance_threshold:g})")
    position = {name: j for j, name in enumerate(feature_columns)}
    kept_columns = [position[name] for name in selection.kept]
    z = np.ascontiguousarray(z_all[:, kept_columns])
    del z_all

    groups = group_columns(list(selection.kept), spec.feature_groups)
    tuning = tune(z, spec.tuning, seed=seed, groups=groups, trial_prefix=spec.experiments.trial_prefix)
    forests, calibrated_groups, scores = calibrated_model(z, groups, tuning.best_fit)
    kept_preprocessing = fit.bundle_preprocessing(settings, kept_columns)
    baseline = [float(fit.baseline[j]) for j in kept_columns]
    z_base = preprocess(np.asarray(baseline, dtype=np.float64)[None, :], kept_preprocessing)[0]
    for group, value in zip(calibrated_groups, baseline_group_scores({"model": forests, "groups": calibrated_groups}, z_base),
                            strict=True):
        group["baseline"] = float(value)  # what explanations subtract (serving.baseline_group_scores)
    threshold = float(np.quantile(scores, spec.label_quantile))

    bundle = {
        "format": BUNDLE_FORMAT,
        "model_name": spec.model.name,
        "model_version": spec.model.version,
        "month": month,
        "features": list(selection.kept),
        "preprocessing": kept_preprocessing,
        "baseline": baseline,
        "model": forests,
        "groups": calibrated_groups,
        "score_threshold": threshold,
        "trained_on": dict(trained_on),
    }
    assert tuple(bundle) == BUNDLE_KEYS, "bundle keys drifted from bundle.BUNDLE_KEYS"
    score_summary = _score_summary(scores, threshold, spec.label_quantile)
    report = {
        "model_name": spec.model.name,
        "model_version": spec.model.version,
        "month": month,
        "rows": int(z.shape[0]),
        "seed": seed,
        "trained_on": _jsonable(trained_on),
        "preprocessing": {
            **{k: v for k, v in fit.bundle_preprocessing(settings).items() if k not in ("center", "scale")},
            "scale_sources": {how: fit.scale_source.count(how) for how in sorted(set(fit.scale_source))},
            "non_finite_values": sum(non_finite.values()),
            "non_finite_by_feature": {name: n for name, n in non_finite.items() if n},
            "imputed_to": "centre (z = 0)",
        },
        "features": {
            "input": len(feature_columns),
            "kept": list(selection.kept),
            "dropped": dropped,
            "stability_share": selection.stability_share,
            "notes": selection.notes,
        },
        "groups": {
            "by": spec.feature_groups, "count": len(groups),
            "features": {name: len(columns) for name, columns in groups},
        },
        "tuning": tuning.to_report(),
        "trials": tuning.trials,
        "best_params": tuning.best_params,
        "score_summary": score_summary,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return TrainingResult(bundle=bundle, report=report, trials=tuning.trials,
                          histogram_png=score_histogram_png(scores, threshold, title=f"{spec.model.name} {month}"))


def _feature_matrix(frame: pd.DataFrame, feature_columns: list[str]) -> np.ndarray:
    if not feature_columns:
        raise ValueError("no feature columns given")
    duplicated = sorted({c for c in feature_columns if feature_columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"feature columns listed more than once: {duplicated}")
    missing = [c for c in feature_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the training frame: {missing}")
    if len(frame) == 0:
        raise ValueError("the training frame has no rows")
    not_numeric = [c for c in feature_columns
                   if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if not_numeric:
        raise ValueError(f"feature columns are not numeric: {not_numeric}")
    # Nullable pandas dtypes carry pd.NA: to_numpy with na_value turns it into NaN (imputed later).
    return frame[feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)


def _score_summary(scores: np.ndarray, threshold: float, label_quantile: float) -> dict:
    p50, p99 = np.quantile(scores, [0.5, 0.99])
    return {
        "min": float(scores.min()), "p50": float(p50), "p99": float(p99), "max": float(scores.max()),
        "mean": float(scores.mean()), "std": float(scores.std()), "threshold": threshold,
        "label_quantile": label_quantile, "labelled_anomalous": int((scores >= threshold).sum()),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # timestamps and the like: their ISO-ish text


def score_histogram_png(scores: np.ndarray, threshold: float, *, title: str = "training scores") -> bytes:
    """PNG of the score histogram with the threshold marked (Agg canvas: no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.hist(scores, bins=HISTOGRAM_BINS, color="#4C72B0")
    axes.axvline(threshold, color="#C44E52", linestyle="--", label=f"threshold {threshold:.4f}")
    axes.set_yscale("log")  # the tail is what matters and it is a few rows
    axes.set_xlabel("prediction_score (top calibrated group score)")
    axes.set_ylabel("rows (log)")
    axes.set_title(title)
    axes.legend(loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
