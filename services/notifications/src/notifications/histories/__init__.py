"""The notifications queue's stored workflow histories, replayed by the replay tests and gate.

``recorded/``: what ``make histories`` records anew from the test scenarios. ``frozen/``: kept
as they are, to prove an older shape still replays (``make freeze-history`` adds one).
"""
