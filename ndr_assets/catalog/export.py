"""Views of the catalog: schema contracts, counts, the Markdown review document and the Parquet export."""

from __future__ import annotations

import dataclasses
import io
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import types as T

from ndr_assets.catalog.builder import group_context
from ndr_assets.catalog.entry import AUXILIARY, FEATURE, KEY, METRIC_PLACEHOLDER, FeatureEntry
from ndr_assets.catalog.groups import GROUPS
from ndr_assets.transforms.schemas import SESSION_TIMELINE_TYPE

if TYPE_CHECKING:  # the Lake resource imports dagster; the catalog only calls its byte methods
    from ndr_resources.lake import Lake

REGENERATE_COMMAND = "ndr catalog write --out docs --no-parquet"
# Larger groups are shown in Markdown as families of alike columns (the Parquet lists every column).
MARKDOWN_MAX_ROWS = 600

_SPARK_TYPES: dict[str, T.DataType] = {
    t.simpleString(): t
    for t in (
        T.StringType(),
        T.IntegerType(),
        T.LongType(),
        T.DoubleType(),
        T.FloatType(),
        T.ShortType(),
        T.ByteType(),
        T.BooleanType(),
        T.DateType(),
        T.TimestampType(),
        T.TimestampNTZType(),
        # The one nested type a dataset declares: delta peer slices' session timeline.
        SESSION_TIMELINE_TYPE,
    )
}


def spark_type(simple_string: str) -> T.DataType:
    """The Spark type of a catalog ``data_type`` (a ``simpleString``)."""
    try:
        return _SPARK_TYPES[simple_string]
    except KeyError:
        raise ValueError(f"catalog data_type {simple_string!r} is not one of {sorted(_SPARK_TYPES)}") from None


def group_entries(entries: Sequence[FeatureEntry], group: str) -> list[FeatureEntry]:
    """The entries of one group in column order."""
    return sorted((e for e in entries if e.feature_group == group), key=lambda e: e.feature_number)


def catalog_contract(entries: Sequence[FeatureEntry], group: str) -> T.StructType:
    """The group's columns as a Spark schema: names, types and nullability in column order."""
    selected = group_entries(entries, group)
    if not selected:
        raise ValueError(f"the catalog has no entries of group {group!r}")
    return T.StructType([T.StructField(e.feature_name, spark_type(e.data_type), e.nullable) for e in selected])


def counts_by_group(entries: Sequence[FeatureEntry], role: str = FEATURE) -> dict[str, int]:
    """Number of entries per group with ``column_role == role`` (default: features; keys excluded)."""
    counts = Counter(e.feature_group for e in entries if e.column_role == role)
    groups = dict.fromkeys(e.feature_group for e in entries)
    return {group: counts.get(group, 0) for group in groups}


def column_counts(entries: Sequence[FeatureEntry]) -> dict[str, dict[str, int]]:
    """Per group: features, keys, auxiliary columns and all columns."""
    features, keys, auxiliary = (counts_by_group(entries, role) for role in (FEATURE, KEY, AUXILIARY))
    return {
        group: {
            "features": features[group],
            "keys": keys[group],
            "auxiliary": auxiliary[group],
            "columns": features[group] + keys[group] + auxiliary[group],
        }
        for group in features
    }


# ---------------------------------------------------------------- Markdown

_TABLE_FIELDS = (
    ("feature_number", "#"),
    ("feature_name", "name"),
    ("column_role", "role"),
    ("data_type", "type"),
    ("nullable", "nullable"),
    ("default_value", "default"),
    ("feature_formula", "formula"),
    ("feature_description", "description"),
    ("upstream_dependencies", "upstream"),
    ("downstream_consumers", "consumers"),
)
# Shown once per group (in the header list) when every entry of the group has the same value.
_HEADER_FIELDS = (
    "creator_script",
    "s3_storage_path",
    "feature_group_name_offline",
    "feature_group_name_online",
    "feature_spec_version",
    "nullable",
    "default_value",
    "upstream_dependencies",
    "downstream_consumers",
)


