"""Free ports on 127.0.0.1 and HTTP probes of the servers the tests start."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def free_port() -> int:
    """A port nothing listens on now (another call can hand it out again once this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def distinct_free_ports(count: int, *, besides: tuple[int, ...] = ()) -> list[int]:
    """``count`` free ports, all different and none of ``besides`` (free_port() alone can
    repeat itself)."""
    ports: list[int] = []
    while len(ports) < count:
        candidate = free_port()
        if candidate not in ports and candidate not in besides:
            ports.append(candidate)
    return ports


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``url``; return ``(status, body)``, status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""
