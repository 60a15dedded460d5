"""Encode mini-batches (gzip JSON lines, Parquet, PAN-OS syslog CSV) and write them through the Lake.

Every write goes through ``Lake.write_bytes``, so the same code fills the local lake and S3.
Encodings are byte-for-byte reproducible: gzip headers carry no timestamp and Parquet files carry
no pandas metadata.
"""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ndr_jobs.synthetic.records import INT_FIELDS, RAW_TRAFFIC_FIELDS
from ndr_resources.lake import Lake

FORMATS = ("jsonl", "parquet", "panos_csv")
FILE_NAMES = {"jsonl": "part-00000.json.gz", "parquet": "part-00000.parquet", "panos_csv": "part-00000.log.gz"}
GZIP_LEVEL = 6
DEVICE_NAME = "fw01"

PARQUET_SCHEMA = pa.schema(
    [pa.field(name, pa.int64() if name in INT_FIELDS else pa.string()) for name in RAW_TRAFFIC_FIELDS]
)

# ---------------------------------------------------------------- locations


def raw_prefix(bucket: str, org1: str, org2: str) -> str:
    return f"s3://{bucket}/paloalto/{org1}/{org2}/"


def mini_batch_uri(bucket: str, org1: str, org2: str, mini_batch_id: str, fmt: str) -> str:
    return f"{raw_prefix(bucket, org1, org2)}{mini_batch_id}/{FILE_NAMES[fmt]}"


def ground_truth_uri(bucket: str, org1: str, org2: str) -> str:
    return f"s3://{bucket}/synthetic/{org1}/{org2}/ground_truth.csv"


def warehouse_tables_uri(bucket: str) -> str:
    """The local warehouse's tables: ``<schema>/<table>/`` Parquet folders (``LocalWarehouse.tables_uri``)."""
    return f"s3://{bucket}/warehouse/"


def inventory_uri(bucket: str, org1: str, org2: str) -> str:
    """The tenant's partition of the warehouse table ``dim.machines``, which the seeded
    ``machine_inventory_unload`` spec reads with the filter ``tenant = '<org1>_<org2>'``."""
    return f"{warehouse_tables_uri(bucket)}dim/machines/tenant={org1}_{org2}/part-00000.parquet"


# ---------------------------------------------------------------- encoders


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=GZIP_LEVEL, mtime=0)


def jsonl_lines(records: pd.DataFrame) -> np.ndarray:
    """One JSON object per record (PAN-OS field names; ints as numbers, a null dport as null)."""
    if records.empty:
        return np.array([], dtype=object)
    # pandas escapes '/' as '\/'; our values hold no backslashes, so undoing it is safe.
    text = records.to_json(orient="records", lines=True).replace("\\/", "/")
    return np.array(text.rstrip("\n").split("\n"), dtype=object)


def encode_lines(lines: np.ndarray) -> bytes:
    """Gzip text of ``lines``, one per line (used for JSON lines and syslog CSV)."""
    return _gzip("".join(line + "\n" for line in lines.tolist()))


