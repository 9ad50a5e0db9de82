"""The one error of the bench and the soak: a measurement that could not be made."""

from __future__ import annotations


class BenchError(Exception):
    """The bench could not produce a valid measurement."""
