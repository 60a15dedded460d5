"""Labelled attack scenarios injected into a tenant's traffic, with their ground truth.

What to inject comes from a scenario file (``scenario_files``; ``seeds/scenarios/default.json`` by
default). Each scenario picks its own host, its own never-seen external peers (first octets
reserved in ``network.SCENARIO_FIRST_OCTETS``) and a time inside the generated range; what the file
leaves out is drawn from the tenant's scenario stream exactly as the former hard-coded scenarios
drew it, so the default file reproduces their ground truth. The ground truth lists every (host,
window) where the scenario has at least one session END, the window on the 08/23/38/53 grid that
contains the session's ``time_generated``.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ndr_assets.transforms.windows import SLICE_SECONDS
from ndr_jobs.synthetic.grid import window_iso, window_start_epochs
from ndr_jobs.synthetic.network import (
    SCENARIO_FIRST_OCTETS,
    SEGMENT_CIDRS,
    TenantNetwork,
    ips_to_strings,
    random_public_ips,
)
from ndr_jobs.synthetic.scenario_files import (
    BulkExfiltrationScenario,
    C2BeaconingScenario,
    InternalPortScanScenario,
    RareExternalPairsScenario,
    Scenario,
    ScenarioFile,
    ScenarioFileError,
    default_scenarios,
)
from ndr_jobs.synthetic.traffic import complete_sessions, concat_sessions, ephemeral_ports, lognormal_int, session_ends

C2_BEACONING = "c2_beaconing"
BULK_EXFILTRATION = "bulk_exfiltration"
INTERNAL_PORT_SCAN = "internal_port_scan"
RARE_EXTERNAL_PAIRS = "rare_external_pairs"
SCENARIOS = (C2_BEACONING, BULK_EXFILTRATION, INTERNAL_PORT_SCAN, RARE_EXTERNAL_PAIRS)

# ``scenario`` is the kind; ``scenario_name`` tells apart several scenarios of one kind in a file.
GROUND_TRUTH_COLUMNS = ["org1", "org2", "host_ip", "window_start", "scenario", "scenario_name"]

# A beacon's gaps are clipped this many standard deviations (jitter_s) either side of the period:
# the former fixed 60 s +- 4 s beacon was clipped to 45..75 s.
BEACON_GAP_CLIP_SD = 3.75
# Share of a scan's targets that are live hosts (the rest are empty addresses of their subnets).
SCAN_LIVE_SHARE = 0.6
SCAN_PORTS = np.array([21, 22, 23, 80, 135, 139, 443, 445, 1433, 3306, 3389, 5900, 5985, 5986, 8080], dtype=np.int64)
_SCAN_APPS = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    80: "web-browsing",
    135: "msrpc",
    139: "netbios-ss",
    443: "ssl",
    445: "ms-ds-smb",
    1433: "mssql-db",
    3306: "mysql",
    3389: "ms-rdp",
    5900: "vnc",
    5985: "ms-winrm",
    5986: "ms-winrm",
    8080: "web-browsing",
}
RARE_PORTS = np.array([2222, 4444, 5222, 6667, 8080, 8443, 8888, 9001, 10443, 1337], dtype=np.int64)


@dataclass(frozen=True)
class InjectedScenario:
    """One injected scenario: who, against whom, and its sessions (``traffic.SESSION_COLUMNS``).

    ``name`` is unique per file and labels the sessions; ``kind`` is what it is (``SCENARIOS``).
    """

    name: str
    kind: str
    host_ip: str
    peers: tuple[str, ...]
    sessions: pd.DataFrame

    @property
    def window_starts(self) -> list[str]:
        """ISO starts of the windows holding at least one of its session ends (sorted)."""
        return [window_iso(w) for w in np.unique(window_start_epochs(session_ends(self.sessions))).tolist()]


def _scenario_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    return random_public_ips(rng, n, np.array(SCENARIO_FIRST_OCTETS))


def _window_span(rng: np.random.Generator, start: int, end: int, n_windows: int) -> tuple[int, int]:
    """A seeded run of up to ``n_windows`` whole windows inside [start, end) (start is on the grid)."""
    total = (end - start) // SLICE_SECONDS
    n_windows = max(1, min(n_windows, total))
    first = start + int(rng.integers(0, total - n_windows + 1)) * SLICE_SECONDS
    return first, first + n_windows * SLICE_SECONDS


def _ends_in_windows(rng: np.random.Generator, first: int, last: int, n: int) -> np.ndarray:
    """``n`` session ends spread over the windows [first, last), each window getting at least one
    (with fewer sessions than windows: one each in ``n`` seeded windows)."""
    windows = (last - first) // SLICE_SECONDS
    if n < windows:
        which = np.sort(rng.choice(windows, size=n, replace=False))
    else:
        which = np.concatenate([np.arange(windows), rng.integers(0, windows, size=n - windows)])
    return first + which * SLICE_SECONDS + rng.integers(0, SLICE_SECONDS, size=len(which))


def _closed_tcp_sessions(
    rng: np.random.Generator,
    *,
    host_ip: int,
    dst: np.ndarray,
    dport: np.ndarray,
    app: np.ndarray | str,
    rule: str,
    start: np.ndarray,
    elapsed: np.ndarray,
    bytes_sent: np.ndarray,
    bytes_received: np.ndarray,
    scenario: str,
) -> pd.DataFrame:
    """Allowed TCP sessions from ``host_ip`` that all close normally (FIN)."""
    n = len(start)
    return complete_sessions(
        rng,
        start=start,
        elapsed=elapsed,
        src=np.full(n, host_ip),
        dst=np.broadcast_to(dst, n),
        sport=ephemeral_ports(rng, n),
        dport=np.broadcast_to(dport, n),
        proto=np.full(n, "tcp", dtype=object),
        app=np.broadcast_to(np.asarray(app, dtype=object), n),
        rule=np.full(n, rule, dtype=object),
        action=np.full(n, "allow", dtype=object),
        bytes_sent=bytes_sent,
        bytes_received=bytes_received,
        scenario=scenario,
        allowed_end_reason=np.full(n, "tcp-fin", dtype=object),
    )


def _injected(spec: Scenario, host_ip: int, peers: np.ndarray, sessions: pd.DataFrame) -> InjectedScenario:
    return InjectedScenario(
        spec.name,
        spec.kind,
        str(ips_to_strings(np.array([host_ip]))[0]),
        tuple(ips_to_strings(np.asarray(peers)).tolist()),
        sessions,
    )


def _given_start(spec: Scenario, start: int, end: int, where: str) -> int | None:
    """The file's ``start`` in epoch seconds (None: seeded), checked to lie in the attack range [start, end)."""
    given = spec.start_epoch(start)
    if given is not None and not start <= given < end:
        raise ScenarioFileError(
            f"{where}: key 'start': {spec.start!r} is outside the range attacks are injected in "
            f"({window_iso(start)} .. {window_iso(end)})"
        )
    return given


