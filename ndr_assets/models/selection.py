"""Feature selection for the Isolation Forest, on the preprocessed (scaled, clipped) matrix.

Three stages, in order, each recording every feature it drops and why:

1. ``variance``: a column whose variance is below ``variance_threshold`` cannot split anything
   ("constant").
2. ``correlation``: a column whose |Pearson r| with an earlier *kept* column exceeds
   ``corr_threshold`` adds no new direction; the earlier one (catalogue order) is kept
   ("correlated with X, r=0.99"). The default threshold 1.0 keeps every column: on the demo's data
   this stage dropped 266 of 946 inputs and the attacks' best day-ranks went from 12-37 to 12-104.
3. ``stability``: ``stability_runs`` Isolation Forests with seeds ``seed, seed+1, ...``; in each run
   a feature is *informative* when its contribution to isolation is at least half the mean
   contribution of the candidates. A feature informative in fewer than ``stability_min_share`` of
   the runs is dropped ("unstable"). Off with ``stability_runs`` 0, the default: one global forest's
   view of what is informative drops the columns a per-metric forest isolates attacks with (demo
   data: best day-ranks 20-37 with the stage off, 53-133 with it on).

   Contribution, by default, is read from the fitted trees: each split on the feature adds the
   share of the sample reaching that node times how lopsidedly it cuts it
   (``1 - min(left, right) / (n / 2)``). Isolation Forest draws split features uniformly, so
   every feature is *used* about equally; what differs is whether its splits isolate a few points
   (short paths, the anomaly signal) or halve the bulk. With ``permutation_eval`` it is instead
   the mean |score change| when the column is permuted (slower: one scoring per feature per run).

The stability stage never leaves fewer than :data:`MIN_KEPT_FEATURES` (or all candidates when
there are fewer): the most often informative unstable features are kept back, and the report
says so. Everything is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from ndr_resources.model_specs import FeatureSelection

# Fewer features than this would make the forest's random feature choice degenerate.
MIN_KEPT_FEATURES = 3
# A feature is informative in a run when its contribution reaches this share of the mean contribution.
INFORMATIVE_SHARE_OF_MEAN = 0.5
# Rows the correlation and stability stages look at (a seeded subsample beyond this): r and the
# trees' split structure are stable well before it, and it bounds the cost on 1M-row samples.
SELECTION_ROWS = 100_000
STABILITY_TREES = 100
STABILITY_MAX_SAMPLES = 256
PERMUTATION_ROWS = 2_000


@dataclass(frozen=True)
class SelectionResult:
    kept: list[str]
    # One record per dropped feature: {"feature", "stage", "reason"}.
    dropped: list[dict]
    # Per candidate of the stability stage: share of runs in which it was informative.
    stability_share: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_report(self) -> dict:
        return {
            "kept": list(self.kept),
            "dropped": [dict(d) for d in self.dropped],
            "stability_share": dict(self.stability_share),
            "notes": list(self.notes),
        }


def select_features(z: np.ndarray, features: list[str], selection: FeatureSelection, *, seed: int) -> SelectionResult:
    """Which columns of the preprocessed matrix ``z`` (rows x ``features``) the model should use."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(features):
        raise ValueError(f"z has shape {z.shape} but {len(features)} feature names were given")
    if not selection.enabled:
        return SelectionResult(kept=list(features), dropped=[], notes=["feature selection disabled"])
    if z.shape[0] < 2:
        raise ValueError(f"feature selection needs at least 2 rows, got {z.shape[0]}")

    rows = _subsample_rows(z.shape[0], SELECTION_ROWS, seed)
    zs = z[rows] if rows is not None else z
    dropped: list[dict] = []

    variances = zs.var(axis=0)
    candidates: list[int] = []
    for j, name in enumerate(features):
        if variances[j] < selection.variance_threshold:
            dropped.append({"feature": name, "stage": "variance",
                            "reason": f"constant (variance {variances[j]:.3g} < {selection.variance_threshold:g})"})
        else:
            candidates.append(j)
    if not candidates:
        return SelectionResult(kept=[], dropped=dropped, notes=["every feature is constant"])

    kept_idx = _drop_correlated(zs, features, candidates, selection.corr_threshold, dropped)

    shares: dict[str, float] = {}
    notes: list[str] = []
    if selection.stability_runs == 0:
        notes.append("stability stage off (stability_runs 0)")
    elif len(kept_idx) > MIN_KEPT_FEATURES:
        share = _stability_share(zs, kept_idx, selection, seed)
        shares = {features[j]: float(s) for j, s in zip(kept_idx, share, strict=True)}
        unstable = [j for j, s in zip(kept_idx, share, strict=True) if s < selection.stability_min_share]
        # Keep back the most often informative of the unstable ones when too few would remain.
        room = len(kept_idx) - MIN_KEPT_FEATURES
        if len(unstable) > room:
            unstable_sorted = sorted(unstable, key=lambda j: (shares[features[j]], -j))
            kept_back = unstable_sorted[room:]
            unstable = unstable_sorted[:room]
            notes.append(
                f"kept {[features[j] for j in sorted(kept_back)]} although informative in fewer than "
                f"{selection.stability_min_share:.0%} of runs: at least {MIN_KEPT_FEATURES} features must remain"
            )
        for j in sorted(unstable):
            dropped.append({"feature": features[j], "stage": "stability",
                            "reason": f"unstable (informative in {shares[features[j]]:.0%} of "
                                      f"{selection.stability_runs} runs < {selection.stability_min_share:.0%})"})
        kept_idx = [j for j in kept_idx if j not in set(unstable)]
    else:
        notes.append(f"stability stage skipped: only {len(kept_idx)} features left (minimum {MIN_KEPT_FEATURES})")

    return SelectionResult(kept=[features[j] for j in kept_idx], dropped=dropped, stability_share=shares, notes=notes)


