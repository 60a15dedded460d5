"""Hyper-parameter search for the Isolation Forest with a label-free objective.

Candidates are the points of the ``search_space`` grid (keys in the spec's order): ``grid`` tries
them in order, ``random`` in a seeded random order without repetition; at most ``max_trials``.
The clock is read between trials: once ``timeout_seconds`` have passed no further trial starts
(the first trial always runs, so there is a best one) and the result says so.

A trial fits the model as training will: one forest per feature group (``groups``: column positions
of ``z``), combined as in :mod:`ndr_assets.models.serving`.

Objective (higher is better), both parts in [0, 1]:

- ``separation``: how far the top tail of scores stands from the bulk,
  ``raw = (mean of the top 1% of scores - median) / IQR``, normalised as ``raw / (1 + raw)``.
- ``stability``: Spearman rank correlation of the scores of two forests with the same parameters
  and seeds ``seed`` and ``seed + 1`` (clipped at 0: anti-correlated is as useless as unrelated).

``objective = sum(w_k * part_k) / sum(w_k)`` with ``objective_weights``. Scores are the combined
group scores (higher is more anomalous), calibrated and measured on a seeded subsample of at most
:data:`EVALUATION_ROWS` rows. Ties go to the earlier trial.

Fitting dominates the cost (sklearn spends ~2 ms of Python per tree, ~70 groups), so no forest is
fitted twice: a candidate that differs from an earlier one only by more ``n_estimators`` grows the
earlier forests (``warm_start``; sklearn draws the same trees as a fresh fit), and the best trial's
forests of ``seed`` are the model (:func:`calibrated_model`), calibrated on every training row.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import IsolationForest

from ndr_assets.models.serving import calibrate_raw, combine_group_scores, group_scores
from ndr_resources.model_specs import Tuning

OBJECTIVE_PARTS = ("separation", "stability")
TOP_TAIL_SHARE = 0.01
# Scoring dominates a trial's cost (fitting uses max_samples rows per tree; a trial scores every row
# through ~70 group forests, twice): this many rows give a top 1% of 50 scores for the tail mean.
EVALUATION_ROWS = 5_000
# Floor of a group's tail scale (the mean excess of its training top 1 % over the 99th percentile).
MIN_CALIBRATION_SCALE = 1e-9
CALIBRATION_QUANTILE = 0.99
# Training scores kept exactly, counted from the top, as calibration knots (the rest: doubling ranks).
EXACT_TOP_RANKS = 256


@dataclass(frozen=True)
class GroupFit:
    """One forest per group and their raw scores (higher is more anomalous) of the rows ``scored``
    (positions in the fitted matrix)."""

    forests: list[IsolationForest]
    raw: np.ndarray  # groups x scored rows
    scored: np.ndarray


@dataclass(frozen=True)
class TuningResult:
    trials: list[dict]
    best: dict  # the best trial's record
    stopped_early: bool
    stop_reason: str | None
    candidates: int  # points of the search space (before max_trials)
    seconds: float
    best_fit: GroupFit | None = None  # the best trial's forests of the primary seed

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best["params"])

    def to_report(self) -> dict:
        return {
            "trials_run": len(self.trials), "candidates": self.candidates, "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason, "best_trial": self.best["trial"], "best_params": self.best_params,
            "best_objective": self.best["objective"], "seconds": self.seconds,
        }


def candidate_params(tuning: Tuning, *, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The parameter sets to try, in trial order, and how many points the space has."""
    keys = list(tuning.search_space)
    grid = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(tuning.search_space[k] for k in keys))]
    if tuning.method == "random":
        order = np.random.default_rng(seed).permutation(len(grid))
        grid_in_order = [grid[i] for i in order]
    else:
        grid_in_order = grid
    return grid_in_order[: tuning.max_trials], len(grid)


