"""Scenario files: which attacks the generator injects, with their shapes, as typed JSON.

A scenario file is a JSON list; each entry is one attack (``kind`` picks its parameters)::

    [
      {"kind": "c2_beaconing", "name": "slow_beacon", "host": "workstations", "start": "+2h",
       "duration": "10h", "period_s": 1200, "jitter_s": 300},
      {"kind": "bulk_exfiltration", "duration": "8h", "total_bytes": 400000000, "pace": 4},
      {"kind": "internal_port_scan", "targets": 60, "ports": [22, 445, 3389], "spread": "4h"},
      {"kind": "rare_external_pairs", "tenant": "acme/finance", "pairs": 3}
    ]

Common keys: ``kind``; ``name`` (unique in the file; default the kind, or ``<kind>-<n>`` when the
kind occurs more than once); ``tenant`` (``org1/org2``; default every tenant); ``host`` (an IP of
the tenant, a segment such as ``workstations`` or a role such as ``app_server``: a seeded pick
among them; default a seeded pick among the kind's usual roles); ``start`` (an ISO date-time, UTC
unless it says otherwise, or ``+<duration>`` after the attack start, which is ``attacks_from`` or
the range start; default a seeded time); ``duration`` (default seeded, as below). A duration is
seconds (a number) or a string such as ``90s``, ``45m``, ``6h``, ``1d2h``.

Kind keys, every one optional (absent: the seeded draw of the built-in scenario, so
``seeds/scenarios/default.json`` reproduces the generator's former hard-coded attacks):

- ``c2_beaconing``: ``period_s`` (mean gap between check-ins, 60), ``jitter_s`` (standard deviation
  of a gap, 4; gaps are clipped at 3.75 of it either side); duration default 2-5 h;
- ``bulk_exfiltration``: ``total_bytes`` (sent over the whole scenario; default ~80 MB a
  session), ``pace`` (sessions per hour) or ``sessions`` (how many; default 4-12); duration default
  1-3 windows;
- ``internal_port_scan``: ``targets`` (internal addresses probed, about 60 % live hosts; default
  40-80), ``ports`` (how many of the usual scan ports per target, or the list of ports; default
  4-12 of them), ``spread`` (the scan's duration; default 1-2 windows);
- ``rare_external_pairs``: ``pairs`` (never-seen external IP:port pairs; default 5-10); duration
  default 1-2 windows.

Errors name the file, the scenario's index (0-based) and the key.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

import seeds
from ndr_resources.errors import NdrError

# Shipped with the seeds package (package data), so an installed `ndr` finds them too.
SCENARIO_FILES_DIR = Path(seeds.__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO_FILE = SCENARIO_FILES_DIR / "default.json"
STEALTHY_SCENARIO_FILE = SCENARIO_FILES_DIR / "stealthy.json"

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (86400, 3600, 60, 1)


class ScenarioFileError(NdrError, ValueError):
    """A scenario file cannot be read, or one of its scenarios cannot be placed in the generated range."""


def parse_duration(value: int | float | str) -> int:
    """Seconds of ``90`` / ``"90s"`` / ``"45m"`` / ``"6h"`` / ``"1d2h"`` (positive)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = int(value)
    else:
        match = _DURATION.match(value.strip())
        if not value.strip() or match is None:
            raise ValueError(f"not a duration (seconds, or e.g. '90s', '45m', '6h', '1d2h'): {value!r}")
        seconds = sum(int(part or 0) * unit for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True))
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


class _Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1)
    tenant: str | None = None
    host: str | None = Field(default=None, min_length=1)
    start: str | None = None
    duration: int | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        if value is not None:
            org1, sep, org2 = value.partition("/")
            if not sep or not org1 or not org2 or "/" in org2:
                raise ValueError(f"a tenant is 'org1/org2', got {value!r}")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None:
            if value.startswith("+"):
                parse_duration(value[1:])
            else:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise ValueError(
                        f"not an ISO date-time or '+<duration>' after the attack start: {value!r}"
                    ) from None
        return value

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> int | None:
        return None if value is None else parse_duration(value)  # type: ignore[arg-type]

    def tenants(self) -> tuple[str, str] | None:
        return tuple(self.tenant.split("/")) if self.tenant else None  # type: ignore[return-value]

    def start_epoch(self, attack_start: int) -> int | None:
        """The scenario's first instant in epoch seconds, or None for a seeded one."""
        if self.start is None:
            return None
        if self.start.startswith("+"):
            return attack_start + parse_duration(self.start[1:])
        value = datetime.fromisoformat(self.start)
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


class C2BeaconingScenario(_Scenario):
    kind: Literal["c2_beaconing"]
    period_s: float = Field(default=60, gt=0)
    jitter_s: float = Field(default=4, ge=0)


class BulkExfiltrationScenario(_Scenario):
    kind: Literal["bulk_exfiltration"]
    total_bytes: int | None = Field(default=None, gt=0)
    pace: float | None = Field(default=None, gt=0, description="sessions per hour")
    sessions: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_way_of_counting(self) -> BulkExfiltrationScenario:
        if self.pace is not None and self.sessions is not None:
            raise ValueError("give pace (sessions per hour) or sessions, not both")
        return self


