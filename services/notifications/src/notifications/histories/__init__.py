"""The stored workflow histories of queue notifications.

Replayed by the replay tests and the replay gate. ``recorded/``: what ``make histories``
records anew from the test scenarios. ``frozen/``: kept as they are, to prove an older shape
still replays (``make freeze-history`` adds one).
"""