def _subsample_rows(n: int, limit: int, seed: int) -> np.ndarray | None:
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _drop_correlated(zs: np.ndarray, features: list[str], candidates: list[int], threshold: float,
                     dropped: list[dict]) -> list[int]:
    corr = np.corrcoef(zs[:, candidates], rowvar=False)
    corr = np.atleast_2d(corr)
    kept_pos: list[int] = []
    for pos, j in enumerate(candidates):
        partner = None
        for k in kept_pos:
            if abs(corr[pos, k]) > threshold:
                partner = k
                break
        if partner is None:
            kept_pos.append(pos)
        else:
            dropped.append({"feature": features[j], "stage": "correlation",
                            "reason": f"correlated with {features[candidates[partner]]}, r={corr[pos, partner]:.2f}"})
    return [candidates[p] for p in kept_pos]


def _stability_share(zs: np.ndarray, kept_idx: list[int], selection: FeatureSelection, seed: int) -> np.ndarray:
    x = zs[:, kept_idx]
    informative_runs = np.zeros(len(kept_idx))
    for run in range(selection.stability_runs):
        forest = IsolationForest(
            n_estimators=STABILITY_TREES, max_samples=min(STABILITY_MAX_SAMPLES, x.shape[0]), random_state=seed + run
        ).fit(x)
        if selection.permutation_eval:
            contribution = _permutation_contribution(forest, x, seed + run)
        else:
            contribution = _split_contribution(forest, x.shape[1])
        mean = contribution.mean()
        if mean > 0:
            informative_runs += contribution >= INFORMATIVE_SHARE_OF_MEAN * mean
    return informative_runs / selection.stability_runs


def _split_contribution(forest: IsolationForest, n_features: int) -> np.ndarray:
    """Per feature: sum over splits of (node share of the tree's sample) x (how lopsided the cut is)."""
    contribution = np.zeros(n_features)
    for tree, tree_features in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = tree.tree_
        internal = t.children_left >= 0
        n_node = t.n_node_samples.astype(np.float64)
        left = n_node[t.children_left[internal]]
        right = n_node[t.children_right[internal]]
        node_n = n_node[internal]
        lopsided = 1.0 - np.minimum(left, right) / (node_n / 2.0)
        weight = node_n / n_node[0] * lopsided
        # Tree-local feature numbers -> the forest's column numbers (max_features < 1 draws a subset).
        columns = np.asarray(tree_features)[t.feature[internal]]
        np.add.at(contribution, columns, weight)
    return contribution


def _permutation_contribution(forest: IsolationForest, x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.choice(x.shape[0], size=min(PERMUTATION_ROWS, x.shape[0]), replace=False)
    sample = x[rows]
    reference = forest.score_samples(sample)
    contribution = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        permuted = sample.copy()
        permuted[:, j] = rng.permutation(permuted[:, j])
        contribution[j] = np.abs(forest.score_samples(permuted) - reference).mean()
    return contribution
