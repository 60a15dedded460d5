"""Generate a lake of synthetic PAN-OS TRAFFIC mini-batches for N tenants (``generate_traffic``).

Per tenant: write the machine inventory and the scenario ground truth, then walk the range one
day (96 windows) at a time. Each day draws the normal sessions that START in it, adds the scenario
sessions that start in it, decides which records arrive late and which are malformed, and writes
every mini-batch whose window is complete. A session ending after the day's end waits for the next
day's pass, so batches are exact however the range is cut.

A session belongs to the window containing its end (``time_generated``); its mini-batch is that
window's, except for the late ones, which land in the next window's mini-batch. A mini-batch id is
its landing time, window start + 14m50s.

Besides one record per session, the logs carry what real firewalls and collectors write (counted
in the summary, so tests and the demo can check exact counts; never for scenario or malformed rows
except the respelling, which keeps an action's meaning):

- start logs (``start_log_rate`` of the allowed sessions): the same serial, session id and start
  time, subtype ``start``, ``time_generated`` = start, elapsed 0, end reason ``n/a``, in the
  mini-batch of the window the session started in (the end record's or an earlier one);
- the other spelling of an action (``respelling_rate`` of the ``drop-icmp``/``reset-*`` records,
  e.g. ``reset both``, ``drop ICMP``); ``drop_icmp_rate`` of the normal drops are ``drop-icmp``;
- redeliveries (``redelivery_rate`` of the on-time session records): the same record again in the
  next window's mini-batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ndr_assets.transforms.windows import SLICE_SECONDS
from ndr_jobs.synthetic.grid import (
    LANDING_OFFSET_SECONDS,
    aligned_start,
    from_epoch,
    mini_batch_id_for_window,
    to_epoch,
    window_start_epochs,
)
from ndr_jobs.synthetic.network import TenantNetwork, build_network, tenant_rng
from ndr_jobs.synthetic.records import MALFORMED_KINDS, panos_records
from ndr_jobs.synthetic.scenario_files import ScenarioFile, default_scenarios, load_scenario_file
from ndr_jobs.synthetic.scenarios import ground_truth, inject_scenarios, scenario_sessions
from ndr_jobs.synthetic.traffic import concat_sessions, generate_normal_sessions, session_ends
from ndr_jobs.synthetic.writers import (
    FORMATS,
    encode_lines,
    encode_parquet,
    ground_truth_uri,
    inventory_uri,
    jsonl_lines,
    mini_batch_uri,
    non_traffic_lines,
    panos_csv_lines,
    parquet_table,
    raw_prefix,
    write_ground_truth,
    write_inventory,
)
from ndr_resources.lake import Lake

WINDOWS_PER_CHUNK = 96  # one day of windows per pass

# Independent random streams per tenant, so changing one aspect never reshuffles another.
_STREAM_TRAFFIC, _STREAM_DELIVERY, _STREAM_SCENARIOS, _STREAM_SESSION_IDS, _STREAM_NON_TRAFFIC = 2, 3, 4, 5, 6
_STREAM_SESSION_LOGS = 7
# The other way PAN-OS writes an action (both occur in real logs; readers normalize them).
ALTERNATE_SPELLINGS = {
    "drop-icmp": "drop ICMP",
    "reset-both": "reset both",
    "reset-client": "reset client",
    "reset-server": "reset server",
}
# What a written TRAFFIC record is: one per session, or one of the extra logs of a session.
SESSION_RECORD, START_LOG, REDELIVERY = "session", "start_log", "redelivery"


@dataclass
class ScenarioSummary:
    """One injected scenario; ``session_ids`` label its records in the written data."""

    name: str  # unique in its scenario file
    kind: str
    host_ip: str
    peers: tuple[str, ...]
    sessions: int
    window_starts: list[str]
    session_ids: list[int] = field(default_factory=list)


@dataclass
class TenantSummary:
    """What was written for one tenant."""

    org1: str
    org2: str
    raw_prefix: str
    ground_truth_uri: str
    inventory_uri: str
    windows: int = 0
    sessions: int = 0  # sessions written (one record each), late and malformed ones included
    start_logs: int = 0  # extra TRAFFIC records of subtype start
    redelivered: int = 0  # extra copies of session records in a later mini-batch
    respelled_actions: int = 0  # TRAFFIC records whose action is written in its other spelling
    mini_batches: int = 0
    late_sessions: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_KINDS, 0))
    non_traffic_lines: int = 0
    scenarios: list[ScenarioSummary] = field(default_factory=list)
    ground_truth_rows: int = 0
    mini_batch_ids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.org1}/{self.org2}"

    @property
    def traffic_records(self) -> int:
        """TRAFFIC records written: sessions, start logs and redelivered copies."""
        return self.sessions + self.start_logs + self.redelivered

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    @property
    def scenario_sessions(self) -> int:
        return sum(s.sessions for s in self.scenarios)


@dataclass
class GenerationSummary:
    bucket: str
    fmt: str
    seed: int
    scale: float
    start: datetime  # first window start
    end: datetime  # end of the last window
    tenants: list[TenantSummary]
    seconds: float = 0.0

    @property
    def total_sessions(self) -> int:
        return sum(t.sessions for t in self.tenants)


@dataclass(frozen=True)
class GenerationProgress:
    """Reported after each day of a tenant is written."""

    tenant: str
    chunk: int  # 1-based
    chunks: int
    sessions: int  # written so far for this tenant


@dataclass(frozen=True)
class _Options:
    bucket: str
    fmt: str
    seed: int
    scale: float
    late_rate: float
    malformed_rate: float
    non_traffic_rate: float
    start_log_rate: float
    redelivery_rate: float
    respelling_rate: float
    drop_icmp_rate: float


def _validate(tenants: Sequence[tuple[str, str]], days: float, fmt: str, rates: dict[str, float], scale: float) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {list(FORMATS)}")
    if not tenants:
        raise ValueError("no tenants given")
    for org1, org2 in tenants:
        for part in (org1, org2):
            if not part or "/" in part or part in (".", "..") or part != part.strip():
                raise ValueError(
                    f"tenant {org1!r}/{org2!r}: each of org1 and org2 must be a non-empty name without '/'"
                )
    if len(set(tenants)) != len(tenants):
        raise ValueError(f"tenants listed twice: {list(tenants)}")
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    for name, rate in rates.items():
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be in [0, 1), got {rate}")


def generate_traffic(
    lake: Lake,
    *,
    bucket: str,
    tenants: Sequence[tuple[str, str]],
    start: datetime,
    days: float,
    seed: int,
    fmt: str = "jsonl",
    scale: float = 1.0,
    hosts_per_tenant: int = 120,
    late_rate: float = 0.005,
    malformed_rate: float = 0.001,
    non_traffic_rate: float = 0.003,
    start_log_rate: float = 0.2,
    redelivery_rate: float = 0.002,
    respelling_rate: float = 0.5,
    drop_icmp_rate: float = 0.25,
    scenarios: ScenarioFile | str | Path | None = None,
    progress: Callable[[GenerationProgress], None] | None = None,
    attacks_from: datetime | None = None,
) -> GenerationSummary:
    """Write ``days`` of seeded synthetic PAN-OS TRAFFIC for each ``(org1, org2)`` tenant into ``lake``.

    ``start`` is floored onto the window grid; the range is ``round(days * 96)`` windows. Writes
    ``s3://<bucket>/paloalto/<org1>/<org2>/<mini_batch_id>/part-00000.*`` (``fmt``: jsonl,
    parquet or panos_csv), ``s3://<bucket>/synthetic/<org1>/<org2>/ground_truth.csv`` and
    the machine inventory (the local warehouse's ``dim.machines``, see ``writers.inventory_uri``). ``scale`` multiplies the
    normal session rates (1.0: about 30k sessions per weekday for 120 hosts). ``attacks_from``
    keeps the injected scenarios after that instant (the demo puts them in the scored month, so
    the baselines learn from clean history). ``start_log_rate``, ``redelivery_rate``,
    ``respelling_rate`` and ``drop_icmp_rate``: see the module docstring. ``scenarios``: the attacks
    to inject, a scenario file (its path, or loaded; ``scenario_files``), by default
    ``seeds/scenarios/default.json``. The same arguments write the same bytes.
    """
    rates = {
        "late_rate": late_rate,
        "malformed_rate": malformed_rate,
        "non_traffic_rate": non_traffic_rate,
        "start_log_rate": start_log_rate,
        "redelivery_rate": redelivery_rate,
        "respelling_rate": respelling_rate,
        "drop_icmp_rate": drop_icmp_rate,
    }
    _validate(tenants, days, fmt, rates, scale)
    if scenarios is None:
        scenarios = default_scenarios()
    elif not isinstance(scenarios, ScenarioFile):
        scenarios = load_scenario_file(scenarios)
    began = time.perf_counter()
    range_start = aligned_start(start)
    n_windows = max(1, round(days * 24 * 3600 / SLICE_SECONDS))
    range_end = range_start + n_windows * SLICE_SECONDS
    attack_start = range_start
    if attacks_from is not None:  # the first whole window at or after attacks_from
        attack_start = max(range_start, -(-(to_epoch(attacks_from) - aligned_start(attacks_from)) // SLICE_SECONDS)
                           * SLICE_SECONDS + aligned_start(attacks_from))
    if attack_start >= range_end:
        raise ValueError(f"attacks_from {attacks_from} is not before the end of the generated range")
    options = _Options(bucket, fmt, seed, scale, **rates)
    summaries = []
    for org1, org2 in tenants:
        network = build_network(org1, org2, seed=seed, total_hosts=hosts_per_tenant)
        summaries.append(
            _generate_tenant(lake, network, options, range_start, range_end, scenarios, progress, attack_start)
        )
    return GenerationSummary(
        bucket=bucket,
        fmt=fmt,
        seed=seed,
        scale=scale,
        start=from_epoch(range_start),
        end=from_epoch(range_end),
        tenants=summaries,
        seconds=time.perf_counter() - began,
    )


def _generate_tenant(
    lake: Lake,
    network: TenantNetwork,
    options: _Options,
    range_start: int,
    range_end: int,
    scenarios: ScenarioFile,
    progress: Callable[[GenerationProgress], None] | None,
    attack_start: int,
) -> TenantSummary:
    org1, org2, seed = network.org1, network.org2, options.seed
    summary = TenantSummary(
        org1=org1,
        org2=org2,
        raw_prefix=raw_prefix(options.bucket, org1, org2),
        ground_truth_uri=ground_truth_uri(options.bucket, org1, org2),
        inventory_uri=inventory_uri(options.bucket, org1, org2),
        windows=(range_end - range_start) // SLICE_SECONDS,
    )
    write_inventory(lake, summary.inventory_uri, network.inventory)

    injected = inject_scenarios(
        network,
        start=attack_start,
        end=range_end,
        rng=tenant_rng(seed, org1, org2, _STREAM_SCENARIOS),
        scenarios=scenarios,
    )
    truth = ground_truth(network, injected)
    write_ground_truth(lake, summary.ground_truth_uri, truth)
    summary.ground_truth_rows = len(truth)
    summary.scenarios = [
        ScenarioSummary(s.name, s.kind, s.host_ip, s.peers, len(s.sessions), s.window_starts) for s in injected
    ]
    attacks = scenario_sessions(injected)
    attack_starts = attacks["start"].to_numpy(dtype=np.int64)

    existing = set(lake.list_children(summary.raw_prefix))
    next_session_id = int(tenant_rng(seed, org1, org2, _STREAM_SESSION_IDS).integers(10_000, 2_000_000))
    chunk_len = WINDOWS_PER_CHUNK * SLICE_SECONDS
    chunk_starts = list(range(range_start, range_end, chunk_len))
    pending: pd.DataFrame | None = None  # sessions whose mini-batch is not complete yet
    for index, chunk_start in enumerate(chunk_starts):
        chunk_end = min(chunk_start + chunk_len, range_end)
        normal = generate_normal_sessions(
            network,
            start=chunk_start,
            end=chunk_end,
            rng=tenant_rng(seed, org1, org2, _STREAM_TRAFFIC, chunk_start),
            scale=options.scale,
        )
        in_chunk = (attack_starts >= chunk_start) & (attack_starts < chunk_end)
        sessions = concat_sessions([normal, attacks[in_chunk]])
        sessions = sessions[session_ends(sessions) < range_end]
        # A stable order before numbering makes session ids reproducible.
        sessions = sessions.sort_values(["start", "src", "dst", "sport", "dport"], kind="stable", ignore_index=True)
        delivered = _delivery(
            sessions,
            first_session_id=next_session_id,
            rng=tenant_rng(seed, org1, org2, _STREAM_DELIVERY, chunk_start),
            options=options,
            last_window=range_end - SLICE_SECONDS,
        )
        next_session_id += len(delivered)
        new = _session_logs(
            delivered,
            rng=tenant_rng(seed, org1, org2, _STREAM_SESSION_LOGS, chunk_start),
            options=options,
            last_window=range_end - SLICE_SECONDS,
        )
        pending = new if pending is None else pd.concat([pending, new], ignore_index=True)
        last_chunk = index == len(chunk_starts) - 1
        ready = (
            np.ones(len(pending), dtype=bool)
            if last_chunk
            else (pending["batch_window"].to_numpy() + SLICE_SECONDS <= chunk_end)
        )
        _write_batches(lake, network, options, pending[ready], summary, existing)
        pending = pending[~ready].reset_index(drop=True)
        if progress is not None:
            progress(GenerationProgress(network.label, index + 1, len(chunk_starts), summary.sessions))
    return summary


def _delivery(
    sessions: pd.DataFrame, *, first_session_id: int, rng: np.random.Generator, options: _Options, last_window: int
) -> pd.DataFrame:
    """Add session id, window, mini-batch window, receive time and malformed kind to each session."""
    n = len(sessions)
    ends = session_ends(sessions)
    window = window_start_epochs(ends)
    # Late records are logged after their window's mini-batch landed: they ride in the next one.
    late = (rng.random(n) < options.late_rate) & (window < last_window)
    batch_window = window + np.where(late, SLICE_SECONDS, 0)
    # Logged a few seconds after the end, within the session's window (the batch of a window
    # holds exactly the records received in it).
    on_time_receive = np.minimum(ends + rng.integers(1, 9, size=n), window + SLICE_SECONDS - 1)
    late_receive = batch_window + rng.integers(5, LANDING_OFFSET_SECONDS, size=n)
    # Scenario rows stay clean so that the ground truth is exactly what a reader keeps.
    corrupt = (rng.random(n) < options.malformed_rate) & (sessions["scenario"].to_numpy() == "")
    kinds = rng.choice(np.array(MALFORMED_KINDS, dtype=object), size=n)
    out = sessions.copy()
    out["sessionid"] = first_session_id + np.arange(n, dtype=np.int64)
    out["window"] = window
    out["batch_window"] = batch_window
    out["late"] = late
    out["receive"] = np.where(late, late_receive, on_time_receive)
    out["malformed"] = np.where(corrupt, kinds, "").astype(object)
    return out


def _session_logs(
    delivered: pd.DataFrame, *, rng: np.random.Generator, options: _Options, last_window: int
) -> pd.DataFrame:
    """The records of the delivered sessions: action spellings, plus start logs and redeliveries.

    Adds ``record_kind`` (``SESSION_RECORD``, ``START_LOG``, ``REDELIVERY``) and ``respelled``.
    """
    n = len(delivered)
    out = delivered.copy()
    action = out["action"].to_numpy(dtype=object).copy()
    normal = out["scenario"].to_numpy() == ""
    well_formed = normal & (out["malformed"].to_numpy() == "")
    # A drop that also tells the client (ICMP unreachable); scenario actions stay as injected.
    action[normal & (action == "drop") & (rng.random(n) < options.drop_icmp_rate)] = "drop-icmp"
    respelled = np.isin(action, list(ALTERNATE_SPELLINGS)) & (rng.random(n) < options.respelling_rate)
    action[respelled] = pd.Series(action[respelled], dtype=object).map(ALTERNATE_SPELLINGS).to_numpy(dtype=object)
    out["action"] = action
    out["respelled"] = respelled
    out["record_kind"] = SESSION_RECORD

    start = out["start"].to_numpy(dtype=np.int64)
    opened = well_formed & (action == "allow") & (rng.random(n) < options.start_log_rate)
    start_window = window_start_epochs(start)
    start_receive = np.minimum(start + rng.integers(1, 9, size=n), start_window + SLICE_SECONDS - 1)
    starts = out[opened].copy()
    starts["elapsed"] = 0
    starts["subtype"] = "start"
    starts["session_end_reason"] = "n/a"
    starts["bytes_received"] = 0
    starts["pkts_received"] = 0
    starts["pkts_sent"] = 1
    starts["bytes_sent"] = np.minimum(starts["bytes_sent"].to_numpy(dtype=np.int64), 74)
    starts["window"] = start_window[opened]
    starts["batch_window"] = start_window[opened]
    starts["receive"] = start_receive[opened]
    starts["late"] = False
    starts["record_kind"] = START_LOG

    late = out["late"].to_numpy(dtype=bool)
    batch_window = out["batch_window"].to_numpy(dtype=np.int64)
    again = well_formed & ~late & (batch_window < last_window) & (rng.random(n) < options.redelivery_rate)
    copies = out[again].copy()
    copies["batch_window"] = batch_window[again] + SLICE_SECONDS  # the same log, in the next mini-batch
    copies["record_kind"] = REDELIVERY
    return pd.concat([out, starts, copies], ignore_index=True)


def _write_batches(
    lake: Lake,
    network: TenantNetwork,
    options: _Options,
    rows: pd.DataFrame,
    summary: TenantSummary,
    existing: set[str],
) -> None:
    if rows.empty:
        return
    rows = rows.sort_values(["batch_window", "receive", "sessionid"], kind="stable", ignore_index=True)
    serial = f"0079{network.tenant_key % 10**8:08d}"
    records = panos_records(
        rows,
        serial=serial,
        sessionid=rows["sessionid"].to_numpy(),
        receive=rows["receive"].to_numpy(),
        malformed=rows["malformed"].to_numpy(),
    )
    batch_windows = rows["batch_window"].to_numpy()
    boundaries = np.flatnonzero(np.diff(batch_windows)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(rows)]])
    if options.fmt == "jsonl":
        encoded = jsonl_lines(records)
    elif options.fmt == "parquet":
        encoded = parquet_table(records)
    else:
        encoded = panos_csv_lines(records)
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        window = int(batch_windows[lo])
        mini_batch_id = mini_batch_id_for_window(window)
        if options.fmt == "jsonl":
            data = encode_lines(encoded[lo:hi])
        elif options.fmt == "parquet":
            data = encode_parquet(encoded.slice(lo, hi - lo))
        else:
            lines = encoded[lo:hi]
            rng = tenant_rng(options.seed, network.org1, network.org2, _STREAM_NON_TRAFFIC, window)
            extra = non_traffic_lines(
                records.iloc[lo:hi], rng, int(rng.poisson(options.non_traffic_rate * (hi - lo))), serial=serial
            )
            if extra:
                positions = rng.integers(0, len(lines) + 1, size=len(extra))
                lines = np.insert(lines, np.sort(positions), np.array(extra, dtype=object))
            summary.non_traffic_lines += len(extra)
            data = encode_lines(lines)
        if mini_batch_id in existing:
            # A re-run replaces the folder, so a change of format leaves no stale file behind.
            lake.delete_prefix(f"{summary.raw_prefix}{mini_batch_id}/")
        lake.write_bytes(mini_batch_uri(options.bucket, network.org1, network.org2, mini_batch_id, options.fmt), data)
        summary.mini_batches += 1
        summary.mini_batch_ids.append(mini_batch_id)
    kinds = rows["record_kind"].value_counts()
    summary.sessions += int(kinds.get(SESSION_RECORD, 0))
    summary.start_logs += int(kinds.get(START_LOG, 0))
    summary.redelivered += int(kinds.get(REDELIVERY, 0))
    summary.respelled_actions += int(rows["respelled"].sum())
    labelled = rows[(rows["scenario"] != "") & (rows["record_kind"] == SESSION_RECORD)]
    for scenario in summary.scenarios:
        ids = labelled.loc[labelled["scenario"] == scenario.name, "sessionid"]
        scenario.session_ids.extend(int(i) for i in ids)
    summary.late_sessions += int((rows["late"] & (rows["record_kind"] == SESSION_RECORD)).sum())
    malformed = rows.loc[(rows["malformed"] != "") & (rows["record_kind"] == SESSION_RECORD), "malformed"]
    for kind, count in malformed.value_counts().items():
        summary.malformed[str(kind)] += int(count)
