"""Free loopback ports: the worker's private SDK metrics port, and every tool that starts a
server on 127.0.0.1 (the tests, the benchmark, the end-to-end test)."""

from __future__ import annotations

import socket
from contextlib import ExitStack

__all__ = ["free_port", "free_ports"]


def free_ports(count: int, *, besides: tuple[int, ...] = ()) -> list[int]:
    """``count`` different ports nothing listens on now, none of ``besides``.

    Every socket stays bound until all are picked: two binds to port 0 in a row can hand out
    the same port. Another process can still take one before its user binds it.
    """
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in besides:
                ports.append(port)
        return ports


def free_port() -> int:
    """One port nothing listens on now."""
    return free_ports(1)[0]
