"""Offline model experiments on a kept demo home: retrain the month's model, rank the held-out day's attacks.

    .venv/bin/ndr demo --home /tmp/demo --scenarios seeds/scenarios/stealthy.json   # once, ~13 min
    .venv/bin/python -m benchmarks.retrain_rank --home /tmp/demo --seeds 1,2,3      # ~40 s per (project, seed)

A change to training or serving (``ndr_assets.models``) is tried here in about a minute instead of a
whole demo: the demo's published FG-A and FG-C rows of the training day, restricted to the window
range the demo's model was trained on, go through ``train_model`` with the project's own
``if_training`` spec (``sampling.seed`` varied: ranks move by about x2 with the forest seed alone,
so decide over seeds), and the held-out day is scored with the serving functions. Per scenario of
the generator's ground truth it prints ROC-AUC (the scenario's host-windows against the unlabelled
ones) / best day-rank among all host-windows / best rank among the unlabelled ones and the
scenario's own (other attacks' windows left out). Figures read only the demo's files; nothing is
written. Not part of the test suite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ndr_assets.models.artifacts import load_bundle
from ndr_assets.models.features import all_model_input_features, model_input_features
from ndr_assets.models.serving import combine_group_scores, group_scores, preprocess
from ndr_assets.models.training import train_model
from ndr_assets.transforms.windows import SLICE_MINUTES
from ndr_jobs.demo import DEMO_BUCKET, DEMO_TENANTS, FEATURE_SPEC_VERSION, project_name_for
from ndr_jobs.synthetic.writers import ground_truth_uri
from ndr_resources.environments import LocalPaths
from ndr_resources.lake import local_path_for
from ndr_resources.model_specs import IfTrainingSpec
from ndr_resources.parameter_store.sqlite import SqliteParameterStore
from ndr_resources.specs import FgCBuilderSpec

KEYS = ["host_ip", "window_label", "window_end_ts"]


def _read(folder: Path, columns: list[str]) -> pd.DataFrame:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {folder}: run `ndr demo --home ...` first")
    return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)


def load_project(home: Path, org1: str, org2: str, month: str, train_day: str, test_day: str) -> dict:
    project = project_name_for(org1, org2)
    paths = LocalPaths.resolve(home)
    store = SqliteParameterStore(path=str(paths.parameters_db))
    spec = store.load_typed_spec(IfTrainingSpec, project, "if_training", FEATURE_SPEC_VERSION)
    fg_c_spec = store.load_typed_spec(FgCBuilderSpec, project, "fg_c_builder", FEATURE_SPEC_VERSION)
    data = paths.lake_root / DEMO_BUCKET / "projects" / project / "versions" / FEATURE_SPEC_VERSION / "data"
    inputs = model_input_features(fg_c_spec)
    bundles = sorted((data / "training" / "if_training" / "artifacts" / f"month={month}").rglob("model.tar.gz"))
    if not bundles:
        raise SystemExit(f"{project}: no model bundle for month {month} under {data}")
    trained_on = load_bundle(bundles[-1].read_bytes())["trained_on"]

    def day_frame(day: str) -> pd.DataFrame:
        fg_a = _read(data / "features" / "fg_a" / f"dt={day}", KEYS + list(inputs["fg_a"]))
        fg_c = _read(data / "features" / "fg_c" / f"dt={day}", KEYS + list(inputs["fg_c"]))
        frame = fg_a.merge(fg_c, on=KEYS)
        frame["window_end_ts"] = pd.to_datetime(frame["window_end_ts"]).dt.tz_localize(None)
        return frame

    train = day_frame(train_day)
    first = pd.Timestamp(trained_on["first_window_end"]).tz_localize(None)
    last = pd.Timestamp(trained_on["last_window_end"]).tz_localize(None)
    train = train[train.window_end_ts.between(first, last)].reset_index(drop=True)
    test = day_frame(test_day)
    day_start = pd.Timestamp(test_day)
    # A day's windows end in (00:00, 24:00]: the evaluation's day of a host-window.
    test = test[(test.window_end_ts > day_start) & (test.window_end_ts <= day_start + pd.Timedelta(days=1))]
    truth = pd.read_csv(local_path_for(ground_truth_uri(DEMO_BUCKET, org1, org2), paths.lake_root))
    truth["window_end_ts"] = pd.to_datetime(truth.window_start).dt.tz_localize(None) + pd.Timedelta(minutes=SLICE_MINUTES)
    labelled = test.reset_index(drop=True).merge(
        truth[["host_ip", "window_end_ts", "scenario_name"]].drop_duplicates(["host_ip", "window_end_ts"]), how="left"
    )
    return {"project": project, "spec": spec, "features": all_model_input_features(fg_c_spec), "train": train,
            "test": labelled, "trained_on": trained_on, "month": month}


def scenario_ranks(score: np.ndarray, scenario: pd.Series) -> dict[str, str]:
    """``scenario -> "ROC-AUC/day-rank/alone-rank"`` (ranks count every row scoring at least as high)."""
    negative = scenario.isna().to_numpy()
    out = {}
    for name in sorted(scenario.dropna().unique()):
        positive = (scenario == name).to_numpy()
        best = score[positive].max()
        day_rank = int((score >= best).sum())
        alone_rank = int((score[negative | positive] >= best).sum())
        roc = roc_auc_score(positive[positive | negative], score[positive | negative])
        out[name] = f"{roc:.3f}/{day_rank}/{alone_rank}"
    return out


def retrain_and_rank(project: dict, seed: int | None) -> dict[str, str]:
    spec = project["spec"]
    if seed is not None:
        spec = spec.model_copy(update={"sampling": spec.sampling.model_copy(update={"seed": seed})})
    bundle = train_model(project["train"], project["features"], spec, month=project["month"],
                         trained_on=project["trained_on"]).bundle
    test = project["test"]
    z = preprocess(test[bundle["features"]].to_numpy(dtype=np.float64), bundle["preprocessing"])
    return scenario_ranks(combine_group_scores(group_scores(z, bundle)), test["scenario_name"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="an NDR home kept by `ndr demo --home DIR`")
    parser.add_argument("--seeds", default="", help="comma-separated sampling seeds (default: the spec's)")
    parser.add_argument("--month", default="2026-04", help="the model month the demo trained")
    parser.add_argument("--train-day", default="2026-04-01")
    parser.add_argument("--test-day", default="2026-04-02", help="the held-out day")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s] or [None]
    projects = [load_project(args.home, org1, org2, args.month, args.train_day, args.test_day) for org1, org2 in DEMO_TENANTS]
    print("per scenario: ROC-AUC / best day-rank / best rank among unlabelled + own windows")
    for seed in seeds:
        for project in projects:
            ranks = retrain_and_rank(project, seed)
            print(f"seed {seed if seed is not None else 'spec'} {project['project']}: "
                  + ", ".join(f"{name} {cell}" for name, cell in ranks.items()), flush=True)


if __name__ == "__main__":
    main()
