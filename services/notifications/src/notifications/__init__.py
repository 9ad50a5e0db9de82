"""Notifications: fan-out to channels through an idempotent outbox, and a scheduled digest."""
