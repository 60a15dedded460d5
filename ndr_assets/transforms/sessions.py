"""Sessions delivered twice: the identities of delivered sessions and the flag of a redelivery.

A collector that retries can deliver the same log again in a later mini-batch (of the same window
or a later one); counted twice, it would double a host's sessions and bytes. A session is
identified by ``(device_serial, session_id, event_start)``: the firewall, its session id and the
session's start time (a firewall reuses session ids, never with the same start time). A null
``device_serial`` is a single-firewall source (no serial field) and compares as the empty string,
so its sessions are identified by ``(session_id, event_start)``. Rows without a ``session_id`` or
an ``event_start`` have no identity: they are never flagged.

A row is a redelivery when the same identity was delivered before it within the trailing day: in
an earlier window whose start is less than 24 h before the row's window start (the 95 windows
before it), or earlier in the same window (an earlier mini-batch, or a second copy in one batch).
Deliveries are ordered by ``window_start``, ``mini_batch_id``, ``source_file``; the first one is
kept. Earlier deliveries come from the traffic itself and from ``earlier_keys``, the
:data:`SESSION_KEY_SCHEMA` rows (:func:`session_keys`) of already-published windows before the
range. Pure PySpark: one window function over the traffic and the earlier keys together.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

SESSION_KEY_SCHEMA = T.StructType(
    [
        T.StructField("device_serial", T.StringType()),  # "" for a source without serial numbers
        T.StructField("session_id", T.LongType()),
        T.StructField("event_start", T.TimestampType()),
        T.StructField("window_start", T.TimestampType()),  # the arrival window of the delivery
    ]
)
REDELIVERED_COL = "redelivered"
# A delivery in a window starting less than this before the row's window counts as earlier.
REDELIVERY_HORIZON = timedelta(hours=24)

_SERIAL_KEY = "_serial_key"
_IDENTITY_PART = "_identity_part"
_FROM_TRAFFIC = "_from_traffic"
_HAS_IDENTITY = "_has_identity"


def has_session_identity(traffic: DataFrame) -> Column:
    """True for a row with a session identity (``session_id`` and ``event_start`` both known)."""
    return traffic["session_id"].isNotNull() & traffic["event_start"].isNotNull()


def _serial_key(device_serial: Column) -> Column:
    return F.coalesce(device_serial, F.lit(""))


def session_keys(traffic: DataFrame) -> DataFrame:
    """The distinct session identities delivered per window (``SESSION_KEY_SCHEMA``).

    ``traffic`` is canonical traffic plus ``window_start``; rows without identity are left out and a
    null ``device_serial`` is written as "".
    """
    keys = traffic.filter(has_session_identity(traffic)).select(
        _serial_key(F.col("device_serial")).alias("device_serial"),
        F.col("session_id").cast(T.LongType()).alias("session_id"),
        F.col("event_start").cast(T.TimestampType()).alias("event_start"),
        F.col("window_start").cast(T.TimestampType()).alias("window_start"),
    )
    return keys.distinct()


def flag_redelivered_sessions(traffic: DataFrame, earlier_keys: DataFrame) -> DataFrame:
    """``traffic`` plus a non-null boolean ``redelivered`` (see the module docstring).

    ``traffic``: canonical traffic plus ``window_start``; ``earlier_keys``: ``SESSION_KEY_SCHEMA``
    rows of published windows before the range (empty for none).
    """
    columns = traffic.columns
    identity = has_session_identity(traffic)
    # Rows without identity each get a partition key of their own, so they are spread over the
    # shuffle instead of piling up in one window partition (they are never flagged anyway).
    own_part = F.lit(-1) - F.monotonically_increasing_id()
    rows = traffic.select(
        "*",
        _serial_key(F.col("device_serial")).alias(_SERIAL_KEY),
        F.when(identity, F.col("session_id")).otherwise(own_part).alias(_IDENTITY_PART),
        identity.alias(_HAS_IDENTITY),
        F.lit(True).alias(_FROM_TRAFFIC),
    )
    earlier = earlier_keys.filter(has_session_identity(earlier_keys)).select(
        _serial_key(F.col("device_serial")).alias(_SERIAL_KEY),
        F.col("session_id").cast(T.LongType()).alias(_IDENTITY_PART),
        F.col("event_start").cast(T.TimestampType()).alias("event_start"),
        F.col("window_start").cast(T.TimestampType()).alias("window_start"),
        F.lit(True).alias(_HAS_IDENTITY),
        F.lit(False).alias(_FROM_TRAFFIC),
    )
    both = rows.unionByName(earlier, allowMissingColumns=True)
    # At an equal window start, a traffic row sorts before an earlier key: keys of the windows being
    # recomputed (the caller should not pass them) then never flag the rows they came from.
    deliveries = Window.partitionBy(_SERIAL_KEY, _IDENTITY_PART, "event_start").orderBy(
        "window_start", F.col(_FROM_TRAFFIC).desc(), "mini_batch_id", "source_file"
    )
    previous = F.lag("window_start").over(deliveries)
    horizon_micros = F.lit(int(REDELIVERY_HORIZON.total_seconds()) * 1_000_000)
    within_day = F.unix_micros(previous) > F.unix_micros(F.col("window_start")) - horizon_micros
    flagged = both.withColumn(REDELIVERED_COL, F.col(_HAS_IDENTITY) & F.coalesce(within_day, F.lit(False)))
    return flagged.filter(F.col(_FROM_TRAFFIC)).select(*columns, REDELIVERED_COL)
