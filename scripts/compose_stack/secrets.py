"""The local stack's payload encryption secrets, which compose mounts into the workers and
the codec server: a keyring (encryption-keys) and the codec server's token (codec-token).

Written once, never committed; rotate by putting a new key first (`uv run fleet codec
keygen`) and running `make up` again.
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

from .process import log

DEFAULT_SECRETS_DIR = ".data/compose/secrets"


def ensure_secrets(directory: Path, shown: str) -> None:
    """Write whichever of the keyring and the codec token is missing or empty.

    Each is 32 random bytes, the keyring in its format KEY_ID:BASE64. Both are readable by
    the containers' uid 10001, which is not the owner.

    Args:
        directory: Where they go (FLEET_SECRETS_DIR).
        shown: The directory as the log lines name it (as the user wrote it).
    """
    directory.mkdir(parents=True, exist_ok=True)
    keys, token = directory / "encryption-keys", directory / "codec-token"
    if not keys.is_file() or keys.stat().st_size == 0:
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        keys.write_text(f"{time.strftime('k%Y%m%d')}:{key}\n")
        log(f"wrote a new payload encryption key to {shown}/encryption-keys")
    if not token.is_file() or token.stat().st_size == 0:
        token.write_text(secrets.token_urlsafe(32) + "\n")
        log(f"wrote the codec server's token to {shown}/codec-token")
    keys.chmod(0o644)
    token.chmod(0o644)
