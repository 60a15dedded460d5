"""Normal traffic of one tenant: who talks to whom, when, on which port, and how much.

Sessions are drawn in bulk: a Poisson count per (host, hour) from a diurnal and weekly rhythm,
then a service per session from the host's role, then destinations, ports, bytes and durations as
whole numpy arrays per service. No Python loop ever runs per session.

A session here is a row of epoch seconds and uint32 IPs (``SESSION_COLUMNS``); ``records.py``
turns rows into PAN-OS fields when they are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ndr_jobs.synthetic.network import TenantNetwork, random_public_ips

SESSION_COLUMNS = [
    "start",  # epoch seconds (UTC)
    "elapsed",  # seconds; time_generated = start + elapsed
    "src",  # uint32
    "dst",  # uint32
    "sport",
    "dport",
    "proto",
    "app",
    "rule",
    "action",
    "subtype",
    "session_end_reason",
    "bytes_sent",
    "bytes_received",
    "pkts_sent",
    "pkts_received",
    "scenario",  # "" for normal traffic, else the injected scenario's name
]

MAX_ELAPSED_S = 2 * 3600
APP_FROM_DESTINATION = "@dst"  # the app is decided by the destination (popular service, db engine)

# ---------------------------------------------------------------- rhythm

# Hour-of-day factors (UTC), 1.0 = a busy working hour; working hours are 08-18.
# fmt: off
_OFFICE = np.array([.03, .02, .02, .02, .03, .05, .12, .35, .85, 1, 1, 1,
                    .75, .95, 1, 1, .95, .8, .4, .2, .12, .08, .05, .04])
# fmt: on
# Non-persistent VDI desktops exist only while someone is logged in.
_VDI = np.array([0, 0, 0, 0, 0, 0, 0.03, 0.3, 0.9, 1, 1, 1, 0.75, 0.95, 1, 1, 0.95, 0.8, 0.35, 0.1, 0.02, 0, 0, 0])
_SERVER = 0.55 + 0.45 * _OFFICE
_NIGHTLY = np.array([1, 1, 1, 0.8, 0.4, 0.1] + [0.05] * 16 + [0.3, 0.8])
_INTERNET = 0.4 + 0.6 * _OFFICE

# profile -> (hour-of-day factors UTC, day-of-week factors Mon..Sun)
RHYTHMS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "office": (_OFFICE, np.array([1, 1, 1, 1, 1, 0.15, 0.15])),
    "vdi": (_VDI, np.array([1, 1, 1, 1, 1, 0.05, 0.05])),
    "server": (_SERVER, np.array([1, 1, 1, 1, 1, 0.8, 0.8])),
    "nightly": (_NIGHTLY, np.ones(7)),
    "internet": (_INTERNET, np.array([1, 1, 1, 1, 1, 0.7, 0.7])),
}


@dataclass(frozen=True)
class RoleBehaviour:
    """How busy a role is at peak (sessions per host-hour at scale 1) and which rhythm it follows."""

    peak_rate: float
    rhythm: str


ROLE_BEHAVIOUR: dict[str, RoleBehaviour] = {
    "workstation": RoleBehaviour(20, "office"),
    "admin_workstation": RoleBehaviour(24, "office"),
    "vdi": RoleBehaviour(18, "vdi"),
    "file_server": RoleBehaviour(10, "server"),
    "app_server": RoleBehaviour(30, "server"),
    "monitor": RoleBehaviour(40, "server"),
    "backup": RoleBehaviour(12, "nightly"),
    "database": RoleBehaviour(10, "server"),
    "domain_controller": RoleBehaviour(20, "server"),
    "dmz_web": RoleBehaviour(15, "internet"),
}
INBOUND_WEB_PEAK_RATE = 60.0  # sessions per hour from the internet to the DMZ web server
INBOUND_SCAN_RATE = 6.0  # unsolicited probes per hour from the internet, dropped


# ---------------------------------------------------------------- services


@dataclass(frozen=True)
class Service:
    """One kind of session a client starts.

    ``target`` names how destinations are drawn (see ``_destinations``); byte counts and duration
    are lognormal ``(mu, sigma)`` (heavy-tailed); ``deny_rate`` / ``reset_rate`` are the shares
    blocked by policy or reset by threat prevention.
    """

    name: str
    target: str
    ports: tuple[int, ...]
    proto: str
    app: str
    rule: str
    sent: tuple[float, float]
    received: tuple[float, float]
    duration: tuple[float, float]
    deny_rate: float = 0.002
    reset_rate: float = 0.0005


# fmt: off
_SERVICE_TABLE = [
    #       name              target           ports               proto   app                    rule                      sent          received      duration     deny   reset
    Service("dns",            "dc",            (53,),              "udp",  "dns",                 "allow-dns",              (4.3, .2),    (5.0, .4),    (-2.0, .5)),
    Service("kerberos",       "dc",            (88,),              "tcp",  "kerberos",            "allow-ad-services",      (7.3, .4),    (7.5, .4),    (-.5, .6)),
    Service("ldap",           "dc",            (389,),             "tcp",  "ldap",                "allow-ad-services",      (6.7, .8),    (8.0, 1.0),   (.5, 1.0)),
    Service("smb",            "file_server",   (445,),             "tcp",  "ms-ds-smb",           "allow-file-shares",      (8.3, 1.5),   (10.6, 2.0),  (3.0, 1.5)),
    Service("https",          "external_web",  (443,),             "tcp",  APP_FROM_DESTINATION,  "allow-web-outbound",     (7.8, 1.2),   (10.3, 1.8),  (2.5, 1.3),  .003,  .001),
    Service("http",           "external_web",  (80,),              "tcp",  "web-browsing",        "allow-web-outbound",     (6.7, .8),    (9.6, 1.6),   (1.0, 1.2),  .004,  .001),
    Service("quic",           "external_web",  (443,),             "udp",  "quic",                "allow-web-outbound",     (8.5, 1.3),   (11.3, 1.8),  (3.0, 1.2)),
    Service("intranet",       "app_server",    (443, 8443),        "tcp",  "ssl",                 "allow-intranet",         (7.3, 1.0),   (9.9, 1.5),   (1.5, 1.2)),
    Service("ntp",            "dc",            (123,),             "udp",  "ntp",                 "allow-ntp",              (4.5, .05),   (4.5, .05),   (-3.0, .3)),
    Service("rdp",            "server_any",    (3389,),            "tcp",  "ms-rdp",              "allow-admin-access",     (12.6, 1.2),  (14.9, 1.3),  (6.5, 1.0)),
    Service("ssh",            "server_any",    (22,),              "tcp",  "ssh",                 "allow-admin-access",     (9.9, 1.3),   (11.0, 1.5),  (5.5, 1.2)),
    Service("winrm",          "server_any",    (5985, 5986),       "tcp",  "ms-winrm",            "allow-admin-access",     (8.5, .8),    (9.0, .8),    (2.3, .8)),
    Service("blocked",        "long_tail",     (25, 6881, 6667, 3478, 23), "tcp", "unknown-tcp",  "block-risky-outbound",   (4.2, .1),    (0, 0),       (0, 0),      1.0,   0.0),
    Service("db",             "database",      (0,),               "tcp",  APP_FROM_DESTINATION,  "allow-app-to-db",        (7.1, 1.2),   (9.9, 2.0),   (1.0, 1.5)),
    Service("db_replication", "database_peer", (0,),               "tcp",  APP_FROM_DESTINATION,  "allow-db-replication",   (11.0, 1.0),  (8.0, 1.0),   (3.5, 1.0)),
    Service("updates",        "external_web",  (443,),             "tcp",  APP_FROM_DESTINATION,  "allow-server-updates",   (7.5, .8),    (12.0, 2.0),  (3.0, 1.2)),
    Service("backup",         "server_any",    (445,),             "tcp",  "ms-ds-smb",           "allow-backup",           (9.0, 1.0),   (17.5, 1.2),  (6.0, .8)),
    Service("db_backup",      "database",      (0,),               "tcp",  APP_FROM_DESTINATION,  "allow-backup",           (8.0, 1.0),   (16.5, 1.2),  (5.5, .8)),
    Service("ping",           "internal_any",  (0,),               "icmp", "ping",                "allow-monitoring",       (4.4, .05),   (4.4, .05),   (-3.0, .3)),
    Service("snmp",           "internal_any",  (161,),             "udp",  "snmp",                "allow-monitoring",       (4.6, .2),    (6.0, .5),    (-2.0, .5)),
    Service("dc_replication", "dc_peer",       (135, 389),         "tcp",  "msrpc",               "allow-ad-replication",   (8.5, 1.0),   (8.5, 1.0),   (.5, .8)),
    Service("dns_forward",    "dns_resolver",  (53,),              "udp",  "dns",                 "allow-dns-forwarders",   (4.3, .2),    (5.2, .4),    (-2.0, .5)),
    Service("ntp_upstream",   "ntp_pool",      (123,),             "udp",  "ntp",                 "allow-ntp",              (4.5, .05),   (4.5, .05),   (-3.0, .3)),
    Service("dmz_to_app",     "app_server",    (8080,),            "tcp",  "web-browsing",        "allow-dmz-to-app",       (7.5, 1.0),   (9.5, 1.3),   (.8, 1.0)),
    Service("dmz_dns",        "dns_resolver",  (53,),              "udp",  "dns",                 "allow-dns-forwarders",   (4.3, .2),    (5.2, .4),    (-2.0, .5)),
]
# fmt: on
SERVICES: dict[str, Service] = {s.name: s for s in _SERVICE_TABLE}

_WORKSTATION_MIX = {
    "dns": 0.22,
    "kerberos": 0.05,
    "ldap": 0.03,
    "smb": 0.08,
    "https": 0.40,
    "http": 0.05,
    "quic": 0.04,
    "intranet": 0.06,
    "ntp": 0.01,
    "rdp": 0.003,
    "blocked": 0.007,
}
# role profile -> {service: weight}
ROLE_SERVICES: dict[str, dict[str, float]] = {
    "workstation": _WORKSTATION_MIX,
    "admin_workstation": {**_WORKSTATION_MIX, "ssh": 0.06, "winrm": 0.015, "rdp": 0.02},
    "vdi": {k: v for k, v in _WORKSTATION_MIX.items() if k != "ntp"},
    "file_server": {"dns": 0.3, "kerberos": 0.1, "ldap": 0.1, "updates": 0.2, "ntp": 0.05},
    "app_server": {
        "dns": 0.2,
        "kerberos": 0.05,
        "ldap": 0.05,
        "db": 0.45,
        "updates": 0.15,
        "ntp": 0.02,
        "intranet": 0.08,
    },
    "monitor": {"ping": 0.5, "snmp": 0.3, "dns": 0.1, "updates": 0.1},
    "backup": {"backup": 0.5, "db_backup": 0.2, "dns": 0.2, "ntp": 0.1},
    "database": {"dns": 0.4, "ntp": 0.1, "db_replication": 0.3, "kerberos": 0.2},
    "domain_controller": {"dc_replication": 0.3, "dns_forward": 0.5, "ntp_upstream": 0.1, "ldap": 0.1},
    "dmz_web": {"dmz_to_app": 0.7, "dmz_dns": 0.2, "updates": 0.1},
}

_TCP_END_REASONS = np.array(["tcp-fin", "tcp-rst-from-client", "tcp-rst-from-server", "aged-out"], dtype=object)
_TCP_END_WEIGHTS = np.array([0.84, 0.06, 0.05, 0.05])


# ---------------------------------------------------------------- helpers shared with scenarios


def lognormal_int(
    rng: np.random.Generator, mu_sigma: tuple[float, float], n: int, *, low: int = 0, high: int = 2_000_000_000
) -> np.ndarray:
    mu, sigma = mu_sigma
    return np.clip(np.rint(rng.lognormal(mu, sigma, size=n)), low, high).astype(np.int64)


def ephemeral_ports(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(49152, 65536, size=n, dtype=np.int64)


def complete_sessions(
    rng: np.random.Generator,
    *,
    start: np.ndarray,
    elapsed: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    proto: np.ndarray,
    app: np.ndarray,
    rule: np.ndarray,
    action: np.ndarray,
    bytes_sent: np.ndarray,
    bytes_received: np.ndarray,
    scenario: str = "",
    reset_by_policy: bool = False,
    allowed_end_reason: np.ndarray | None = None,
) -> pd.DataFrame:
    """Derive subtype, end reason and packets from the action, and make blocked sessions look blocked.

    One place keeps every session internally consistent: a denied or dropped session has no reply,
    lasts 0 s and carries only the client's first packet; an allowed UDP/ICMP session ages out; a
    reset is a threat-prevention reset (or a policy reset when ``reset_by_policy``).
    ``allowed_end_reason`` (optional, "" = derive) fixes the end reason of allowed sessions.
    """
    n = len(start)
    proto = np.asarray(proto, dtype=object)
    action = np.asarray(action, dtype=object)
    elapsed = np.asarray(elapsed, dtype=np.int64).copy()
    bytes_sent = np.asarray(bytes_sent, dtype=np.int64).copy()
    bytes_received = np.asarray(bytes_received, dtype=np.int64).copy()
    is_tcp = proto == "tcp"
    allowed = action == "allow"
    reset = np.char.startswith(action.astype(str), "reset-")
    threat_reset = reset & (not reset_by_policy)
    blocked = ~allowed & ~threat_reset

    reason = np.where(is_tcp, rng.choice(_TCP_END_REASONS, size=n, p=_TCP_END_WEIGHTS), "aged-out").astype(object)
    # A reply-less TCP session cannot have ended with a FIN or a server reset.
    no_reply = allowed & is_tcp & (bytes_received == 0)
    reason[no_reply] = "aged-out"
    if allowed_end_reason is not None:
        fixed = allowed & (np.asarray(allowed_end_reason, dtype=object) != "")
        reason[fixed] = np.asarray(allowed_end_reason, dtype=object)[fixed]
    reason[reset] = "policy-deny" if reset_by_policy else "threat"
    reason[blocked] = "policy-deny"
    subtype = np.where(allowed | threat_reset, "end", "deny").astype(object)
    subtype[action == "drop"] = "drop"

    # Threat resets cut the transfer short; blocked sessions carry only the first client packet.
    cut = rng.uniform(0.05, 0.6, size=n)
    bytes_received = np.where(threat_reset, (bytes_received * cut).astype(np.int64), bytes_received)
    bytes_received[blocked] = 0
    first_packet = np.where(is_tcp, rng.choice(np.array([60, 66, 74]), size=n), rng.integers(60, 120, size=n))
    bytes_sent[blocked] = first_packet[blocked]
    elapsed[blocked] = 0

    min_sent = np.where(is_tcp, 3, 1)
    min_received = np.where(is_tcp, 2, 1)
    pkts_sent = np.maximum(min_sent, np.ceil(bytes_sent / rng.uniform(180, 700, size=n))).astype(np.int64)
    pkts_received = np.maximum(min_received, np.ceil(bytes_received / rng.uniform(600, 1400, size=n))).astype(np.int64)
    pkts_received[bytes_received == 0] = 0
    pkts_sent[blocked] = 1
    header = np.where(is_tcp, 54, 42)
    bytes_sent = np.maximum(bytes_sent, pkts_sent * header)
    bytes_received = np.maximum(bytes_received, pkts_received * header)

    return pd.DataFrame(
        {
            "start": np.asarray(start, dtype=np.int64),
            "elapsed": elapsed,
            "src": np.asarray(src, dtype=np.uint32),
            "dst": np.asarray(dst, dtype=np.uint32),
            "sport": np.asarray(sport, dtype=np.int64),
            "dport": np.asarray(dport, dtype=np.int64),
            "proto": proto,
            "app": np.asarray(app, dtype=object),
            "rule": np.asarray(rule, dtype=object),
            "action": action,
            "subtype": subtype,
            "session_end_reason": reason,
            "bytes_sent": bytes_sent,
            "bytes_received": bytes_received,
            "pkts_sent": pkts_sent,
            "pkts_received": pkts_received,
            "scenario": scenario,
        },
        columns=SESSION_COLUMNS,
    )


def _blocking_actions(rng: np.random.Generator, service: Service, n: int) -> np.ndarray:
    u = rng.random(n)
    action = np.full(n, "allow", dtype=object)
    denied = u < service.deny_rate
    action[denied] = rng.choice(np.array(["deny", "drop"], dtype=object), size=n, p=[0.7, 0.3])[denied]
    if service.proto == "tcp":
        reset = (u >= service.deny_rate) & (u < service.deny_rate + service.reset_rate)
        kinds = np.array(["reset-both", "reset-server", "reset-client"], dtype=object)
        action[reset] = rng.choice(kinds, size=n, p=[0.5, 0.25, 0.25])[reset]
    return action


# ---------------------------------------------------------------- drawing sessions


def _profiles(network: TenantNetwork) -> np.ndarray:
    hosts = network.hosts
    return np.where(hosts["is_admin"].to_numpy(), "admin_workstation", hosts["role"].to_numpy()).astype(object)


def _hour_bins(start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bins of up to an hour covering [start, end): bin starts, lengths, hour of day, day of week."""
    bin_starts = np.arange(start, end, 3600, dtype=np.int64)
    lengths = np.minimum(3600, end - bin_starts)
    middle = (bin_starts + lengths // 2).astype("datetime64[s]")
    hour = (middle.astype("datetime64[h]").astype(np.int64)) % 24
    # 1970-01-01 was a Thursday (weekday 3).
    weekday = (middle.astype("datetime64[D]").astype(np.int64) + 3) % 7
    return bin_starts, lengths, hour, weekday


def expected_rate(profile_rhythm: str, hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Relative activity (1.0 = a weekday working hour) of a rhythm at the given hours."""
    by_hour, by_day = RHYTHMS[profile_rhythm]
    return by_hour[hour] * by_day[weekday]


def _destinations(
    rng: np.random.Generator, network: TenantNetwork, target: str, src_host: np.ndarray, port: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Destination IPs for ``len(src_host)`` sessions, plus the port and app when the target decides them."""
    n = len(src_host)
    hosts = network.hosts
    host_ips = hosts["ip"].to_numpy(dtype=np.uint32)
    if target == "dc":
        return rng.choice(network.ips_of("domain_controller"), size=n), None, None
    if target == "file_server":
        files = network.ips_of("file_server")
        home = files[src_host % len(files)]  # each client mostly uses its own home share
        other = rng.choice(files, size=n)
        return np.where(rng.random(n) < 0.85, home, other), None, None
    if target == "app_server":
        return rng.choice(network.ips_of("app_server"), size=n), None, None
    if target == "server_any":
        servers = np.concatenate([network.ips_of("file_server"), network.ips_of("app_server")])
        return rng.choice(servers, size=n), None, None
    if target in ("database", "database_peer"):
        db_rows = np.flatnonzero((hosts["role"] == "database").to_numpy())
        pick = rng.choice(db_rows, size=n)
        if target == "database_peer" and len(db_rows) > 1:
            position = np.searchsorted(db_rows, pick)
            same = host_ips[pick] == host_ips[src_host]
            pick = np.where(same, db_rows[(position + 1) % len(db_rows)], pick)
        return host_ips[pick], hosts["db_port"].to_numpy()[pick], hosts["db_app"].to_numpy()[pick]
    if target == "dc_peer":
        dcs = network.ips_of("domain_controller")
        pick = rng.integers(0, len(dcs), size=n)
        same = dcs[pick] == host_ips[src_host]
        return dcs[np.where(same, (pick + 1) % len(dcs), pick)], None, None
    if target == "internal_any":
        return rng.choice(host_ips, size=n), None, None
    if target == "dns_resolver":
        return rng.choice(network.dns_resolvers, size=n), None, None
    if target == "ntp_pool":
        return rng.choice(network.ntp_servers, size=n), None, None
    if target == "long_tail":
        return rng.choice(network.long_tail_ips, size=n), None, None
    if target == "external_web":
        popular = rng.random(n) < 0.8
        pick_popular = rng.choice(len(network.popular_ips), size=n, p=network.popular_weights)
        pick_tail = rng.choice(len(network.long_tail_ips), size=n, p=network.long_tail_weights)
        dst = np.where(popular, network.popular_ips[pick_popular], network.long_tail_ips[pick_tail])
        fallback = "ssl" if port == 443 else "web-browsing"
        app = np.where(popular, network.popular_apps[pick_popular], fallback).astype(object)
        return dst.astype(np.uint32), None, app
    raise ValueError(f"unknown destination target {target!r}")


def _service_sessions(
    rng: np.random.Generator, network: TenantNetwork, service: Service, start: np.ndarray, src_host: np.ndarray
) -> pd.DataFrame:
    n = len(start)
    host_ips = network.hosts["ip"].to_numpy(dtype=np.uint32)
    port_choice = rng.choice(np.array(service.ports, dtype=np.int64), size=n)
    dst, target_port, target_app = _destinations(rng, network, service.target, src_host, int(service.ports[0]))
    dport = target_port.astype(np.int64) if target_port is not None else port_choice
    if service.app == APP_FROM_DESTINATION and target_app is not None:
        app = target_app
    else:
        app = np.full(n, service.app if service.app != APP_FROM_DESTINATION else "ssl", dtype=object)
    sport = ephemeral_ports(rng, n)
    if service.proto == "icmp":
        sport = np.zeros(n, dtype=np.int64)
        dport = np.zeros(n, dtype=np.int64)
    elif service.name.startswith("ntp"):
        sport = np.full(n, 123, dtype=np.int64)
    bytes_sent = lognormal_int(rng, service.sent, n, low=40)
    bytes_received = lognormal_int(rng, service.received, n) if service.received != (0, 0) else np.zeros(n, np.int64)
    elapsed = (
        lognormal_int(rng, service.duration, n, high=MAX_ELAPSED_S)
        if service.duration != (0, 0)
        else np.zeros(n, np.int64)
    )
    action = _blocking_actions(rng, service, n)
    if service.proto == "tcp":
        # A few connection attempts get no answer: PAN-OS shows them as app "incomplete".
        unanswered = (action == "allow") & (rng.random(n) < 0.01)
        bytes_received[unanswered] = 0
        app = np.where(unanswered, "incomplete", app).astype(object)
    rule = np.where(
        action == "allow", service.rule, np.where(service.deny_rate >= 1, service.rule, "interzone-default")
    )
    return complete_sessions(
        rng,
        start=start,
        elapsed=elapsed,
        src=host_ips[src_host],
        dst=dst,
        sport=sport,
        dport=dport,
        proto=np.full(n, service.proto, dtype=object),
        app=app,
        rule=rule,
        action=action,
        bytes_sent=bytes_sent,
        bytes_received=bytes_received,
    )


def _inbound_sessions(
    rng: np.random.Generator, network: TenantNetwork, start: int, end: int, scale: float
) -> list[pd.DataFrame]:
    """Internet clients browsing the DMZ web server, and unsolicited probes that the firewall drops."""
    bin_starts, lengths, hour, weekday = _hour_bins(start, end)
    web_ips = network.ips_of("dmz_web")
    frames = []
    for kind, rate in (
        ("web", INBOUND_WEB_PEAK_RATE * expected_rate("internet", hour, weekday)),
        ("probe", np.full(len(hour), INBOUND_SCAN_RATE)),
    ):
        counts = rng.poisson(rate * scale * lengths / 3600)
        n = int(counts.sum())
        if n == 0:
            continue
        bins = np.repeat(np.arange(len(bin_starts)), counts)
        starts = bin_starts[bins] + np.floor(rng.random(n) * lengths[bins]).astype(np.int64)
        dst = rng.choice(web_ips, size=n)
        if kind == "web":
            returning = rng.random(n) < 0.7
            src = np.where(returning, rng.choice(network.internet_clients, size=n), random_public_ips(rng, n))
            dport = np.where(rng.random(n) < 0.85, 443, 80)
            app = np.where(dport == 443, "ssl", "web-browsing").astype(object)
            action = _blocking_actions(rng, SERVICES["https"], n)
            frames.append(
                complete_sessions(
                    rng,
                    start=starts,
                    elapsed=lognormal_int(rng, (1.0, 1.2), n, high=MAX_ELAPSED_S),
                    src=src,
                    dst=dst,
                    sport=ephemeral_ports(rng, n),
                    dport=dport,
                    proto=np.full(n, "tcp", dtype=object),
                    app=app,
                    rule=np.where(action == "allow", "allow-dmz-web-inbound", "interzone-default"),
                    action=action,
                    bytes_sent=lognormal_int(rng, (6.8, 1.0), n, low=40),
                    bytes_received=lognormal_int(rng, (10.0, 1.6), n),
                )
            )
        else:
            probe_ports = np.array([22, 23, 25, 445, 1433, 3306, 3389, 5900, 8080, 8443], dtype=np.int64)
            dport = np.where(rng.random(n) < 0.7, rng.choice(probe_ports, size=n), rng.integers(1, 65536, size=n))
            frames.append(
                complete_sessions(
                    rng,
                    start=starts,
                    elapsed=np.zeros(n, np.int64),
                    src=random_public_ips(rng, n),
                    dst=dst,
                    sport=ephemeral_ports(rng, n),
                    dport=dport,
                    proto=np.full(n, "tcp", dtype=object),
                    app=np.full(n, "incomplete", dtype=object),
                    rule=np.full(n, "interzone-default", dtype=object),
                    action=rng.choice(np.array(["drop", "deny"], dtype=object), size=n, p=[0.8, 0.2]),
                    bytes_sent=np.zeros(n, np.int64),
                    bytes_received=np.zeros(n, np.int64),
                )
            )
    return frames


def generate_normal_sessions(
    network: TenantNetwork, *, start: int, end: int, rng: np.random.Generator, scale: float = 1.0
) -> pd.DataFrame:
    """Normal sessions of ``network`` that START in ``[start, end)`` (epoch seconds), unsorted.

    ``scale`` multiplies every rate: 1.0 gives about 30k sessions per weekday for 120 hosts.
    """
    if end <= start:
        return concat_sessions([])
    bin_starts, lengths, hour, weekday = _hour_bins(start, end)
    hosts = network.hosts
    profiles = _profiles(network)
    activity = hosts["activity"].to_numpy()

    # Expected sessions per (host, hour bin), then Poisson counts, then one row per session.
    peak = np.array([ROLE_BEHAVIOUR[p].peak_rate for p in profiles])
    rhythm = np.vstack([expected_rate(ROLE_BEHAVIOUR[p].rhythm, hour, weekday) for p in profiles])
    rates = (peak * activity * scale)[:, None] * rhythm * (lengths / 3600)[None, :]
    counts = rng.poisson(rates)
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    src_host, bins = np.divmod(cells, len(bin_starts))
    starts = bin_starts[bins] + np.floor(rng.random(len(cells)) * lengths[bins]).astype(np.int64)

    frames: list[pd.DataFrame] = []
    row_profiles = profiles[src_host]
    for profile, mix in ROLE_SERVICES.items():
        rows = np.flatnonzero(row_profiles == profile)
        if len(rows) == 0:
            continue
        names = list(mix)
        weights = np.array([mix[name] for name in names])
        chosen = rng.choice(len(names), size=len(rows), p=weights / weights.sum())
        for i, name in enumerate(names):
            picked = rows[chosen == i]
            if len(picked):
                frames.append(_service_sessions(rng, network, SERVICES[name], starts[picked], src_host[picked]))
    frames.extend(_inbound_sessions(rng, network, start, end, scale))
    return concat_sessions(frames)


def session_ends(sessions: pd.DataFrame) -> np.ndarray:
    return sessions["start"].to_numpy(dtype=np.int64) + sessions["elapsed"].to_numpy(dtype=np.int64)


def concat_sessions(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SESSION_COLUMNS})
    return pd.concat(frames, ignore_index=True)[SESSION_COLUMNS]
