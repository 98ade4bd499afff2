"""Free loopback ports for test peers, and waiting until a peer listens."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's choice; a tiny race is accepted in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port(host: str = "127.0.0.1") -> int:
    """A port that refuses connections: where an operator that is down would be."""
    return free_port(host)


def wait_listening(host: str, port: int, *, timeout_s: float = 10.0) -> None:
    """Block until ``host:port`` accepts a TCP connection; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from None
            time.sleep(0.02)


def wait_refused(host: str, port: int, *, timeout_s: float = 10.0) -> None:
    """Block until ``host:port`` refuses connections (every process holding the listener is gone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} still accepts connections after {timeout_s}s")
        time.sleep(0.01)
