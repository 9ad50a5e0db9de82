"""The one data converter every client, worker and replayer of the project uses.

Strict JSON decoding (``_strict``) always; AES-256-GCM payload encryption (``_encryption``) and
encoded failure messages and stack traces when a keyring is configured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from workerkit._encryption import EncryptionCodec, encrypts, load_keyring
from workerkit._strict import StrictPayloadConverter

__all__ = ["data_converter"]


def data_converter(environ: Mapping[str, str] | None = None) -> DataConverter:
    """Build the project's data converter from the environment's keyring (if any).

    Raises:
        ConfigurationError: The keyring variables are malformed.
    """
    converter = dataclasses.replace(
        DataConverter.default, payload_converter_class=StrictPayloadConverter
    )
    keyring = load_keyring(environ)
    if keyring is None:
        return converter
    if not encrypts(environ):  # decrypt-only: read what is encrypted, write plaintext
        return dataclasses.replace(converter, payload_codec=EncryptionCodec(keyring, encrypt=False))
    # Failure messages and stack traces carry customer data too: encode them as payloads.
    return dataclasses.replace(
        converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
