"""The order saga: reserve inventory, charge payment, await confirmation, ship, notify."""
