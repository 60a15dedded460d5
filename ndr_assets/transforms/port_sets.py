"""Port classes the delta builder counts sessions against (``seeds/reference/port_sets.json``).

The reference file is a JSON object with exactly the keys ``high_risk``, ``admin``, ``fileshare``,
``directory`` and ``db``, each a list of TCP/UDP port numbers (0..65535). A session belongs to a
class when its ``peer_port`` is in the class's set; classes may overlap (445 is high-risk and
fileshare).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

PORT_CLASS_KEYS = ("high_risk", "admin", "fileshare", "directory", "db")
_MAX_PORT = 65535


@dataclass(frozen=True)
class PortSets:
    high_risk: frozenset[int]
    admin: frozenset[int]
    fileshare: frozenset[int]
    directory: frozenset[int]
    db: frozenset[int]

    @classmethod
    def empty(cls) -> PortSets:
        """No port classes: every port-class count is zero."""
        return cls(**{key: frozenset() for key in PORT_CLASS_KEYS})

    @classmethod
    def from_json(cls, payload: Any) -> PortSets:
        """Validate a parsed ``port_sets.json`` payload; a ValueError names the bad key or value."""
        if not isinstance(payload, dict):
            raise ValueError(f"port sets: expected a JSON object, got {type(payload).__name__}")
        unknown = sorted(set(payload) - set(PORT_CLASS_KEYS))
        if unknown:
            raise ValueError(f"port sets: unknown key(s) {unknown}; known: {list(PORT_CLASS_KEYS)}")
        missing = [key for key in PORT_CLASS_KEYS if key not in payload]
        if missing:
            raise ValueError(f"port sets: missing key(s) {missing} (use [] for an empty class)")
        return cls(**{key: _port_set(key, payload[key]) for key in PORT_CLASS_KEYS})

    def as_dict(self) -> dict[str, list[int]]:
        """The JSON shape ``from_json`` reads (sorted lists)."""
        return {f.name: sorted(getattr(self, f.name)) for f in fields(self)}


def _port_set(key: str, values: Any) -> frozenset[int]:
    if not isinstance(values, list):
        raise ValueError(f"port sets: '{key}' must be a list of port numbers, got {type(values).__name__}")
    for value in values:
        # bool is an int subclass in Python; `true` is not a port.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_PORT:
            raise ValueError(f"port sets: '{key}' holds {value!r}, not a port number 0..{_MAX_PORT}")
    return frozenset(values)
