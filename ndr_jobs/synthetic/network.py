"""The network of one synthetic tenant: its hosts, their roles, and the internet they talk to.

Everything is drawn from a seeded generator keyed by (seed, tenant name), so a tenant's network is
the same whichever other tenants are generated with it. IPs are ``uint32`` numbers while sessions
are generated (cheap to pick and compare in numpy) and become dotted strings only when written.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

# The segments of every synthetic tenant (the seeds' segment_mapping uses the same CIDRs).
SEGMENT_CIDRS: dict[str, str] = {
    "workstations": "10.10.0.0/16",
    "vdi": "10.20.0.0/16",
    "servers": "10.30.0.0/16",
    "databases": "10.40.0.0/16",
    "domain_controllers": "10.50.0.0/24",
    "dmz": "172.16.0.0/16",
}
EXTERNAL_SEGMENT = "external"
ZONE_OF_SEGMENT: dict[str, str] = {
    "workstations": "trust",
    "vdi": "trust",
    "servers": "trust",
    "databases": "trust",
    "domain_controllers": "trust",
    "dmz": "dmz",
    EXTERNAL_SEGMENT: "untrust",
}

# First octets of the rare external hosts that attack scenarios use. Normal traffic never draws
# from them, so a scenario's C2 / exfiltration / first-contact peers are truly never seen before.
SCENARIO_FIRST_OCTETS = (45, 91, 185, 193, 194)
# First octets that are private, shared, loopback, link-local, test-net, multicast or reserved.
_NON_PUBLIC_FIRST_OCTETS = {0, 10, 100, 127, 169, 172, 192, 198, 203} | set(range(224, 256))
NORMAL_PUBLIC_FIRST_OCTETS = np.array(
    [o for o in range(1, 224) if o not in _NON_PUBLIC_FIRST_OCTETS and o not in SCENARIO_FIRST_OCTETS]
)

# Database engines: the port a database listens on and the PAN-OS app it is identified as.
DB_ENGINES: tuple[tuple[int, str], ...] = (
    (1433, "mssql-db"),
    (5432, "postgres"),
    (3306, "mysql"),
    (1521, "oracle"),
    (27017, "mongodb"),
    (6379, "redis"),
)

# Popular internet services: (PAN-OS app, /16 the addresses come from, how many addresses).
# Ranked by popularity; a Zipf weight over this order makes the first ones dominate.
POPULAR_SERVICES: tuple[tuple[str, str, int], ...] = (
    ("ms-office365-base", "13.107", 4),
    ("google-base", "142.250", 4),
    ("ssl", "104.16", 4),  # CDN
    ("windows-update", "20.190", 2),
    ("ms-teams", "52.112", 3),
    ("youtube-base", "172.217", 2),
    ("slack-base", "3.120", 2),
    ("ssl", "151.101", 3),  # CDN
    ("zoom-base", "170.114", 2),
    ("amazon-aws-console", "54.239", 2),
    ("ssl", "23.45", 3),  # CDN
    ("salesforce-base", "136.146", 2),
    ("github-base", "140.82", 2),
    ("dropbox-base", "162.125", 2),
    ("linkedin-base", "108.174", 1),
    ("web-browsing", "93.184", 2),
    ("okta", "18.211", 2),
    ("ssl", "34.107", 2),  # cloud API
    ("apple-update", "17.253", 2),
    ("ssl", "35.190", 2),  # cloud API
)
DNS_RESOLVERS = ("8.8.8.8", "1.1.1.1")
NTP_POOL_SIZE = 4
LONG_TAIL_SIZE = 3000

# Composition of a 120-host tenant; other sizes scale it (with minimum counts).
_BASE_COMPOSITION = {
    "workstations": 72,
    "vdi": 26,
    "servers": 12,
    "databases": 6,
    "domain_controllers": 3,
    "dmz": 1,
}
_BASE_TOTAL = sum(_BASE_COMPOSITION.values())
# (fewest, most) hosts of a segment whatever the tenant size: one DMZ web server, a handful of DCs.
_COMPOSITION_BOUNDS = {
    "workstations": (4, 10_000),
    "vdi": (1, 10_000),
    "servers": (4, 2_000),
    "databases": (1, 1_000),
    "domain_controllers": (1, 12),
    "dmz": (1, 1),
}
ADMIN_WORKSTATIONS = 3
MIN_HOSTS, MAX_HOSTS = 20, 10_000

HOST_COLUMNS = ["ip", "machine_name", "segment", "role", "persistent", "is_admin", "activity", "db_port", "db_app"]
INVENTORY_COLUMNS = ["ip_address", "machine_name", "active", "segment"]


@dataclass(frozen=True)
class TenantNetwork:
    """One tenant's hosts (active machines that generate traffic), inventory and internet peers.

    ``hosts`` columns: ip (uint32), machine_name, segment, role (workstation, vdi, file_server,
    app_server, monitor, backup, database, domain_controller, dmz_web), persistent, is_admin,
    activity (relative session rate), db_port / db_app (databases only, else 0 / "").
    ``inventory``: the machine-inventory dimension, including a few inactive machines.
    """

    org1: str
    org2: str
    tenant_key: int
    hosts: pd.DataFrame
    inventory: pd.DataFrame
    popular_ips: np.ndarray  # uint32
    popular_apps: np.ndarray  # str, app of each popular ip
    popular_weights: np.ndarray  # probabilities, sum 1
    long_tail_ips: np.ndarray  # uint32
    long_tail_weights: np.ndarray  # probabilities, sum 1
    dns_resolvers: np.ndarray  # uint32
    ntp_servers: np.ndarray  # uint32
    internet_clients: np.ndarray  # uint32, recurring visitors of the DMZ web server

    @property
    def label(self) -> str:
        return f"{self.org1}/{self.org2}"

    def ips_of(self, role: str) -> np.ndarray:
        return self.hosts.loc[self.hosts["role"] == role, "ip"].to_numpy(dtype=np.uint32)

    def ips_in_segment(self, segment: str) -> np.ndarray:
        return self.hosts.loc[self.hosts["segment"] == segment, "ip"].to_numpy(dtype=np.uint32)


# ---------------------------------------------------------------- IP helpers


def ip_to_int(ip: str) -> int:
    a, b, c, d = (int(p) for p in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ips_to_strings(ips: np.ndarray) -> np.ndarray:
    """Dotted-quad strings for an array of uint32 IPs (formats each distinct IP once)."""
    ips = np.asarray(ips, dtype=np.uint32)
    unique, inverse = np.unique(ips, return_inverse=True)
    names = np.array([f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in unique.tolist()], dtype=object)
    return names[inverse]


def _cidr_bounds(cidr: str) -> tuple[int, int]:
    base, bits = cidr.split("/")
    size = 1 << (32 - int(bits))
    start = ip_to_int(base)
    return start, start + size


def segment_of(ips: np.ndarray) -> np.ndarray:
    """The segment name of each uint32 IP (``external`` for everything outside the CIDRs)."""
    ips = np.asarray(ips, dtype=np.uint32)
    out = np.full(ips.shape, EXTERNAL_SEGMENT, dtype=object)
    for segment, cidr in SEGMENT_CIDRS.items():
        lo, hi = _cidr_bounds(cidr)
        out[(ips >= lo) & (ips < hi)] = segment
    return out


def zone_of(ips: np.ndarray) -> np.ndarray:
    segments = segment_of(ips)
    return pd.Series(segments).map(ZONE_OF_SEGMENT).to_numpy(dtype=object)


def random_public_ips(
    rng: np.random.Generator, n: int, first_octets: np.ndarray = NORMAL_PUBLIC_FIRST_OCTETS
) -> np.ndarray:
    """``n`` public unicast IPv4 addresses whose first octet is drawn from ``first_octets``."""
    first = rng.choice(np.asarray(first_octets, dtype=np.uint32), size=n)
    rest = rng.integers(1 << 8, (1 << 24) - 1, size=n, dtype=np.uint32)  # avoid x.0.0.y-ish edges
    ips = (first << 24) | rest
    last_octet = ips & 255
    # Avoid network/broadcast-looking last octets.
    return np.where((last_octet == 0) | (last_octet == 255), ips ^ 1, ips).astype(np.uint32)


def _host_addresses(rng: np.random.Generator, first_subnet: str, n: int) -> np.ndarray:
    """``n`` distinct addresses (last octet 10..250, sorted) in as many /24s from ``first_subnet`` as
    keep them about a quarter full, like DHCP scopes of a real site."""
    subnets = max(1, -(-4 * n // 241))
    lo = ip_to_int(first_subnet)
    candidates = np.arange(lo, lo + 256 * subnets, dtype=np.uint32)
    candidates = candidates[((candidates & 255) >= 10) & ((candidates & 255) <= 250)]
    return np.sort(rng.choice(candidates, size=n, replace=False)).astype(np.uint32)


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=float) ** exponent
    return w / w.sum()


# ---------------------------------------------------------------- building a tenant


def tenant_key(org1: str, org2: str) -> int:
    """A stable number per tenant name, mixed into every seed of that tenant."""
    return zlib.crc32(f"{org1}/{org2}".encode())


def tenant_rng(seed: int, org1: str, org2: str, *stream: int) -> np.random.Generator:
    """An independent generator per (seed, tenant, stream...) so streams never shift each other."""
    return np.random.default_rng(np.random.SeedSequence([seed, tenant_key(org1, org2), *stream]))


def _composition(total_hosts: int) -> dict[str, int]:
    factor = total_hosts / _BASE_TOTAL
    return {
        seg: min(max(_COMPOSITION_BOUNDS[seg][0], round(n * factor)), _COMPOSITION_BOUNDS[seg][1])
        for seg, n in _BASE_COMPOSITION.items()
    }


def _names(prefix: str, numbers: np.ndarray) -> list[str]:
    return [f"{prefix}-{n:04d}" for n in numbers.tolist()]


def build_network(org1: str, org2: str, *, seed: int, total_hosts: int = 120) -> TenantNetwork:
    """The deterministic network of tenant ``org1/org2`` for ``seed`` (about ``total_hosts`` hosts)."""
    if not MIN_HOSTS <= total_hosts <= MAX_HOSTS:
        raise ValueError(f"total_hosts must be in [{MIN_HOSTS}, {MAX_HOSTS}], got {total_hosts}")
    rng = tenant_rng(seed, org1, org2, 1)
    counts = _composition(total_hosts)
    parts: list[pd.DataFrame] = []

    def add(
        ips: np.ndarray, names: list[str], segment: str, roles: list[str] | str, *, persistent: bool = True
    ) -> None:
        parts.append(
            pd.DataFrame(
                {
                    "ip": ips.astype(np.uint32),
                    "machine_name": names,
                    "segment": segment,
                    "role": roles,
                    "persistent": persistent,
                }
            )
        )

    n_ws = counts["workstations"]
    ws_ips = _host_addresses(rng, "10.10.1.0", n_ws + 6)
    ws_numbers = np.sort(rng.choice(np.arange(1, max(5000, 4 * n_ws)), size=n_ws + 6, replace=False))
    add(ws_ips[:n_ws], _names("WS", ws_numbers[:n_ws]), "workstations", "workstation")

    n_vdi = counts["vdi"]
    vdi_ips = _host_addresses(rng, "10.20.0.0", n_vdi)
    vdi_numbers = np.sort(rng.choice(np.arange(1, max(9000, 8 * n_vdi)), size=2 * n_vdi, replace=False))
    vdi_current, vdi_previous = vdi_numbers[n_vdi:], vdi_numbers[:n_vdi]
    add(vdi_ips, _names("VDI", vdi_current), "vdi", "vdi", persistent=False)

    n_srv = counts["servers"]
    n_file = max(1, round(n_srv / 6))
    srv_roles = ["file_server"] * n_file + ["monitor", "backup"] + ["app_server"] * (n_srv - n_file - 2)
    srv_ips = _host_addresses(rng, "10.30.1.0", n_srv)
    add(srv_ips, _names("SRV", np.arange(1, n_srv + 1)), "servers", srv_roles)

    n_db = counts["databases"]
    db_ips = _host_addresses(rng, "10.40.1.0", n_db)
    add(db_ips, _names("DB", np.arange(1, n_db + 1)), "databases", "database")

    n_dc = counts["domain_controllers"]
    add(
        np.arange(n_dc, dtype=np.uint32) + ip_to_int("10.50.0.10"),
        _names("DC", np.arange(1, n_dc + 1)),
        "domain_controllers",
        "domain_controller",
    )

    add(np.array([ip_to_int("172.16.1.10")], dtype=np.uint32), ["DMZ-WEB-0001"], "dmz", "dmz_web")

    hosts = pd.concat(parts, ignore_index=True)
    admin = np.zeros(len(hosts), dtype=bool)
    admin[rng.choice(n_ws, size=min(ADMIN_WORKSTATIONS, n_ws), replace=False)] = True
    hosts["is_admin"] = admin
    # Some people and machines are much busier than others.
    hosts["activity"] = rng.lognormal(0.0, 0.5, size=len(hosts))
    engine = np.arange(len(hosts)) % len(DB_ENGINES)
    is_db = (hosts["role"] == "database").to_numpy()
    hosts["db_port"] = np.where(is_db, np.array([p for p, _ in DB_ENGINES])[engine], 0).astype(np.int64)
    hosts["db_app"] = np.where(is_db, np.array([a for _, a in DB_ENGINES], dtype=object)[engine], "")
    hosts = hosts[HOST_COLUMNS]

    inventory = _inventory(hosts, ws_ips[n_ws:], ws_numbers[n_ws:], vdi_ips, vdi_previous, rng)

    world = np.random.default_rng(np.random.SeedSequence([seed, 0, 1]))  # the internet is shared by tenants
    popular_ips, popular_apps = [], []
    for app, prefix, n in POPULAR_SERVICES:
        hi = ip_to_int(prefix + ".0.0")
        popular_ips.append(hi + world.integers(256, 65280, size=n, dtype=np.uint32))
        popular_apps.extend([app] * n)
    service_weights = zipf_weights(len(POPULAR_SERVICES), 1.1)
    weights = np.concatenate(
        [np.full(n, w / n) for (_, _, n), w in zip(POPULAR_SERVICES, service_weights, strict=True)]
    )
    long_tail = random_public_ips(rng, LONG_TAIL_SIZE)

    return TenantNetwork(
        org1=org1,
        org2=org2,
        tenant_key=tenant_key(org1, org2),
        hosts=hosts,
        inventory=inventory,
        popular_ips=np.concatenate(popular_ips).astype(np.uint32),
        popular_apps=np.array(popular_apps, dtype=object),
        popular_weights=weights / weights.sum(),
        long_tail_ips=long_tail,
        long_tail_weights=rng.permutation(zipf_weights(LONG_TAIL_SIZE, 0.7)),
        dns_resolvers=np.array([ip_to_int(ip) for ip in DNS_RESOLVERS], dtype=np.uint32),
        ntp_servers=random_public_ips(world, NTP_POOL_SIZE),
        internet_clients=random_public_ips(rng, 400),
    )


def _inventory(
    hosts: pd.DataFrame,
    retired_ws_ips: np.ndarray,
    retired_ws_numbers: np.ndarray,
    vdi_ips: np.ndarray,
    previous_vdi_numbers: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Active machines plus inactive ones: retired workstations and earlier VDI instances.

    Non-persistent VDI desktops are rebuilt on every login, so an IP of the VDI pool has been
    held by earlier ``VDI-`` machines that the inventory still lists as inactive.
    """
    active = pd.DataFrame(
        {
            "ip_address": ips_to_strings(hosts["ip"].to_numpy()),
            "machine_name": hosts["machine_name"],
            "active": True,
            "segment": hosts["segment"],
        }
    )
    retired = pd.DataFrame(
        {
            "ip_address": ips_to_strings(retired_ws_ips),
            "machine_name": _names("WS", retired_ws_numbers),
            "active": False,
            "segment": "workstations",
        }
    )
    reused = rng.random(len(vdi_ips)) < 0.35
    earlier_vdi = pd.DataFrame(
        {
            "ip_address": ips_to_strings(vdi_ips[reused]),
            "machine_name": _names("VDI", previous_vdi_numbers[reused]),
            "active": False,
            "segment": "vdi",
        }
    )
    inventory = pd.concat([active, retired, earlier_vdi], ignore_index=True)
    inventory["active"] = inventory["active"].astype(bool)
    return inventory[INVENTORY_COLUMNS].sort_values(["segment", "machine_name"], kind="stable").reset_index(drop=True)
