"""Request bodies for the model endpoint: records encoded once, split into payloads within both limits.

An endpoint call carries at most ``max_records`` records and at most ``max_bytes`` bytes of body,
envelope included (SageMaker refuses real-time payloads over 6 MB). Each record is encoded once;
its byte length decides where payloads split, and the body of a payload is the envelope's header,
the records joined by the format's separator, and the envelope's footer, so its length is exactly::

    len(header) + len(footer) + sum(record sizes) + len(separator) * (records - 1)

JSON bodies use the dense ``{"columns": [...], "data": [[...], ...]}`` form the serving code reads
(feature names once per payload rather than once per record: about half the bytes of
``{"instances": [...]}`` at 60 features). CSV bodies are a header row then one line per record.
Missing and non-finite values travel as JSON ``null`` / an empty CSV field; the model scores them as
the feature's centre either way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ndr_assets.models.serving import CSV, JSON, RECORD_ID

# SageMaker's limit is "6 MB"; counting a megabyte as 10^6 bytes keeps us under it however AWS counts.
BYTES_PER_MB = 1_000_000


def max_payload_bytes(max_payload_mb: float) -> int:
    """The byte limit of ``EndpointConfig.max_payload_mb``."""
    return int(max_payload_mb * BYTES_PER_MB)


class PayloadTooLargeError(ValueError):
    """One record alone does not fit a payload: it can never be scored with these limits."""

    def __init__(self, record_id: str, record_bytes: int, max_bytes: int):
        self.record_id = record_id
        self.record_bytes = record_bytes
        self.max_bytes = max_bytes
        super().__init__(
            f"record {record_id!r} needs a {record_bytes}-byte payload on its own, over the limit of {max_bytes} bytes"
        )


@dataclass(frozen=True)
class WireFormat:
    """How records are framed into one body of ``content_type``."""

    content_type: str
    header: bytes
    separator: bytes
    footer: bytes

    @property
    def overhead_bytes(self) -> int:
        return len(self.header) + len(self.footer)

    def body(self, encoded: Sequence[bytes], start: int, end: int) -> bytes:
        """The body of records ``[start, end)``."""
        return self.header + self.separator.join(encoded[start:end]) + self.footer


def wire_format(content_type: str, feature_columns: Sequence[str]) -> WireFormat:
    """The envelope of ``content_type`` for records of ``record_id`` + ``feature_columns``."""
    columns = [RECORD_ID, *feature_columns]
    if content_type == JSON:
        header = ('{"columns":' + json.dumps(columns, separators=(",", ":")) + ',"data":[').encode()
        return WireFormat(JSON, header, b",", b"]}")
    if content_type == CSV:
        return WireFormat(CSV, _csv_line(columns), b"", b"")
    raise ValueError(f"cannot encode payloads as {content_type!r}; known: {JSON!r}, {CSV!r}")


def _csv_line(fields: list) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue().encode()


def _values_with_nulls(frame: pd.DataFrame, feature_columns: Sequence[str]) -> list[list]:
    """Rows of python floats, ``None`` where a value is missing or not finite."""
    x = frame[list(feature_columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    values = x.astype(object)
    values[~np.isfinite(x)] = None
    return values.tolist()


def encode_records(frame: pd.DataFrame, *, record_id_col: str, feature_columns: Sequence[str],
                   content_type: str) -> list[bytes]:
    """Each row of ``frame`` as it appears inside a body of ``content_type`` (see :func:`wire_format`)."""
    missing = [c for c in [record_id_col, *feature_columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot encode payloads: frame lacks column(s) {missing}")
    ids = frame[record_id_col].astype(str).tolist()
    rows = _values_with_nulls(frame, feature_columns)
    if content_type == JSON:
        dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
        return [dumps([rid, *row]).encode() for rid, row in zip(ids, rows, strict=True)]
    if content_type == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        encoded = []
        for rid, row in zip(ids, rows, strict=True):
            out.seek(0)
            out.truncate()
            writer.writerow([rid, *row])  # None -> empty field; floats as repr (exact round trip)
            encoded.append(out.getvalue().encode())
        return encoded
    raise ValueError(f"cannot encode payloads as {content_type!r}; known: {JSON!r}, {CSV!r}")


def split_payloads(records: Sequence[int] | Sequence[bytes] | Sequence[str], max_records: int, max_bytes: int, *,
                   overhead_bytes: int = 0, separator_bytes: int = 0, record_ids: Sequence[str] | None = None,
                   oversized: Literal["raise", "alone"] = "raise") -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` ranges covering every record, each within both limits.

    ``records`` are per-record encoded sizes or the encoded records themselves (``str`` counts as
    its UTF-8 bytes). A payload of n records weighs ``overhead_bytes + sum(sizes) +
    separator_bytes * (n - 1)`` and holds at most ``max_records``. A record that alone weighs more
    than ``max_bytes`` raises :class:`PayloadTooLargeError` naming it (its ``record_ids`` entry, else
    its index), or with ``oversized="alone"`` gets a range of its own so the caller can report it.
    """
    if max_records < 1:
        raise ValueError(f"max_records must be at least 1, got {max_records}")
    sizes = [r if isinstance(r, int) else len(r.encode() if isinstance(r, str) else r) for r in records]
    ranges: list[tuple[int, int]] = []
    start, weight = 0, overhead_bytes
    for i, size in enumerate(sizes):
        if overhead_bytes + size > max_bytes:
            if oversized == "raise":
                raise PayloadTooLargeError(str(record_ids[i]) if record_ids is not None else f"#{i}",
                                           overhead_bytes + size, max_bytes)
            if i > start:
                ranges.append((start, i))
            ranges.append((i, i + 1))
            start, weight = i + 1, overhead_bytes
            continue
        added = size + (separator_bytes if i > start else 0)
        if i > start and (i - start >= max_records or weight + added > max_bytes):
            ranges.append((start, i))
            start, weight, added = i, overhead_bytes, size
        weight += added
    if start < len(sizes):
        ranges.append((start, len(sizes)))
    return ranges


@dataclass(frozen=True)
class Payload:
    """One request body: records ``[start, end)`` of the frame it was encoded from."""

    start: int
    end: int
    body: bytes

    @property
    def records(self) -> int:
        return self.end - self.start


def build_payloads(frame: pd.DataFrame, *, record_id_col: str, feature_columns: Sequence[str], content_type: str,
                   max_records: int, max_bytes: int) -> list[Payload]:
    """``frame`` as request bodies within both limits; a record too big alone gets a payload of its own
    whose body is over ``max_bytes`` (the caller reports it rather than sending it)."""
    wire = wire_format(content_type, feature_columns)
    encoded = encode_records(frame, record_id_col=record_id_col, feature_columns=feature_columns,
                             content_type=content_type)
    ranges = split_payloads(encoded, max_records, max_bytes, overhead_bytes=wire.overhead_bytes,
                            separator_bytes=len(wire.separator), oversized="alone")
    return [Payload(start, end, wire.body(encoded, start, end)) for start, end in ranges]
