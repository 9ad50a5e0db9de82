"""The notifications queue."""