# '<metric>' or '<bucket>' would be read as an HTML tag; '<=' is left as it is.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _cell(value: object) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, tuple):
        text = ", ".join(value) or "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    # A pipe would end the table cell.
    return _TAG_START.sub("&lt;", text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))


def _template(entry: FeatureEntry, subject: str) -> dict[str, object]:
    """The entry's table fields with its FG-A metric column replaced by the placeholder."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(subject)}(?![A-Za-z0-9])")

    def generic(value: object) -> object:
        if isinstance(value, str):
            return pattern.sub(METRIC_PLACEHOLDER, value)
        if isinstance(value, tuple):
            return tuple(generic(v) for v in value)
        return value

    fields = {field: generic(getattr(entry, field)) for field, _ in _TABLE_FIELDS if field != "feature_number"}
    return {**fields, "feature_name": entry.feature_family}


def _row(entry: FeatureEntry) -> dict[str, object]:
    return {**{field: getattr(entry, field) for field, _ in _TABLE_FIELDS}, "metrics": None}


def _family_rows(entries: list[FeatureEntry]) -> tuple[list[dict[str, object]], dict[tuple[str, ...], str]]:
    """Rows of a large group: one per family of alike columns, one per other column; and the metric sets."""
    families: dict[str, list[FeatureEntry]] = {}
    for entry in entries:
        families.setdefault(entry.feature_family, []).append(entry)
    metric_sets: dict[tuple[str, ...], str] = {}
    rows: list[dict[str, object]] = []
    for family, members in families.items():
        if METRIC_PLACEHOLDER not in family:
            rows += [_row(e) for e in members]
            continue
        regex = re.compile(re.escape(family).replace(re.escape(METRIC_PLACEHOLDER), "(.+)"))
        subjects = tuple(regex.fullmatch(e.feature_name).group(1) for e in members)
        templates = [_template(e, subject) for e, subject in zip(members, subjects, strict=True)]
        if any(t != templates[0] for t in templates[1:]):  # not alike after all: list them one by one
            rows += [_row(e) for e in members]
            continue
        label = metric_sets.setdefault(subjects, f"M{len(metric_sets) + 1}")
        rows.append({**templates[0], "feature_number": members[0].feature_number, "metrics": f"{label}: {len(members)} columns"})
    return rows, metric_sets


def _group_section(group: str, entries: list[FeatureEntry], max_rows: int | None) -> list[str]:
    info = GROUPS.get(group)
    roles = Counter(e.column_role for e in entries)
    lines = [f"## {group}", ""]
    if info is not None:
        lines += [info.summary, ""]
    features = f"{roles[FEATURE]:,} feature{'' if roles[FEATURE] == 1 else 's'}"
    model_inputs = sum(e.is_model_input for e in entries)
    model = (f" - model input: the {model_inputs:,} outbound features (inbound ones describe what other hosts did to "
             "this one)" if info is not None and info.model_input else "")
    lines += [
        f"**{features}** ({roles[KEY]} keys, {roles[AUXILIARY]} auxiliary columns, {len(entries):,} columns){model}",
        "",
    ]
    constant = [f for f in _HEADER_FIELDS if len({getattr(e, f) for e in entries}) == 1]
    for field in constant:
        lines.append(f"- {field}: {_cell(getattr(entries[0], field))}")
    if info is not None:
        lines.append(f"- partitioning: {_cell(info.partitioning)}")
        lines += [f"- {name}: {_cell(text)}" for name, text in group_context(group)]
    columns = [(f, title) for f, title in _TABLE_FIELDS if f not in constant]
    if max_rows is not None and len(entries) > max_rows:
        rows, metric_sets = _family_rows(entries)
        lines.append(
            f"- one row per family of alike columns: {METRIC_PLACEHOLDER} stands for each FG-A metric column of the "
            "named set, in the set's order (feature_number of the first column shown; the Parquet export lists "
            "every column)"
        )
        for subjects, label in metric_sets.items():
            lines.append(f"- metric set {label} ({len(subjects)}): {_cell(subjects)}")
        columns.insert(2, ("metrics", "metrics"))
    else:
        rows = [_row(e) for e in entries]
    lines += ["", "| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[f]) for f, _ in columns) + " |" for row in rows]
    lines.append("")
    return lines


def to_markdown(entries: Sequence[FeatureEntry], max_rows: int | None = MARKDOWN_MAX_ROWS) -> str:
    """The review document: a summary table, then one section per group with its count and columns.

    A group with more than ``max_rows`` columns (FG-B stats, FG-C transforms) is shown as one row per
    family of alike columns (``<metric>_median``) plus the metric lists; None lists every column.
    """
    groups = list(dict.fromkeys(e.feature_group for e in entries))
    versions = sorted({e.feature_spec_version for e in entries})
    counts = column_counts(entries)
    lines = [
        f"# Feature catalog (feature_spec_version {', '.join(versions)})",
        "",
        f"Generated from the code by `{REGENERATE_COMMAND}` (ndr_assets/catalog); do not edit by hand.",
        "Counts exclude keys and auxiliary columns (metadata carried beside the features).",
        "",
        "| group | model inputs | features | keys | auxiliary | columns |",
        "|---|---|---|---|---|---|",
    ]
    for group in groups:
        c = counts[group]
        model_inputs = sum(e.is_model_input for e in entries if e.feature_group == group)
        model = f"{model_inputs:,}" if group in GROUPS and GROUPS[group].model_input else "no"
        lines.append(f"| {group} | {model} | {c['features']:,} | {c['keys']} | {c['auxiliary']} | {c['columns']:,} |")
    lines.append("")
    for group in groups:
        lines += _group_section(group, group_entries(entries, group), max_rows)
    return "\n".join(lines)


# ---------------------------------------------------------------- Parquet

_LIST_FIELDS = ("upstream_dependencies", "downstream_consumers")
_ARROW_TYPES = {
    "feature_number": pa.int32(),
    "nullable": pa.bool_(),
    "is_model_input": pa.bool_(),
    **{name: pa.list_(pa.string()) for name in _LIST_FIELDS},
}
PARQUET_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES.get(f.name, pa.string())) for f in dataclasses.fields(FeatureEntry)]
)


def to_arrow(entries: Sequence[FeatureEntry]) -> pa.Table:
    """One row per entry, columns in ``FeatureEntry`` order; lists as ``list<string>``."""
    columns = {
        name: [list(v) if name in _LIST_FIELDS else v for v in (getattr(e, name) for e in entries)]
        for name in PARQUET_SCHEMA.names
    }
    return pa.table(columns, schema=PARQUET_SCHEMA)


def to_parquet(entries: Sequence[FeatureEntry], path_or_uri: str | Path, lake: Lake | None = None) -> str:
    """Writes the catalog as one Parquet file: a local path, or an ``s3://`` URI through ``lake``.

    Returns where it was written. For DynamoDB, Redshift, Aurora or S3 Tables ingestion.
    """
    buffer = io.BytesIO()
    pq.write_table(to_arrow(entries), buffer)
    target = str(path_or_uri)
    if target.startswith("s3://"):
        if lake is None:
            raise ValueError(f"writing {target} needs a lake (LocalLake or S3Lake)")
        lake.write_bytes(target, buffer.getvalue())
    else:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
    return target


def read_parquet(path_or_uri: str | Path, lake: Lake | None = None) -> list[FeatureEntry]:
    """The entries of a catalog Parquet file written by :func:`to_parquet`."""
    target = str(path_or_uri)
    if target.startswith("s3://"):
        if lake is None:
            raise ValueError(f"reading {target} needs a lake (LocalLake or S3Lake)")
        table = pq.read_table(io.BytesIO(lake.read_bytes(target)))
    else:
        table = pq.read_table(target)
    rows = table.to_pylist()
    return [
        FeatureEntry(**{k: tuple(v) if k in _LIST_FIELDS else v for k, v in row.items()})
        for row in rows
    ]
