"""The model's input columns, from the feature catalog (the one list of what FG-A and FG-C provide)."""

from __future__ import annotations

from functools import lru_cache

from ndr_assets.catalog import build_catalog
from ndr_resources.specs import FgCBuilderSpec

MODEL_INPUT_DATASETS = ("fg_a", "fg_c")


@lru_cache(maxsize=16)
def _model_inputs(fg_c_json: str | None) -> dict[str, tuple[str, ...]]:
    fg_c = FgCBuilderSpec.model_validate_json(fg_c_json) if fg_c_json else None
    entries = build_catalog(fg_c_spec=fg_c)
    return {
        dataset: tuple(e.feature_name for e in entries if e.feature_group == dataset and e.is_model_input)
        for dataset in MODEL_INPUT_DATASETS
    }


def model_input_features(fg_c_spec: FgCBuilderSpec | None) -> dict[str, tuple[str, ...]]:
    """Per dataset (``fg_a``, ``fg_c``), the catalog's model-input features in column order."""
    return _model_inputs(fg_c_spec.model_dump_json(by_alias=True) if fg_c_spec else None)


def all_model_input_features(fg_c_spec: FgCBuilderSpec | None) -> list[str]:
    """FG-A's model-input features, then FG-C's (the names are distinct: FG-C's carry their transform)."""
    inputs = model_input_features(fg_c_spec)
    return [*inputs["fg_a"], *inputs["fg_c"]]
