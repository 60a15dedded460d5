"""Labelled attack scenarios injected into a tenant's traffic, with their ground truth.

Each scenario picks its own host, its own never-seen external peers (first octets reserved in
``network.SCENARIO_FIRST_OCTETS``) and a seeded time inside the generated range. The ground truth
lists every (host, window) where the scenario has at least one session END, the window on the
08/23/38/53 grid that contains the session's ``time_generated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ndr_assets.transforms.windows import SLICE_SECONDS
from ndr_jobs.synthetic.grid import window_iso, window_start_epochs
from ndr_jobs.synthetic.network import SCENARIO_FIRST_OCTETS, TenantNetwork, ips_to_strings, random_public_ips
from ndr_jobs.synthetic.traffic import complete_sessions, concat_sessions, ephemeral_ports, lognormal_int, session_ends

C2_BEACONING = "c2_beaconing"
BULK_EXFILTRATION = "bulk_exfiltration"
INTERNAL_PORT_SCAN = "internal_port_scan"
RARE_EXTERNAL_PAIRS = "rare_external_pairs"
SCENARIOS = (C2_BEACONING, BULK_EXFILTRATION, INTERNAL_PORT_SCAN, RARE_EXTERNAL_PAIRS)

GROUND_TRUTH_COLUMNS = ["org1", "org2", "host_ip", "window_start", "scenario"]

BEACON_INTERVAL_S = 60
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
    """One injected scenario: who, against whom, and its sessions (``traffic.SESSION_COLUMNS``)."""

    name: str
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
    """``n`` session ends spread over the windows [first, last), each window getting at least one."""
    windows = (last - first) // SLICE_SECONDS
    which = np.concatenate([np.arange(min(windows, n)), rng.integers(0, windows, size=max(0, n - windows))])
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


def _injected(name: str, host_ip: int, peers: np.ndarray, sessions: pd.DataFrame) -> InjectedScenario:
    return InjectedScenario(
        name, str(ips_to_strings(np.array([host_ip]))[0]), tuple(ips_to_strings(np.asarray(peers)).tolist()), sessions
    )


def c2_beaconing(
    rng: np.random.Generator, network: TenantNetwork, host: int, *, start: int, end: int
) -> InjectedScenario:
    """A workstation calling one rare external IP every ~60 s (+- jitter) with small payloads, for hours."""
    host_ip = int(network.hosts["ip"].iloc[host])
    c2 = _scenario_ips(rng, 1)[0]
    port = int(rng.choice([443, 8443]))
    duration = min(int(rng.uniform(2, 5) * 3600), end - start - 120)
    first = start + int(rng.integers(0, max(1, end - start - duration - 60)))
    gaps = np.clip(rng.normal(BEACON_INTERVAL_S, 4, size=duration // BEACON_INTERVAL_S + 1), 45, 75)
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
        scenario=C2_BEACONING,
    )
    return _injected(C2_BEACONING, host_ip, np.array([c2]), sessions)


def bulk_exfiltration(
    rng: np.random.Generator, network: TenantNetwork, host: int, *, start: int, end: int
) -> InjectedScenario:
    """One host uploading hundreds of MB to a new external IP over 1-3 windows."""
    host_ip = int(network.hosts["ip"].iloc[host])
    peer = _scenario_ips(rng, 1)[0]
    first, last = _window_span(rng, start, end, int(rng.integers(1, 4)))
    n = int(rng.integers(4, 13))
    ends = _ends_in_windows(rng, first, last, n)
    elapsed = np.minimum(rng.integers(60, 600, size=n), ends - start)
    sessions = _closed_tcp_sessions(
        rng,
        host_ip=host_ip,
        dst=peer,
        dport=443,
        app="ssl",
        rule="allow-web-outbound",
        start=ends - elapsed,
        elapsed=elapsed,
        bytes_sent=lognormal_int(rng, (18.2, 0.5), n),  # ~80 MB each
        bytes_received=lognormal_int(rng, (11.5, 0.5), n),
        scenario=BULK_EXFILTRATION,
    )
    return _injected(BULK_EXFILTRATION, host_ip, np.array([peer]), sessions)


def internal_port_scan(
    rng: np.random.Generator, network: TenantNetwork, host: int, *, start: int, end: int
) -> InjectedScenario:
    """One workstation probing many internal IPs on admin / file-share / db ports; mostly blocked or refused."""
    host_ip = int(network.hosts["ip"].iloc[host])
    first, last = _window_span(rng, start, end, int(rng.integers(1, 3)))
    hosts = network.hosts
    real = hosts.loc[hosts["segment"].isin(["servers", "databases", "workstations"]), "ip"].to_numpy(dtype=np.uint32)
    real = real[real != host_ip]
    # Sweeps hit live hosts and empty addresses of the same subnets alike.
    live = rng.choice(real, size=min(len(real), int(rng.integers(25, 45))), replace=False)
    n_empty = int(rng.integers(15, 35))
    subnets = rng.choice(live, size=n_empty) & np.uint32(0xFFFFFF00)
    empty = subnets | rng.integers(10, 251, size=n_empty).astype(np.uint32)
    empty = empty[~np.isin(empty, hosts["ip"].to_numpy(dtype=np.uint32))]
    targets = np.unique(np.concatenate([live, empty]))
    ports_per_target = rng.integers(4, 13, size=len(targets))
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
    app = np.where(answered, pd.Series(dport).map(_SCAN_APPS).to_numpy(dtype=object), "incomplete").astype(object)
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
        scenario=INTERNAL_PORT_SCAN,
        reset_by_policy=True,
        allowed_end_reason=end_reason,
    )
    return _injected(INTERNAL_PORT_SCAN, host_ip, targets, sessions)


def rare_external_pairs(
    rng: np.random.Generator, network: TenantNetwork, host: int, *, start: int, end: int
) -> InjectedScenario:
    """A server contacting several never-seen external IP:port pairs within one or two windows."""
    host_ip = int(network.hosts["ip"].iloc[host])
    first, last = _window_span(rng, start, end, int(rng.integers(1, 3)))
    pairs = int(rng.integers(5, 11))
    peers = _scenario_ips(rng, pairs)
    ports = rng.choice(RARE_PORTS, size=pairs, replace=False)
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
        scenario=RARE_EXTERNAL_PAIRS,
    )
    return _injected(RARE_EXTERNAL_PAIRS, host_ip, peers, sessions)


_BUILDERS = {
    C2_BEACONING: (c2_beaconing, ("workstation",)),
    BULK_EXFILTRATION: (bulk_exfiltration, ("workstation", "app_server")),
    INTERNAL_PORT_SCAN: (internal_port_scan, ("workstation",)),
    RARE_EXTERNAL_PAIRS: (rare_external_pairs, ("app_server", "file_server")),
}


def inject_scenarios(
    network: TenantNetwork, *, start: int, end: int, rng: np.random.Generator, names: Sequence[str] = SCENARIOS
) -> list[InjectedScenario]:
    """One instance of each named scenario, each on its own host, all sessions ending in [start, end)."""
    unknown = sorted(set(names) - set(_BUILDERS))
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    roles = network.hosts["role"].to_numpy()
    used: set[int] = set()
    out = []
    for name in names:
        builder, host_roles = _BUILDERS[name]
        candidates = [i for i in np.flatnonzero(np.isin(roles, host_roles)).tolist() if i not in used]
        host = int(rng.choice(candidates))
        used.add(host)
        out.append(builder(rng, network, host, start=start, end=end))
    return out


def scenario_sessions(scenarios: Sequence[InjectedScenario]) -> pd.DataFrame:
    return concat_sessions([s.sessions for s in scenarios])


def ground_truth(network: TenantNetwork, scenarios: Sequence[InjectedScenario]) -> pd.DataFrame:
    """Rows (org1, org2, host_ip, window_start ISO, scenario), one per window a scenario is active in."""
    rows = [(network.org1, network.org2, s.host_ip, window, s.name) for s in scenarios for window in s.window_starts]
    return pd.DataFrame(rows, columns=GROUND_TRUTH_COLUMNS)
