"""Generate a new queue service with the same layout, registration and tests as the others."""

from fleet_devtools._scaffold import ScaffoldError, plan_queue, write_queue

__all__ = ["ScaffoldError", "plan_queue", "write_queue"]
