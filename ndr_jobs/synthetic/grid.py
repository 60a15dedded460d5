"""The 15-minute window grid of ``ndr_assets.transforms.windows`` on numpy arrays of epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ndr_assets.transforms.windows import GRID_OFFSET_SECONDS, SLICE_SECONDS, floor_to_window_start, mini_batch_id_for

# A mini-batch lands 10 s before its window closes, so its id maps back to that window.
LANDING_OFFSET_SECONDS = SLICE_SECONDS - 10


def window_start_epochs(epochs: np.ndarray) -> np.ndarray:
    """Start (epoch seconds) of the window containing each epoch second; same rule as floor_to_window_start."""
    epochs = np.asarray(epochs, dtype=np.int64)
    return (epochs - GRID_OFFSET_SECONDS) // SLICE_SECONDS * SLICE_SECONDS + GRID_OFFSET_SECONDS


def to_epoch(ts: datetime) -> int:
    return int((ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp())


def from_epoch(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def aligned_start(ts: datetime) -> int:
    """``ts`` floored onto the window grid, as epoch seconds."""
    return to_epoch(floor_to_window_start(ts))


def window_iso(window_start_epoch: int) -> str:
    return floor_to_window_start(from_epoch(window_start_epoch)).isoformat()


def mini_batch_id_for_window(window_start_epoch: int) -> str:
    """The mini-batch id of a window: its landing time, window start + 14m50s."""
    return mini_batch_id_for(from_epoch(window_start_epoch + LANDING_OFFSET_SECONDS))
