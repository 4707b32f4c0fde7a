"""This process's own TCP connections, to wait for a client to finish closing.

A TLS close is a short exchange (close_notify both ways) that completes on the event loop
after the caller already has its answer; a test that ends first leaves a half-closed
socket that Python reports as a ResourceWarning."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time


def connections_to(port: int) -> int:
    """How many of this process's sockets are connected to 127.0.0.1:``port``."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError, ValueError):
            fd = int(name)
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            # A dup, so closing our socket object leaves the owner's descriptor alone.
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family == socket.AF_INET and sock.getpeername() == ("127.0.0.1", port):
                    count += 1
    return count


async def wait_until_closed(port: int, timeout_s: float = 10.0) -> None:
    """Run the event loop until no socket of ours is connected to ``port`` any more."""
    deadline = time.monotonic() + timeout_s
    while (open_now := connections_to(port)) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{open_now} connection(s) to port {port} still open")
        await asyncio.sleep(0.01)
