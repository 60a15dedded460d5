"""The model archive: layout SageMaker expects, exact scoring round trip, safe extraction, the histogram."""

from __future__ import annotations

import base64
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

import ndr_assets.models.serving as serving
from ndr_assets.models.artifacts import (
    extract_archive,
    histogram_markdown,
    load_bundle,
    package_model,
    read_manifest,
)
from ndr_assets.models.training import score_histogram_png
from tests.models.bundles import make_bundle, sklearn_scores, training_rows


def _bundle() -> tuple[dict, np.ndarray]:
    bundle = make_bundle(["a", "b", "c"], rows=200, n_estimators=25)
    return bundle, training_rows(200, 3)


def test_the_archive_holds_the_bundle_and_the_serving_code_where_sagemaker_looks():
    bundle, _ = _bundle()

    with tarfile.open(fileobj=io.BytesIO(package_model(bundle)), mode="r:gz") as archive:
        assert archive.getnames() == ["manifest.json", "model.joblib", "code/inference.py"]
        inference = archive.extractfile("code/inference.py").read()

    assert inference == Path(serving.__file__).read_bytes()


def test_the_manifest_names_the_features_without_unpickling_the_forests(tmp_path):
    bundle, _ = _bundle()

    manifest = read_manifest(extract_archive(package_model(bundle), tmp_path / "model"))

    assert manifest == {"format": bundle["format"], "model_name": bundle["model_name"],
                        "model_version": bundle["model_version"], "month": bundle["month"],
                        "features": bundle["features"]}


def test_an_archive_without_a_manifest_is_refused_with_the_fix(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ValueError, match=r"no manifest.json: it was packaged by an older version; re-materialize if_model"):
        read_manifest(tmp_path / "model")


def test_the_unpacked_model_scores_exactly_like_the_original():
    bundle, raw = _bundle()

    loaded = load_bundle(package_model(bundle))

    assert np.array_equal(sklearn_scores(loaded, raw), sklearn_scores(bundle, raw))
    assert {k: v for k, v in loaded.items() if k != "model"} == {k: v for k, v in bundle.items() if k != "model"}


def test_extracted_inference_code_runs_standalone(tmp_path):
    bundle, raw = _bundle()

    root = extract_archive(package_model(bundle), tmp_path / "model")

    spec = importlib.util.spec_from_file_location("extracted_inference", root / "code" / "inference.py")
    inference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inference)
    assert np.array_equal(inference.preprocess(raw, bundle["preprocessing"]), serving.preprocess(raw, bundle["preprocessing"]))
    assert (root / "model.joblib").is_file()


def test_packaging_is_reproducible():
    bundle, _ = _bundle()
    assert package_model(bundle) == package_model(bundle)


def _archive_with(name: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    return raw.getvalue()


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/absolute-escape.txt"])
def test_extraction_refuses_members_outside_the_target(tmp_path, member):
    target = tmp_path / "model"

    if member.startswith("/"):
        # The data filter strips the leading "/" and keeps the file inside the target instead.
        extract_archive(_archive_with(member), target)
        assert (target / member.lstrip("/")).read_bytes() == b"evil"
    else:
        with pytest.raises(ValueError, match="refusing to extract the model archive"):
            extract_archive(_archive_with(member), target)
        assert not (tmp_path / "escaped.txt").exists()


def test_an_archive_without_a_bundle_is_refused():
    with pytest.raises(ValueError, match=r"has no model.joblib; members: \['notes.txt'\]"):
        load_bundle(_archive_with("notes.txt"))
    with pytest.raises(ValueError, match=r"not a model bundle: missing key\(s\) \['format'"):
        package_model({"model": None})


def test_histogram_markdown_inlines_the_png():
    png = score_histogram_png(np.linspace(0.3, 0.7, 50), 0.65)

    markdown = histogram_markdown(png)

    prefix = "![training score histogram](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    assert base64.b64decode(markdown[len(prefix):-1]) == png
    with pytest.raises(ValueError, match="expects PNG bytes"):
        histogram_markdown(b"GIF89a")
