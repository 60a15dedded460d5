"""Seeded synthetic PAN-OS TRAFFIC for N tenants, with labelled attack scenarios (``ndr generate``).

- ``network``: each tenant's hosts in the common segments, its inventory, the internet it reaches.
- ``traffic``: normal sessions with daily and weekly rhythm, drawn in bulk with numpy.
- ``scenarios``: C2 beaconing, bulk exfiltration, internal port scan, rare external pairs + ground truth.
- ``records`` / ``writers``: PAN-OS fields; gzip JSON lines, Parquet or syslog CSV through the Lake.
- ``generate``: :func:`generate_traffic` ties them together; ``cli``: the ``generate`` command.
"""

from ndr_jobs.synthetic.generate import GenerationProgress, GenerationSummary, TenantSummary, generate_traffic

__all__ = ["GenerationProgress", "GenerationSummary", "TenantSummary", "generate_traffic"]