def _scenario_span(
    rng: np.random.Generator,
    spec: Scenario,
    seconds: int | None,
    *,
    start: int,
    end: int,
    seeded_windows: Callable[[], int],
    where: str,
) -> tuple[int, int]:
    """[first, last) whole windows of a scenario: ``seconds`` long (else ``seeded_windows()`` windows),
    from the file's start (else a seeded one), inside [start, end)."""
    n_windows = seeded_windows() if seconds is None else max(1, math.ceil(seconds / SLICE_SECONDS))
    given = _given_start(spec, start, end, where)
    if given is None:
        return _window_span(rng, start, end, n_windows)
    first = start + (given - start) // SLICE_SECONDS * SLICE_SECONDS
    return first, min(end, first + n_windows * SLICE_SECONDS)


def c2_beaconing(
    rng: np.random.Generator,
    network: TenantNetwork,
    host: int,
    *,
    start: int,
    end: int,
    spec: C2BeaconingScenario,
    where: str,
) -> InjectedScenario:
    """A workstation calling one rare external IP every ``period_s`` (+- ``jitter_s``) with small
    payloads, for hours (default: every ~60 s for 2-5 h)."""
    host_ip = int(network.hosts["ip"].iloc[host])
    c2 = _scenario_ips(rng, 1)[0]
    port = int(rng.choice([443, 8443]))
    period, jitter = float(spec.period_s), float(spec.jitter_s)
    given = _given_start(spec, start, end, where)
    room = end - (start if given is None else given)
    duration = min(int(rng.uniform(2, 5) * 3600) if spec.duration is None else spec.duration, room - 120)
    if duration < period:
        raise ScenarioFileError(
            f"{where}: key 'start': the beacon starts too close to the end of the range for one {period:g} s period"
        )
    first = start + int(rng.integers(0, max(1, end - start - duration - 60))) if given is None else given
    low, high = max(1.0, period - BEACON_GAP_CLIP_SD * jitter), period + BEACON_GAP_CLIP_SD * jitter
    gaps = np.clip(rng.normal(period, jitter, size=int(duration // period) + 1), low, high)
    starts = first + np.cumsum(np.rint(gaps)).astype(np.int64)
    starts = starts[starts < first + duration]
    n = len(starts)
    elapsed = rng.integers(0, 3, size=n)
    keep = starts + elapsed < end
    starts, elapsed, n = starts[keep], elapsed[keep], int(keep.sum())
    # Mostly identical check-ins; now and then the server sends a task.
    tasking = rng.random(n) < 0.05
    received = np.where(tasking, rng.integers(4000, 20000, size=n), np.rint(rng.normal(310, 40, size=n)))
    sessions = _closed_tcp_sessions(
        rng,
        host_ip=host_ip,
        dst=c2,
        dport=port,
        app="ssl",
        rule="allow-web-outbound",
        start=starts,
        elapsed=elapsed,
        bytes_sent=np.rint(rng.normal(420, 30, size=n)).astype(np.int64),
        bytes_received=received.astype(np.int64),
        scenario=spec.name,
    )
    return _injected(spec, host_ip, np.array([c2]), sessions)


def bulk_exfiltration(
    rng: np.random.Generator,
    network: TenantNetwork,
    host: int,
    *,
    start: int,
    end: int,
    spec: BulkExfiltrationScenario,
    where: str,
) -> InjectedScenario:
    """One host uploading to a new external IP: ``total_bytes`` in sessions at ``pace`` per hour over
    ``duration`` (default: 4-12 sessions of ~80 MB, hundreds of MB over 1-3 windows)."""
    host_ip = int(network.hosts["ip"].iloc[host])
    peer = _scenario_ips(rng, 1)[0]
    first, last = _scenario_span(
        rng, spec, spec.duration, start=start, end=end, seeded_windows=lambda: int(rng.integers(1, 4)), where=where
    )
    if spec.sessions is not None:
        n = spec.sessions
    elif spec.pace is not None:
        n = max(1, round(spec.pace * (last - first) / 3600))
    else:
        n = int(rng.integers(4, 13))
    ends = _ends_in_windows(rng, first, last, n)
    elapsed = np.minimum(rng.integers(60, 600, size=n), ends - start)
    if spec.total_bytes is None:
        sent = lognormal_int(rng, (18.2, 0.5), n)  # ~80 MB each
    else:  # the total, shared unevenly between the sessions
        weights = rng.uniform(0.5, 1.5, size=n)
        sent = np.maximum(1, np.rint(spec.total_bytes * weights / weights.sum())).astype(np.int64)
    sessions = _closed_tcp_sessions(
        rng,
        host_ip=host_ip,
        dst=peer,
        dport=443,
        app="ssl",
        rule="allow-web-outbound",
        start=ends - elapsed,
        elapsed=elapsed,
        bytes_sent=sent,
        bytes_received=lognormal_int(rng, (11.5, 0.5), n),
        scenario=spec.name,
    )
    return _injected(spec, host_ip, np.array([peer]), sessions)


def internal_port_scan(
    rng: np.random.Generator,
    network: TenantNetwork,
    host: int,
    *,
    start: int,
    end: int,
    spec: InternalPortScanScenario,
    where: str,
) -> InjectedScenario:
    """One workstation probing ``targets`` internal IPs on ``ports`` (admin / file-share / db ports),
    ``spread`` over a time; mostly blocked or refused (default: 40-80 targets in 1-2 windows)."""
    host_ip = int(network.hosts["ip"].iloc[host])
    first, last = _scenario_span(
        rng, spec, spec.span_seconds, start=start, end=end, seeded_windows=lambda: int(rng.integers(1, 3)), where=where
    )
    hosts = network.hosts
    real = hosts.loc[hosts["segment"].isin(["servers", "databases", "workstations"]), "ip"].to_numpy(dtype=np.uint32)
    real = real[real != host_ip]
    # Sweeps hit live hosts and empty addresses of the same subnets alike.
    n_live = int(rng.integers(25, 45)) if spec.targets is None else max(1, round(SCAN_LIVE_SHARE * spec.targets))
    live = rng.choice(real, size=min(len(real), n_live), replace=False)
    n_empty = int(rng.integers(15, 35)) if spec.targets is None else max(0, spec.targets - len(live))
    subnets = rng.choice(live, size=n_empty) & np.uint32(0xFFFFFF00)
    empty = subnets | rng.integers(10, 251, size=n_empty).astype(np.uint32)
    empty = empty[~np.isin(empty, hosts["ip"].to_numpy(dtype=np.uint32))]
    targets = np.unique(np.concatenate([live, empty]))
    if isinstance(spec.ports, list):  # every target on the listed ports
        dst = np.repeat(targets, len(spec.ports))
        dport = np.tile(np.array(spec.ports, dtype=np.int64), len(targets))
    else:
        if spec.ports is None:
            ports_per_target = rng.integers(4, 13, size=len(targets))
        else:
            ports_per_target = np.full(len(targets), min(spec.ports, len(SCAN_PORTS)))
        dst = np.repeat(targets, ports_per_target)
        dport = np.concatenate([rng.choice(SCAN_PORTS, size=k, replace=False) for k in ports_per_target.tolist()])
    n = len(dst)
    ends = _ends_in_windows(rng, first, last, n)
    elapsed = np.minimum(rng.integers(0, 4, size=n), ends - start)
    action = rng.choice(
        np.array(["deny", "drop", "reset-both", "allow"], dtype=object), size=n, p=[0.35, 0.10, 0.15, 0.40]
    )
    is_live = np.isin(dst, live)
    answered = (action == "allow") & is_live & (rng.random(n) < 0.3)  # an open port: a short exchange
    refused = (action == "allow") & is_live & ~answered  # closed port: the server resets
    bytes_received = np.where(answered, rng.integers(300, 5000, size=n), np.where(refused, 60, 0))
    end_reason = np.where(answered, "tcp-fin", np.where(refused, "tcp-rst-from-server", "aged-out")).astype(object)
    known_app = pd.Series(dport).map(_SCAN_APPS).fillna("unknown-tcp").to_numpy(dtype=object)
    app = np.where(answered, known_app, "incomplete").astype(object)
    rule = np.where(action == "allow", "allow-intranet", "deny-lateral-admin").astype(object)
    sessions = complete_sessions(
        rng,
        start=ends - elapsed,
        elapsed=elapsed,
        src=np.full(n, host_ip),
        dst=dst,
        sport=ephemeral_ports(rng, n),
        dport=dport,
        proto=np.full(n, "tcp", dtype=object),
        app=app,
        rule=rule,
        action=action,
        bytes_sent=np.where(answered, rng.integers(300, 2000, size=n), 74),
        bytes_received=bytes_received,
        scenario=spec.name,
        reset_by_policy=True,
        allowed_end_reason=end_reason,
    )
    return _injected(spec, host_ip, targets, sessions)


def rare_external_pairs(
    rng: np.random.Generator,
    network: TenantNetwork,
    host: int,
    *,
    start: int,
    end: int,
    spec: RareExternalPairsScenario,
    where: str,
) -> InjectedScenario:
    """A server contacting ``pairs`` never-seen external IP:port pairs (default: 5-10 within one or two windows)."""
    host_ip = int(network.hosts["ip"].iloc[host])
    first, last = _scenario_span(
        rng, spec, spec.duration, start=start, end=end, seeded_windows=lambda: int(rng.integers(1, 3)), where=where
    )
    pairs = int(rng.integers(5, 11)) if spec.pairs is None else spec.pairs
    peers = _scenario_ips(rng, pairs)
    # Distinct peers make distinct pairs even when there are more pairs than rare ports.
    ports = rng.choice(RARE_PORTS, size=pairs, replace=pairs > len(RARE_PORTS))
    per_pair = rng.integers(1, 5, size=pairs)
    dst, dport = np.repeat(peers, per_pair), np.repeat(ports, per_pair)
    n = len(dst)
    ends = _ends_in_windows(rng, first, last, n)
    elapsed = np.minimum(rng.integers(1, 90, size=n), ends - start)
    app = np.where(np.isin(dport, [8443, 10443]), "ssl", "unknown-tcp").astype(object)
    sessions = _closed_tcp_sessions(
        rng,
        host_ip=host_ip,
        dst=dst,
        dport=dport,
        app=app,
        rule="allow-server-updates",
        start=ends - elapsed,
        elapsed=elapsed,
        bytes_sent=lognormal_int(rng, (8.5, 0.8), n, low=200),
        bytes_received=lognormal_int(rng, (9.0, 1.0), n, low=200),
        scenario=spec.name,
    )
    return _injected(spec, host_ip, peers, sessions)


_BUILDERS = {
    C2_BEACONING: (c2_beaconing, ("workstation",)),
    BULK_EXFILTRATION: (bulk_exfiltration, ("workstation", "app_server")),
    INTERNAL_PORT_SCAN: (internal_port_scan, ("workstation",)),
    RARE_EXTERNAL_PAIRS: (rare_external_pairs, ("app_server", "file_server")),
}


def _pick_host(
    rng: np.random.Generator, network: TenantNetwork, spec: Scenario, used: set[int], where: str
) -> int:
    """Row of the scenario's host: the file's IP, else a seeded pick among the file's segment or role
    (default: the kind's usual roles), never a host an earlier pick already took."""
    hosts = network.hosts
    if spec.host is not None and spec.host[:1].isdigit():
        try:
            ip = int(ipaddress.IPv4Address(spec.host))
        except ValueError:
            raise ScenarioFileError(f"{where}: key 'host': {spec.host!r} is not an IPv4 address") from None
        rows = np.flatnonzero(hosts["ip"].to_numpy(dtype=np.uint32) == ip)
        if len(rows) == 0:
            raise ScenarioFileError(f"{where}: key 'host': {spec.host} is not a host of tenant {network.label}")
        used.add(int(rows[0]))
        return int(rows[0])
    if spec.host is None:
        eligible = np.isin(hosts["role"].to_numpy(), _BUILDERS[spec.kind][1])
    elif spec.host in SEGMENT_CIDRS:
        eligible = hosts["segment"].to_numpy() == spec.host
    elif spec.host in set(hosts["role"]):
        eligible = hosts["role"].to_numpy() == spec.host
    else:
        raise ScenarioFileError(
            f"{where}: key 'host': {spec.host!r} is neither an IP, a segment ({', '.join(SEGMENT_CIDRS)}) nor a role "
            f"({', '.join(sorted(set(hosts['role'])))}) of tenant {network.label}"
        )
    candidates = [i for i in np.flatnonzero(eligible).tolist() if i not in used]
    if not candidates:
        raise ScenarioFileError(f"{where}: key 'host': no host of {spec.host or spec.kind!r} is left in tenant {network.label}")
    host = int(rng.choice(candidates))
    used.add(host)
    return host


def inject_scenarios(
    network: TenantNetwork,
    *,
    start: int,
    end: int,
    rng: np.random.Generator,
    scenarios: ScenarioFile | None = None,
) -> list[InjectedScenario]:
    """The file's scenarios for this tenant (default: ``default.json``), all sessions ending in [start, end)."""
    scenarios = scenarios or default_scenarios()
    used: set[int] = set()
    out = []
    for index, spec in scenarios.for_tenant(network.org1, network.org2):
        where = scenarios.where(index)
        host = _pick_host(rng, network, spec, used, where)
        builder = _BUILDERS[spec.kind][0]
        out.append(builder(rng, network, host, start=start, end=end, spec=spec, where=where))
    return out


def scenario_sessions(scenarios: Sequence[InjectedScenario]) -> pd.DataFrame:
    return concat_sessions([s.sessions for s in scenarios])


def ground_truth(network: TenantNetwork, scenarios: Sequence[InjectedScenario]) -> pd.DataFrame:
    """Rows (org1, org2, host_ip, window_start ISO, scenario kind, scenario name), one per window a
    scenario is active in."""
    rows = [
        (network.org1, network.org2, s.host_ip, window, s.kind, s.name) for s in scenarios for window in s.window_starts
    ]
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS)