def objective_weights(tuning: Tuning) -> dict[str, float]:
    weights = dict(tuning.objective_weights)
    unknown = sorted(set(weights) - set(OBJECTIVE_PARTS))
    if unknown:
        raise ValueError(f"tuning.objective_weights names unknown part(s) {unknown}; known: {list(OBJECTIVE_PARTS)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"tuning.objective_weights must be non-negative with a positive sum, got {weights}")
    return {part: float(weights.get(part, 0.0)) for part in OBJECTIVE_PARTS}


def forest_for(params: dict[str, Any], n_rows: int, seed: int) -> IsolationForest:
    """An unfitted forest; ``max_samples`` above the row count is capped to it (sklearn would warn)."""
    kwargs = dict(params)
    max_samples = kwargs.get("max_samples", "auto")
    if isinstance(max_samples, int) and not isinstance(max_samples, bool):
        kwargs["max_samples"] = min(max_samples, n_rows)
    return IsolationForest(random_state=seed, n_jobs=1, **kwargs)


def fit_group_forests(z: np.ndarray, groups: list[tuple[str, list[int]]], params: dict[str, Any], seed: int,
                      calibration: np.ndarray | None = None) -> tuple[list[IsolationForest], list[dict], np.ndarray]:
    """One fitted forest per group and its calibration (the bundle's ``model`` and ``groups``), and
    the combined scores of the calibration rows (computed from the raw scores the calibration used,
    so no second scoring pass).

    A group's calibration is the tail of its raw scores on ``calibration`` (default ``z``), see
    :func:`tail_calibration`: calibrated 2 means one row in a hundred scores as high.
    """
    forests = _fitted_forests(z, groups, params, seed)
    described, combined = calibrate(_raw_scores(forests, groups, z if calibration is None else calibration), groups)
    return forests, described, combined


def _fitted_forests(z: np.ndarray, groups: list[tuple[str, list[int]]], params: dict[str, Any],
                    seed: int) -> list[IsolationForest]:
    return [forest_for(params, z.shape[0], seed).fit(z[:, columns]) for _, columns in groups]


def _raw_scores(forests: list[IsolationForest], groups: list[tuple[str, list[int]]], rows: np.ndarray) -> np.ndarray:
    """Raw scores (groups x rows, higher is more anomalous) of each group's forest."""
    return np.stack([-forest.score_samples(rows[:, columns]) for forest, (_, columns) in zip(forests, groups, strict=True)])


def calibrate(raw: np.ndarray, groups: list[tuple[str, list[int]]]) -> tuple[list[dict], np.ndarray]:
    """The bundle's ``groups`` calibrated on raw scores (groups x rows) and those rows' combined scores."""
    described = []
    calibrated = np.empty_like(raw, dtype=np.float64)
    for g, (name, columns) in enumerate(groups):
        group = {"name": name, "columns": list(columns), **tail_calibration(raw[g])}
        described.append(group)
        calibrated[g] = calibrate_raw(raw[g], group)  # what serving.group_scores computes
    return described, combine_group_scores(calibrated)


def tail_calibration(raw: np.ndarray) -> dict:
    """``knots``, ``levels`` and ``tail_scale`` of one group's training raw scores (see serving).

    Knots are the distinct training scores at ranks 0 .. EXACT_TOP_RANKS - 1 from the top (every
    one that decides a top host-window), then at doubling ranks (512, 1024, ...), and the smallest,
    so a bundle holds ~25 numbers per group whatever the training size. A knot's level is
    ``-log10(count(raw >= knot) / (n + 1))``.
    """
    ascending = np.sort(np.asarray(raw, dtype=np.float64))
    n = ascending.size
    ranks = list(range(min(n, EXACT_TOP_RANKS)))
    rank = EXACT_TOP_RANKS
    while rank < n:
        ranks.append(rank)
        rank *= 2
    ranks.append(n - 1)
    knots = np.unique(ascending[n - 1 - np.asarray(ranks)])
    at_or_above = n - np.searchsorted(ascending, knots, side="left")
    levels = -np.log10(at_or_above / (n + 1))
    q99 = float(np.quantile(ascending, CALIBRATION_QUANTILE))
    tail_scale = float(max(ascending[ascending >= q99].mean() - q99, MIN_CALIBRATION_SCALE))
    return {"knots": knots.tolist(), "levels": levels.tolist(), "tail_scale": tail_scale}


def calibrated_model(z: np.ndarray, groups: list[tuple[str, list[int]]],
                     fit: GroupFit) -> tuple[list[IsolationForest], list[dict], np.ndarray]:
    """:func:`fit_group_forests` of every row of ``z`` from forests already fitted on ``z``: only the
    rows ``fit`` has not scored are scored."""
    raw = np.empty((len(groups), z.shape[0]), dtype=np.float64)
    raw[:, fit.scored] = fit.raw
    rest = np.setdiff1d(np.arange(z.shape[0]), fit.scored)
    if rest.size:
        for g, (forest, (_, columns)) in enumerate(zip(fit.forests, groups, strict=True)):
            raw[g, rest] = -forest.score_samples(z[np.ix_(rest, columns)])
    described, combined = calibrate(raw, groups)
    return fit.forests, described, combined


def _grown_or_fitted(z: np.ndarray, groups: list[tuple[str, list[int]]], params: dict[str, Any], seed: int,
                     scored: np.ndarray, earlier: dict[tuple, tuple[int, list[IsolationForest]]]) -> GroupFit:
    """The trial's forests: the earlier trial's of the same seed and other parameters grown to
    ``n_estimators`` when it had fewer (or the same) trees, else a fresh fit. ``earlier`` is updated."""
    trees = params.get("n_estimators")
    family = (seed, tuple(sorted((k, repr(v)) for k, v in params.items() if k != "n_estimators")))
    known = earlier.get(family)
    if isinstance(trees, int) and known is not None and known[0] <= trees:
        forests = known[1] if known[0] == trees else [copy.deepcopy(forest) for forest in known[1]]
        for forest, (_, columns) in zip(forests, groups, strict=True):
            if forest.n_estimators < trees:
                forest.set_params(n_estimators=trees, warm_start=True).fit(z[:, columns])
                forest.set_params(warm_start=False)
    else:
        forests = _fitted_forests(z, groups, params, seed)
    if isinstance(trees, int):
        earlier[family] = (trees, forests)
    return GroupFit(forests=forests, raw=_raw_scores(forests, groups, z[scored]), scored=scored)


def ensemble_scores(z: np.ndarray, forests: list[IsolationForest], groups: list[dict]) -> np.ndarray:
    return combine_group_scores(group_scores(z, {"model": forests, "groups": groups}))


def separation(scores: np.ndarray) -> tuple[float, float]:
    """(raw, normalised) distance of the top 1% of scores from the median, in IQRs."""
    scores = np.asarray(scores, dtype=np.float64)
    top_n = max(1, int(np.ceil(TOP_TAIL_SHARE * scores.size)))
    top_mean = np.sort(scores)[-top_n:].mean()
    q25, median, q75 = np.quantile(scores, [0.25, 0.5, 0.75])
    iqr = q75 - q25
    if iqr <= 0:
        # Every score in the bulk is the same: no tail can be told from it.
        return 0.0, 0.0
    raw = max(0.0, (top_mean - median) / iqr)
    return float(raw), float(raw / (1.0 + raw))


def rank_stability(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    if np.ptp(scores_a) == 0 or np.ptp(scores_b) == 0:
        return 0.0
    rho = spearmanr(scores_a, scores_b).statistic
    return float(max(0.0, rho)) if np.isfinite(rho) else 0.0


def tune(z: np.ndarray, tuning: Tuning, *, seed: int, groups: list[tuple[str, list[int]]] | None = None,
         trial_prefix: str = "trial", clock: Callable[[], float] = time.perf_counter,
         evaluation_rows: int = EVALUATION_ROWS) -> TuningResult:
    """Search the forests' parameters on the preprocessed, selected matrix ``z`` (``groups``: the
    feature groups, default one group of every column; trials are scored on ``evaluation_rows``)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise ValueError(f"tuning needs at least 2 rows and 1 feature, got shape {z.shape}")
    groups = groups or [("all", list(range(z.shape[1])))]
    weights = objective_weights(tuning)
    candidates, space_size = candidate_params(tuning, seed=seed)
    rng = np.random.default_rng(seed)
    evaluation = (np.arange(z.shape[0]) if z.shape[0] <= evaluation_rows
                  else np.sort(rng.choice(z.shape[0], evaluation_rows, replace=False)))
    earlier: dict[tuple, tuple[int, list[IsolationForest]]] = {}
    best_fit: GroupFit | None = None
    best_objective = float("-inf")

    started = clock()
    trials: list[dict] = []
    stop_reason = None
    for number, params in enumerate(candidates):
        elapsed = clock() - started
        if trials and elapsed >= tuning.timeout_seconds:
            stop_reason = (f"timeout: {elapsed:.1f} s >= {tuning.timeout_seconds:g} s after {len(trials)} of "
                           f"{len(candidates)} trials")
            break
        trial_started = clock()
        fits = [_grown_or_fitted(z, groups, params, trial_seed, evaluation, earlier) for trial_seed in (seed, seed + 1)]
        scores, other = (calibrate(fit.raw, groups)[1] for fit in fits)
        separation_raw, separation_part = separation(scores)
        stability_part = rank_stability(scores, other)
        parts = {"separation": separation_part, "stability": stability_part}
        objective = sum(weights[p] * parts[p] for p in OBJECTIVE_PARTS) / sum(weights.values())
        trials.append({
            "trial": f"{trial_prefix}-{number:03d}",
            "number": number,
            "params": dict(params),
            "objective": float(objective),
            "separation": separation_part,
            "separation_raw": separation_raw,
            "stability": stability_part,
            "seconds": round(clock() - trial_started, 4),
        })
        if best_fit is None or objective > best_objective:  # ties stay with the earlier trial, as `best` below
            best_fit, best_objective = fits[0], objective
    best = max(trials, key=lambda t: (t["objective"], -t["number"]))
    return TuningResult(trials=trials, best=best, stopped_early=stop_reason is not None, stop_reason=stop_reason,
                        candidates=space_size, seconds=round(clock() - started, 4), best_fit=best_fit)
