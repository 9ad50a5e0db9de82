"""Free ports on 127.0.0.1 and HTTP probes of the servers the tests start."""

from __future__ import annotations

import urllib.error
import urllib.request

# The one implementation, the worker's own (re-exported here as the tests have always named it).
from workerkit._net import free_port
from workerkit._net import free_ports as distinct_free_ports

__all__ = ["distinct_free_ports", "free_port", "http_get"]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``url``; return ``(status, body)``, status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""
