"""Payload encryption: AES-256-GCM with a keyring, so keys can rotate.

Every payload (workflow and activity arguments and results, signals, queries, memos,
failure messages and stack traces) leaves the process encrypted: Temporal stores
``binary/encrypted`` with the key id in the payload's metadata, never the data. The keyring
comes from ``FLEET_ENCRYPTION_KEYS`` or, for a mounted Secret, the file named by
``FLEET_ENCRYPTION_KEYS_FILE``: comma-separated ``KEY_ID:BASE64_OF_32_BYTES``, newest first.
The newest key encrypts; any listed key decrypts. Every reader must hold a key before any
writer encrypts with it, so a new key goes in two rolls: listed last (readable everywhere),
then moved first (used); the old key is dropped once no retained history needs it. Turning
encryption on for a running fleet goes the same way: ``FLEET_ENCRYPTION_MODE=decrypt-only``
first (the keyring decrypts, nothing is encrypted yet), then ``encrypt`` (the default). With
neither keys variable set, payloads are not encrypted.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec
from workerkit._exceptions import ConfigurationError, SettingError, WorkerkitError

__all__ = [
    "ENCRYPTED_ENCODING",
    "KEYS_FILE_VARIABLE",
    "KEYS_VARIABLE",
    "MODE_VARIABLE",
    "EncryptionCodec",
    "Keyring",
    "MissingKeyError",
    "encrypts",
    "load_keyring",
    "new_key",
]

KEYS_VARIABLE = "FLEET_ENCRYPTION_KEYS"
KEYS_FILE_VARIABLE = "FLEET_ENCRYPTION_KEYS_FILE"
MODE_VARIABLE = "FLEET_ENCRYPTION_MODE"
MODES = ("encrypt", "decrypt-only")
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_NONCE_BYTES = 12


class MissingKeyError(WorkerkitError, ValueError):
    """A payload was encrypted with a key the keyring does not hold."""


@dataclass(frozen=True)
class Keyring:
    """Keys by id; the first one encrypts."""

    keys: tuple[tuple[str, bytes], ...]

    @property
    def current_id(self) -> str:
        """The id of the key that encrypts."""
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes:
        """The key ``key_id``.

        Raises:
            MissingKeyError: The keyring does not hold it.
        """
        for kid, key in self.keys:
            if kid == key_id:
                return key
        known = ", ".join(k for k, _ in self.keys)
        raise MissingKeyError(
            f"payload encrypted with key {key_id!r}, which the keyring does not hold "
            f"(keys: {known}); add it to {KEYS_VARIABLE}"
        )


def _parse(text: str, variable: str) -> Keyring:
    # Errors name the variable and the entry, never the key material.
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    if not entries:
        raise ConfigurationError(f"{variable} holds no key (expected KEY_ID:BASE64, ...)")
    keys: list[tuple[str, bytes]] = []
    for n, entry in enumerate(entries, 1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigurationError(
                f"{variable}: entry {n} is not KEY_ID:BASE64 (a key id is 1 to 64 letters, "
                "digits, '.', '_' or '-')"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"{variable}: key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise ConfigurationError(
                f"{variable}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32"
            )
        if any(kid == key_id for kid, _ in keys):
            raise ConfigurationError(f"{variable}: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return Keyring(tuple(keys))


def load_keyring(environ: Mapping[str, str] | None = None) -> Keyring | None:
    """The keyring the environment configures, or ``None`` (encryption off).

    Raises:
        ConfigurationError: The keyring is malformed, both variables are set, or the file
            cannot be read.
    """
    env = os.environ if environ is None else environ
    inline = env.get(KEYS_VARIABLE, "").strip()
    path = env.get(KEYS_FILE_VARIABLE, "").strip()
    if inline and path:
        raise ConfigurationError(f"set {KEYS_VARIABLE} or {KEYS_FILE_VARIABLE}, not both")
    if path:
        try:
            return _parse(Path(path).read_text(encoding="utf-8"), KEYS_FILE_VARIABLE)
        except OSError as err:
            raise ConfigurationError(
                f"{KEYS_FILE_VARIABLE}={path!r}: cannot read it: {err.strerror or err}"
            ) from None
    if inline:
        return _parse(inline, KEYS_VARIABLE)
    return None


def encrypts(environ: Mapping[str, str] | None = None) -> bool:
    """Whether payloads are encrypted on the way out (``FLEET_ENCRYPTION_MODE``).

    Raises:
        SettingError: The mode is neither ``encrypt`` nor ``decrypt-only``.
    """
    env = os.environ if environ is None else environ
    raw = env.get(MODE_VARIABLE, "").strip()
    mode = raw.lower() or "encrypt"
    if mode not in MODES:
        raise SettingError(MODE_VARIABLE, raw, " or ".join(MODES))
    return mode == "encrypt"


def new_key(key_id: str | None = None) -> str:
    """A new keyring entry ``KEY_ID:BASE64`` (the id defaults to today's date)."""
    kid = key_id or datetime.now(UTC).strftime("k%Y%m%d")
    if not _KEY_ID.match(kid):
        raise ConfigurationError(f"key id {kid!r}: 1 to 64 letters, digits, '.', '_' or '-'")
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    """Encrypts each payload whole (metadata and data) with the keyring's newest key.

    Args:
        keyring: The keys; the first one encrypts.
        encrypt: ``False`` for decrypt-only: payloads go out as they are, and encrypted ones
            that come in are decrypted (the first step of turning encryption on).
    """

    def __init__(self, keyring: Keyring, *, encrypt: bool = True) -> None:
        # cryptography loads with the first codec, not with workerkit: a worker without a
        # keyring does not carry its 6 MiB.
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._keyring = keyring
        self._encrypt = encrypt
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring.keys}
        self._invalid_tag = InvalidTag

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt ``payloads`` with the newest key (unchanged when decrypt-only)."""
        if not self._encrypt:
            return list(payloads)
        kid = self._keyring.current_id
        cipher = self._ciphers[kid]
        out = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), kid.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: kid.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; others (written before encryption) pass unchanged.

        Raises:
            MissingKeyError: A payload's key is not in the keyring.
            ValueError: A payload does not decrypt (altered, or a different key of that id).
        """
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
                out.append(payload)
                continue
            kid = payload.metadata.get(KEY_ID_METADATA, b"").decode()
            self._keyring.key(kid)  # raises naming the key id
            nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
            try:
                plain = self._ciphers[kid].decrypt(nonce, sealed, kid.encode())
            except self._invalid_tag:
                raise ValueError(
                    f"payload encrypted with key {kid!r} does not decrypt: altered, or "
                    "another key under that id"
                ) from None
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out
