"""Machine inventory: the monthly unload of new machines from the warehouse, and its reader.

Plain functions taking resources (no Dagster definitions): :mod:`.sql` renders the SELECT from the
spec, :mod:`.unload` runs, verifies and publishes it and reads the published months back.
"""

from ndr_assets.inventory.unload import (
    MACHINE_INVENTORY_READ_SCHEMA,
    InventoryUnloadResult,
    read_machine_inventory,
    unload_machine_inventory,
)

__all__ = [
    "MACHINE_INVENTORY_READ_SCHEMA",
    "InventoryUnloadResult",
    "read_machine_inventory",
    "unload_machine_inventory",
]
