"""The agent queue."""
