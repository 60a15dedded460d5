"""Capture the hard-coded generator's scenarios before scenario files replace them."""
import hashlib, io, json, sys, tempfile
from datetime import UTC, datetime
import pandas as pd
from ndr_jobs.synthetic.generate import generate_traffic
from ndr_resources.lake import LocalLake

RUNS = {
    "small_run": dict(bucket="ndr-test", tenants=[("acme", "finance")], start=datetime(2026, 1, 5, 0, 8, tzinfo=UTC),
                      days=0.5, seed=11, scale=0.05),
    "demo_like": dict(bucket="ndr-demo", tenants=[("acme", "finance"), ("globex", "retail")],
                      start=datetime(2026, 3, 31, tzinfo=UTC), days=2.0, seed=7, scale=0.02,
                      attacks_from=datetime(2026, 4, 1, tzinfo=UTC)),
}
out = {}
for name, args in RUNS.items():
    with tempfile.TemporaryDirectory() as root:
        lake = LocalLake(root=root)
        summary = generate_traffic(lake, **args)
        tenants = {}
        for t in summary.tenants:
            truth = lake.read_bytes(t.ground_truth_uri).decode()
            tenants[t.label] = {
                "ground_truth_csv": truth,
                "scenarios": [{"name": s.name, "host_ip": s.host_ip, "peers": list(s.peers), "sessions": s.sessions}
                              for s in t.scenarios],
            }
        out[name] = tenants
json.dump(out, open(sys.argv[1], "w"), indent=1)
