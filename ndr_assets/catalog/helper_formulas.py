"""Formulas of FG-B, pair rarity and FG-C, read from the ``FORMULAS`` dicts of the modules that compute them.

Convention (notes/issue3): each transform module exposes ``FORMULAS: dict[str, str]`` mapping a
feature, stat or transform name (or a pattern such as ``<metric>_median`` or ``excess_over_p95_*``)
to a one-line formula. :func:`formula_for` looks a column up by its exact name, then by less specific
names (``median`` for ``sessions_cnt_w_15m_median``), then by pattern.

``FALLBACK_FORMULAS`` holds the semantics fixed in notes/issue3.md for names a module does not (yet)
document; :func:`fallback_names` tells which names were served from it, so a test can insist that
the code is the source once the modules are in place.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from functools import cache

BASELINES_MODULE = "ndr_assets.transforms.baselines"
PAIR_RARITY_MODULE = "ndr_assets.transforms.pair_rarity"
FG_C_MODULE = "ndr_assets.transforms.fg_c"
FG_C_MODULES = (FG_C_MODULE, "ndr_assets.transforms.fg_c_suspicion", "ndr_assets.transforms.fg_c_sql")

# Names a module does not document; empty since every module documents its columns (a test keeps it so).
FALLBACK_FORMULAS: dict[str, dict[str, str]] = {}


def _module_formulas(module_name: str) -> dict[str, str]:
    """The module's ``FORMULAS`` (empty when the module does not exist or has none)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return {}
        raise
    formulas = getattr(module, "FORMULAS", None)
    return dict(formulas) if isinstance(formulas, Mapping) else {}


@cache
def code_formulas(*module_names: str) -> dict[str, str]:
    """The merged ``FORMULAS`` of the modules (earlier modules win)."""
    merged: dict[str, str] = {}
    for name in reversed(module_names):
        merged.update(_module_formulas(name))
    return merged


def _pattern(key: str) -> re.Pattern[str] | None:
    """A key with ``<placeholder>`` or ``*`` parts as a regex; None for a plain name."""
    if "<" not in key and "*" not in key:
        return None
    parts = re.split(r"(<[^>]*>|\*)", key)
    return re.compile("".join(".+" if p == "*" or p.startswith("<") else re.escape(p) for p in parts))


def lookup(table: Mapping[str, str], candidates: tuple[str, ...]) -> str | None:
    """The first candidate name found exactly, else the first pattern key matching a candidate.

    Candidates go from the most to the least specific: ``ip_metadata.support_count`` before
    ``support_count``, a full column name before its stat or transform.
    """
    for key in candidates:
        text = table.get(key)
        if text:
            return text
    for name in candidates:
        for key, text in table.items():
            pattern = _pattern(key)
            if text and pattern is not None and pattern.fullmatch(name):
                return text
    return None


_FALLBACK_USED: set[tuple[str, str]] = set()


def formula_for(module_names: tuple[str, ...], candidates: tuple[str, ...]) -> str | None:
    """The formula of the first known candidate from the modules' ``FORMULAS``, else the fallback."""
    text = lookup(code_formulas(*module_names), candidates)
    if text:
        return text
    for module_name in module_names:
        text = lookup(FALLBACK_FORMULAS.get(module_name, {}), candidates)
        if text:
            _FALLBACK_USED.add((module_name, candidates[0]))
            return text
    return None


def fallback_names() -> set[tuple[str, str]]:
    """(module, name) pairs whose formula came from ``FALLBACK_FORMULAS`` since the process started."""
    return set(_FALLBACK_USED)
