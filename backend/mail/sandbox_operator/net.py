"""Loopback ports for the sandbox operator: the one asked for when it is free, else the kernel's choice."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def can_bind(host: str, port: int) -> bool:
    """True when this process may listen on ``host:port`` now (free, and not privileged for us)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    # something may accept connections there without us being refused the bind (SO_REUSEADDR)
    return not accepts(host, port)


def pick_port(host: str, wanted: int) -> int:
    """``wanted`` when it can be used, else a free port."""
    return wanted if can_bind(host, wanted) else free_port(host)


def accepts(host: str, port: int, *, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, *, timeout_s: float) -> bool:
    """Wait until ``host:port`` accepts a connection; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not accepts(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def wait_refused(host: str, port: int, *, timeout_s: float) -> bool:
    """Wait until ``host:port`` refuses connections (every listener is gone); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while accepts(host, port, timeout_s=0.2):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True
