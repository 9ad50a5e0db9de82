"""The Web UI in a real browser (tests/shared/test_ui_codec.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")


def system_chromium() -> str:
    """Debian's Chromium, which the browser tests drive (Playwright downloads none)."""
    if not SYSTEM_CHROMIUM.exists():
        pytest.fail(f"{SYSTEM_CHROMIUM} is missing: `apt-get install -y chromium`")
    return str(SYSTEM_CHROMIUM)
