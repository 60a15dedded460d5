"""IP address handling as Spark column expressions (no Python UDFs)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
# Full and '::'-compressed IPv6 forms (hex groups of 1-4 digits, at most 8 groups, one '::').
IPV6_PATTERN = (
    r"^(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(([0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})?::(([0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})?)$"
)


def is_ipv4(col: Column) -> Column:
    return F.coalesce(col.rlike(IPV4_PATTERN), F.lit(False))


def is_valid_ip(col: Column) -> Column:
    """True for a well-formed IPv4 or IPv6 address, False otherwise (including null)."""
    return F.coalesce(col.rlike(IPV4_PATTERN) | col.rlike(IPV6_PATTERN), F.lit(False))


def ipv4_to_long(col: Column) -> Column:
    """The IPv4 address as an unsigned 32-bit number in a long; null for anything else."""
    parts = F.split(col, r"\.")
    value = (
        parts.getItem(0).cast("long") * 16777216
        + parts.getItem(1).cast("long") * 65536
        + parts.getItem(2).cast("long") * 256
        + parts.getItem(3).cast("long")
    )
    return F.when(is_ipv4(col), value)
