"""The model archive: ``model.tar.gz`` as SageMaker's scikit-learn container expects it.

Layout: ``manifest.json`` (the bundle's :data:`MANIFEST_KEYS`, so a reader that needs the feature
list does not unpickle ~100 MB of forests), ``model.joblib`` (the bundle dict) at the root and
``code/inference.py`` (the text of :mod:`ndr_assets.models.serving`, which imports nothing of
ours). The archive is byte-for-byte
reproducible for the same bundle: member times and owners are fixed and the gzip header carries
no timestamp, so an unchanged model re-packaged gives the same object (and the same ETag).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from importlib import resources
from pathlib import Path

import joblib

from ndr_assets.models.bundle import BUNDLE_KEYS, MODEL_FILE, SERVING_ENTRY

MANIFEST_FILE = "manifest.json"
MANIFEST_KEYS = ("format", "model_name", "model_version", "month", "features")

# Fixed member time (2000-01-01T00:00:00Z) so the archive does not change with the packaging time.
MEMBER_MTIME = 946_684_800


def serving_source() -> bytes:
    """The bytes of ``ndr_assets/models/serving.py`` as installed (works from a wheel too)."""
    return resources.files("ndr_assets.models").joinpath("serving.py").read_bytes()


def package_model(bundle: dict) -> bytes:
    """``model.tar.gz`` bytes holding the bundle and the serving entry point."""
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"not a model bundle: missing key(s) {missing}")
    model_bytes = io.BytesIO()
    joblib.dump(bundle, model_bytes)
    raw = io.BytesIO()
    manifest = json.dumps({k: bundle[k] for k in MANIFEST_KEYS}, sort_keys=True).encode()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, MANIFEST_FILE, manifest)  # first: read without decompressing the forests
        _add(archive, MODEL_FILE, model_bytes.getvalue())
        _add(archive, SERVING_ENTRY, serving_source())
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = MEMBER_MTIME
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def load_bundle(archive_bytes: bytes) -> dict:
    """The bundle dict inside ``model.tar.gz`` bytes (read in memory, nothing extracted)."""
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as archive:
        try:
            member = archive.getmember(MODEL_FILE)
        except KeyError:
            raise ValueError(f"model archive has no {MODEL_FILE}; members: {archive.getnames()}") from None
        handle = archive.extractfile(member)
        if handle is None:
            raise ValueError(f"{MODEL_FILE} in the model archive is not a regular file")
        bundle = joblib.load(handle)
    if not isinstance(bundle, dict) or any(k not in bundle for k in BUNDLE_KEYS):
        raise ValueError(f"{MODEL_FILE} does not hold a model bundle with keys {list(BUNDLE_KEYS)}")
    return bundle


def read_manifest(model_dir: str | Path) -> dict:
    """The manifest of an extracted archive (see the module doc), refused when absent or incomplete."""
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"model archive extracted in {model_dir} has no {MANIFEST_FILE}: it was packaged by an "
                         "older version; re-materialize if_model for its month")
    manifest = json.loads(path.read_text())
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{path}: manifest lacks key(s) {missing}")
    return manifest


def extract_archive(archive_bytes: bytes, target_dir: str | Path) -> Path:
    """Unpack into ``target_dir`` (created if needed); members escaping it, links out of it,
    devices and absolute paths are refused (tarfile's ``data`` filter) with a ValueError."""
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as archive:
        try:
            archive.extractall(target, filter="data")
        except tarfile.FilterError as error:
            raise ValueError(f"refusing to extract the model archive into {target}: {error}") from error
    return target


def histogram_markdown(png_bytes: bytes, *, alt: str = "training score histogram") -> str:
    """A Markdown image with the PNG inlined as a data URI (for Dagster's ``MetadataValue.md``)."""
    if not png_bytes.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("histogram_markdown expects PNG bytes")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png_bytes).decode('ascii')})"