def parquet_table(records: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(records[RAW_TRAFFIC_FIELDS], schema=PARQUET_SCHEMA, preserve_index=False)
    return table.replace_schema_metadata(None)


def encode_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


# ---------------------------------------------------------------- PAN-OS syslog CSV

_MONTH_CODES = np.array(
    [[ord(c) for c in m] for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")],
    dtype=np.uint32,
)
_COUNTRIES = np.array(
    ["United States", "Germany", "Netherlands", "Ireland", "Singapore", "France", "United Kingdom"], dtype=object
)


def syslog_headers(panos_times: np.ndarray) -> np.ndarray:
    """``<14>Jan  5 08:24:55 fw01 `` for each PAN-OS timestamp (BSD syslog: day padded with a space).

    Built on a matrix of code points, so it costs the same for one line or a day of them.
    """
    chars = np.asarray(panos_times, dtype="<U19").view(np.uint32).reshape(-1, 19)
    digits = chars - ord("0")
    month = _MONTH_CODES[digits[:, 5] * 10 + digits[:, 6] - 1]
    day = chars[:, 8:10].copy()
    day[day[:, 0] == ord("0"), 0] = ord(" ")
    prefix = np.array([ord(c) for c in "<14>"], dtype=np.uint32)
    suffix = np.array([ord(c) for c in f" {DEVICE_NAME} "], dtype=np.uint32)
    space = np.full((len(chars), 1), ord(" "), dtype=np.uint32)
    header = np.hstack(
        [
            np.broadcast_to(prefix, (len(chars), 4)),
            month,
            space,
            day,
            space,
            chars[:, 11:19],
            np.broadcast_to(suffix, (len(chars), len(suffix))),
        ]
    )
    width = header.shape[1]
    return np.ascontiguousarray(header).view(f"<U{width}").ravel().astype(object)


def _location(ips: pd.Series) -> np.ndarray:
    """PAN-OS source/destination location: the private range, or a country for public IPs."""
    out = np.where(ips.str.startswith("10.").to_numpy(dtype=bool), "10.0.0.0-10.255.255.255", "").astype(object)
    out[ips.str.startswith("172.16.").to_numpy(dtype=bool)] = "172.16.0.0-172.31.255.255"
    public = out == ""
    country = _COUNTRIES[pd.util.hash_array(ips.to_numpy(dtype=object)) % len(_COUNTRIES)]
    out[public] = country[public]
    return out


def _csv_column(value: object, n: int) -> np.ndarray:
    """A CSV column as text: constants repeated, integers without a decimal point, nulls empty."""
    if isinstance(value, str):
        return np.full(n, value, dtype=object)
    if isinstance(value, pd.Series):
        if pd.api.types.is_integer_dtype(value.dtype):
            return value.astype("string").fillna("").to_numpy(dtype=object)
        return value.to_numpy(dtype=object)
    return np.asarray(value, dtype=object)


def panos_csv_lines(records: pd.DataFrame) -> np.ndarray:
    """Syslog TRAFFIC lines: header, then the positional PAN-OS CSV (54 fields, positions of common.md)."""
    if records.empty:
        return np.array([], dtype=object)
    n = len(records)
    src = records["src"].astype(str)
    dst = records["dst"].astype(str)
    blank = np.full(n, "", dtype=object)
    zero = np.full(n, "0", dtype=object)
    fields: list[object] = [
        syslog_headers(records["receive_time"].to_numpy()) + "1",  # 0 FUTURE_USE, after the syslog header
        records["receive_time"],  # 1 receive time
        records["serial"],  # 2 serial number
        records["type"],  # 3 type
        records["subtype"],  # 4 subtype
        "2561",  # 5 FUTURE_USE (config version)
        records["time_generated"],  # 6 generated time
        src,  # 7 source address
        dst,  # 8 destination address
        "0.0.0.0",  # 9 NAT source
        "0.0.0.0",  # 10 NAT destination
        records["rule"],  # 11 rule
        blank,  # 12 source user
        blank,  # 13 destination user
        records["app"],  # 14 application
        "vsys1",  # 15 virtual system
        records["from"],  # 16 source zone
        records["to"],  # 17 destination zone
        "ethernet1/2",  # 18 inbound interface
        "ethernet1/1",  # 19 outbound interface
        "default",  # 20 log action
        records["time_generated"],  # 21 FUTURE_USE (time logged)
        records["sessionid"],  # 22 session id
        "1",  # 23 repeat count
        records["sport"],  # 24 source port
        records["dport"],  # 25 destination port
        zero,  # 26 NAT source port
        zero,  # 27 NAT destination port
        "0x400000",  # 28 flags
        records["proto"],  # 29 protocol
        records["action"],  # 30 action
        records["bytes"],  # 31 bytes
        records["bytes_sent"],  # 32 bytes sent
        records["bytes_received"],  # 33 bytes received
        records["packets"],  # 34 packets
        records["start"],  # 35 start time
        records["elapsed"],  # 36 elapsed time
        "any",  # 37 category
        zero,  # 38 FUTURE_USE
        records["sessionid"],  # 39 sequence number (monotonic per log)
        "0x0",  # 40 action flags
        _location(src),  # 41 source location
        _location(dst),  # 42 destination location
        zero,  # 43 FUTURE_USE
        records["pkts_sent"],  # 44 packets sent
        records["pkts_received"],  # 45 packets received
        records["session_end_reason"],  # 46 session end reason
        zero,  # 47 device group hierarchy level 1
        zero,  # 48 level 2
        zero,  # 49 level 3
        zero,  # 50 level 4
        blank,  # 51 virtual system name
        DEVICE_NAME,  # 52 device name
        "from-policy",  # 53 action source
    ]
    columns = {f"p{i}": _csv_column(value, n) for i, value in enumerate(fields)}
    frame = pd.DataFrame(columns)
    text = frame.to_csv(header=False, index=False, lineterminator="\n", na_rep="", quoting=csv.QUOTE_MINIMAL)
    return np.array(text.rstrip("\n").split("\n"), dtype=object)


_THREAT_NAMES = (
    ("vulnerability", "Microsoft Windows SMB Remote Code Execution Vulnerability(33210)", "reset-both", "critical"),
    ("spyware", "Suspicious DNS Query (generic:example.badsite)(109000001)", "alert", "medium"),
    ("url", "", "alert", "informational"),
)
_SYSTEM_EVENTS = (
    ("general", "general", "informational", "User admin logged in via Web from 10.10.1.20 using https"),
    (
        "general",
        "general",
        "informational",
        "Connection to Update server: updates.paloaltonetworks.com completed successfully, initiated by 10.30.1.10",
    ),
    (
        "auth",
        "auth-success",
        "informational",
        "authenticated for user 'svc-backup'.   auth profile 'corp-ldap', vsys 'shared', server profile 'dc', "
        "From: 10.30.1.12.",
    ),
)


def _positional(values: dict[int, object], width: int) -> list[str]:
    """A CSV row of ``width`` fields with ``values`` at their positions and empty fields elsewhere."""
    row = [""] * width
    for position, value in values.items():
        row[position] = str(value)
    return row


def _threat_row(row: pd.Series, rng: np.random.Generator, serial: str) -> list[str]:
    subtype, threat, action, severity = _THREAT_NAMES[int(rng.integers(0, len(_THREAT_NAMES)))]
    url = f"www.example-{int(rng.integers(100, 999))}.com/index.html" if subtype == "url" else ""
    session = {
        1: row["receive_time"], 6: row["time_generated"], 7: row["src"], 8: row["dst"], 11: row["rule"],
        14: row["app"], 16: row["from"], 17: row["to"], 21: row["time_generated"], 22: row["sessionid"],
        24: row["sport"], 25: row["dport"], 29: row["proto"], 36: row["sessionid"],
    }  # fmt: skip
    fixed = {
        0: "1", 2: serial, 3: "THREAT", 4: subtype, 5: "2561", 9: "0.0.0.0", 10: "0.0.0.0", 15: "vsys1",
        18: "ethernet1/2", 19: "ethernet1/1", 20: "default", 23: "1", 26: "0", 27: "0", 28: "0x80400000",
        30: action, 31: url, 32: threat or "(9999)", 33: "computer-and-internet-info", 34: severity,
        35: "client-to-server", 37: "0x0", 41: "text/html", 59: DEVICE_NAME,
    }  # fmt: skip
    return _positional({**session, **fixed}, 60)


def _system_row(row: pd.Series, rng: np.random.Generator, serial: str) -> list[str]:
    subtype, event, severity, description = _SYSTEM_EVENTS[int(rng.integers(0, len(_SYSTEM_EVENTS)))]
    values = {
        0: "1", 1: row["receive_time"], 2: serial, 3: "SYSTEM", 4: subtype, 5: "0", 6: row["receive_time"],
        8: event, 10: "0", 11: "0", 12: "general", 13: severity, 14: description, 15: row["sessionid"],
        16: "0x0", 22: DEVICE_NAME,
    }  # fmt: skip
    return _positional(values, 23)


def non_traffic_lines(records: pd.DataFrame, rng: np.random.Generator, count: int, *, serial: str) -> list[str]:
    """``count`` THREAT and SYSTEM syslog lines (CSV-quoted) that a TRAFFIC reader must skip.

    They reuse the time (and, for THREAT, the addresses and session) of a record of the batch.
    """
    # Threats are mostly seen on internet traffic; fall back to any record of the batch.
    outbound = records[records["to"] == "untrust"]
    candidates = outbound if len(outbound) else records
    lines = []
    for _ in range(count):
        row = candidates.iloc[int(rng.integers(0, len(candidates)))]
        fields = _threat_row(row, rng, serial) if rng.random() < 0.6 else _system_row(row, rng, serial)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(fields)
        lines.append(str(syslog_headers(np.array([row["receive_time"]], dtype=object))[0]) + buffer.getvalue())
    return lines


# ---------------------------------------------------------------- dimension and ground truth


def write_inventory(lake: Lake, uri: str, inventory: pd.DataFrame) -> None:
    """The machine-inventory dimension as Parquet: ip_address, machine_name, active (bool), segment."""
    schema = pa.schema(
        [("ip_address", pa.string()), ("machine_name", pa.string()), ("active", pa.bool_()), ("segment", pa.string())]
    )
    table = pa.Table.from_pandas(inventory, schema=schema, preserve_index=False).replace_schema_metadata(None)
    lake.write_bytes(uri, encode_parquet(table))


def write_ground_truth(lake: Lake, uri: str, ground_truth: pd.DataFrame) -> None:
    lake.write_bytes(uri, ground_truth.to_csv(index=False, lineterminator="\n").encode("utf-8"))
