"""What a catalog entry says about one column beyond its schema field, and where formulas come from."""

from __future__ import annotations

from dataclasses import dataclass

from ndr_assets.catalog import helper_formulas as hf
from ndr_assets.catalog.formulas import ColumnDoc


@dataclass(frozen=True)
class ColumnSpec:
    """Everything of a catalog entry that is not read from the schema field or the group."""

    role: str
    formula: str
    description: str
    upstream: tuple[str, ...]
    consumers: tuple[str, ...]
    default: str | None = None
    family: str | None = None  # name pattern with METRIC_PLACEHOLDER; None = the column name


def spec_from(doc: ColumnDoc, role: str, consumers: tuple[str, ...], default: str | None = None) -> ColumnSpec:
    return ColumnSpec(role, doc.formula, doc.description, doc.inputs, consumers, default)


def module_formula(modules: tuple[str, ...], *candidates: str) -> str:
    """The formula text of the first candidate name the modules' ``FORMULAS`` document."""
    text = hf.formula_for(modules, candidates)
    if not text:
        raise LookupError(f"no formula for {candidates[0]!r} in {modules} FORMULAS nor in the catalog's fallback")
    return text