class InternalPortScanScenario(_Scenario):
    kind: Literal["internal_port_scan"]
    targets: int | None = Field(default=None, ge=1)
    ports: int | list[Annotated[int, Field(ge=1, le=65535)]] | None = None
    spread: int | None = None

    @field_validator("spread", mode="before")
    @classmethod
    def _spread(cls, value: object) -> int | None:
        return None if value is None else parse_duration(value)  # type: ignore[arg-type]

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: int | list[int] | None) -> int | list[int] | None:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"ports per target must be at least 1, got {value}")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError(f"a list of ports must be non-empty and without repeats, got {value}")
        return value

    @model_validator(mode="after")
    def _spread_is_the_duration(self) -> InternalPortScanScenario:
        if self.spread is not None and self.duration is not None:
            raise ValueError("a scan's spread is its duration: give spread or duration, not both")
        return self

    @property
    def span_seconds(self) -> int | None:
        return self.spread if self.spread is not None else self.duration


class RareExternalPairsScenario(_Scenario):
    kind: Literal["rare_external_pairs"]
    pairs: int | None = Field(default=None, ge=1)


Scenario = Annotated[
    C2BeaconingScenario | BulkExfiltrationScenario | InternalPortScanScenario | RareExternalPairsScenario,
    Field(discriminator="kind"),
]
_SCENARIO_LIST = TypeAdapter(list[Scenario])


@dataclass(frozen=True)
class ScenarioFile:
    """The scenarios of one file, each with its resolved unique ``name``; ``source`` names the file."""

    source: str
    scenarios: tuple[Scenario, ...]

    def where(self, index: int) -> str:
        """How errors name one scenario: ``<file>: scenario <index> (<name>)``."""
        return f"{self.source}: scenario {index} ({self.scenarios[index].name})"

    def for_tenant(self, org1: str, org2: str) -> list[tuple[int, Scenario]]:
        """(index, scenario) of the scenarios injected into this tenant, in file order."""
        return [(i, s) for i, s in enumerate(self.scenarios) if s.tenants() in (None, (org1, org2))]

    @property
    def kinds(self) -> list[str]:
        return [s.kind for s in self.scenarios]


def _error_location(loc: tuple) -> tuple[int | None, str]:
    """(scenario index, dotted key) of a pydantic error location such as ``(0, 'c2_beaconing', 'period_s')``."""
    if not loc or not isinstance(loc[0], int):
        return None, ".".join(str(p) for p in loc)
    index, rest = loc[0], list(loc[1:])
    if rest and rest[0] in ("c2_beaconing", "bulk_exfiltration", "internal_port_scan", "rare_external_pairs"):
        rest = rest[1:]  # the discriminator's tag, not a key of the file
    return index, ".".join(str(p) for p in rest)


def parse_scenarios(data: object, source: str) -> ScenarioFile:
    """Validate the parsed JSON of a scenario file; ``source`` names it in errors."""
    try:
        scenarios = _SCENARIO_LIST.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            index, key = _error_location(tuple(error["loc"]))
            if index is None:
                problems.append(f"{source}: {error['msg']} (a scenario file is a JSON list of scenarios)")
                continue
            kind = data[index].get("kind") if isinstance(data, list) and isinstance(data[index], dict) else None
            what = f"scenario {index}" + (f" ({kind})" if isinstance(kind, str) else "")
            msg = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "union_tag_invalid":
                key, msg = "kind", f"unknown kind {kind!r}; known: c2_beaconing, bulk_exfiltration, internal_port_scan, rare_external_pairs"
            elif error["type"] == "union_tag_not_found":
                key, msg = "kind", "missing"
            problems.append(f"{source}: {what}: key '{key or '(scenario)'}': {msg}")
        raise ScenarioFileError("\n".join(problems)) from None
    per_kind = Counter(s.kind for s in scenarios)
    seen: dict[str, int] = {}
    named = []
    ordinal: Counter[str] = Counter()
    for index, scenario in enumerate(scenarios):
        ordinal[scenario.kind] += 1
        name = scenario.name or (
            scenario.kind if per_kind[scenario.kind] == 1 else f"{scenario.kind}-{ordinal[scenario.kind]}"
        )
        if name in seen:
            raise ScenarioFileError(
                f"{source}: scenario {index} ({scenario.kind}): key 'name': {name!r} is already the name of "
                f"scenario {seen[name]}; names must be unique in a file"
            )
        seen[name] = index
        named.append(scenario.model_copy(update={"name": name}))
    return ScenarioFile(source, tuple(named))


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """Read and validate a scenario file (see the module docstring for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read the scenario file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioFileError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_scenarios(data, str(path))


def default_scenarios() -> ScenarioFile:
    """``seeds/scenarios/default.json``: one attack of each kind, as the generator always injected."""
    return load_scenario_file(DEFAULT_SCENARIO_FILE)
