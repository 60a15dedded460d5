"""Sessions as PAN-OS TRAFFIC records: the field names, string timestamps and injected defects.

``panos_records`` turns generated sessions (epoch seconds, uint32 IPs) into the raw PAN-OS
fields every writer shares. Malformed rows (the ones a reader must quarantine) are made here, so
that all three file formats carry exactly the same defects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ndr_jobs.synthetic.network import ips_to_strings, zone_of

# Raw PAN-OS TRAFFIC field names, in the order the JSON and Parquet writers emit them.
RAW_TRAFFIC_FIELDS = [
    "receive_time",
    "serial",
    "type",
    "subtype",
    "time_generated",
    "src",
    "dst",
    "rule",
    "app",
    "from",
    "to",
    "sessionid",
    "sport",
    "dport",
    "proto",
    "action",
    "bytes",
    "bytes_sent",
    "bytes_received",
    "packets",
    "start",
    "elapsed",
    "pkts_sent",
    "pkts_received",
    "session_end_reason",
]
INT_FIELDS = (
    "sessionid",
    "sport",
    "dport",
    "bytes",
    "bytes_sent",
    "bytes_received",
    "packets",
    "elapsed",
    "pkts_sent",
    "pkts_received",
)

# Defects a reader must catch; each injected row carries exactly one of them.
MALFORMED_KINDS = ("bad_ip", "negative_elapsed", "negative_bytes", "null_dport")
BAD_IP = "999.1.1.1"


def panos_time(epoch: np.ndarray) -> np.ndarray:
    """Epoch seconds -> PAN-OS timestamp strings ``YYYY/MM/DD HH:MM:SS`` (UTC), vectorized."""
    iso = np.datetime_as_string(np.asarray(epoch, dtype=np.int64).astype("datetime64[s]"), unit="s")
    chars = iso.astype("<U19").view("<U1").reshape(-1, 19).copy()
    chars[:, [4, 7]] = "/"
    chars[:, 10] = " "
    return chars.view("<U19").ravel().astype(object)


def panos_records(
    sessions: pd.DataFrame,
    *,
    serial: str,
    sessionid: np.ndarray,
    receive: np.ndarray,
    malformed: np.ndarray,
) -> pd.DataFrame:
    """PAN-OS TRAFFIC records of ``sessions`` (one per row, same order).

    ``serial`` is the firewall's serial number; ``receive`` is the epoch second the firewall logged
    each record; ``malformed`` holds one of ``MALFORMED_KINDS`` for rows to corrupt and "" for the rest.
    """
    start = sessions["start"].to_numpy(dtype=np.int64)
    elapsed = sessions["elapsed"].to_numpy(dtype=np.int64)
    src_ips = sessions["src"].to_numpy(dtype=np.uint32)
    dst_ips = sessions["dst"].to_numpy(dtype=np.uint32)
    bytes_sent = sessions["bytes_sent"].to_numpy(dtype=np.int64)
    bytes_received = sessions["bytes_received"].to_numpy(dtype=np.int64)
    src = ips_to_strings(src_ips)
    malformed = np.asarray(malformed, dtype=object)

    src[malformed == "bad_ip"] = BAD_IP
    negative_elapsed = malformed == "negative_elapsed"
    reported_elapsed = np.where(negative_elapsed, -(elapsed + 1), elapsed)
    negative_bytes = malformed == "negative_bytes"
    bytes_sent_out = np.where(negative_bytes, -(bytes_sent + 1), bytes_sent)
    dport = pd.array(sessions["dport"].to_numpy(dtype=np.int64), dtype="Int64")
    dport[malformed == "null_dport"] = pd.NA

    records = pd.DataFrame(
        {
            "receive_time": panos_time(receive),
            "serial": serial,
            "type": "TRAFFIC",
            "subtype": sessions["subtype"].to_numpy(),
            "time_generated": panos_time(start + elapsed),
            "src": src,
            "dst": ips_to_strings(dst_ips),
            "rule": sessions["rule"].to_numpy(),
            "app": sessions["app"].to_numpy(),
            "from": zone_of(src_ips),
            "to": zone_of(dst_ips),
            "sessionid": np.asarray(sessionid, dtype=np.int64),
            "sport": sessions["sport"].to_numpy(dtype=np.int64),
            "dport": dport,
            "proto": sessions["proto"].to_numpy(),
            "action": sessions["action"].to_numpy(),
            "bytes": bytes_sent_out + bytes_received,
            "bytes_sent": bytes_sent_out,
            "bytes_received": bytes_received,
            "packets": sessions["pkts_sent"].to_numpy(dtype=np.int64)
            + sessions["pkts_received"].to_numpy(dtype=np.int64),
            "start": panos_time(start),
            "elapsed": reported_elapsed,
            "pkts_sent": sessions["pkts_sent"].to_numpy(dtype=np.int64),
            "pkts_received": sessions["pkts_received"].to_numpy(dtype=np.int64),
            "session_end_reason": sessions["session_end_reason"].to_numpy(),
        },
        columns=RAW_TRAFFIC_FIELDS,
    )
    return records
