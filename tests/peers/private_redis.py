"""A private ``redis-server`` on a free port, for tests that crash Redis (SIGKILL) and start it again.

With ``appendonly`` the append-only file is synced on every write (``appendfsync always``), as a
deployment that must not lose acknowledged queue entries would run it; without it Redis keeps
nothing across a crash.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from redis.asyncio import Redis


class PrivateRedis:
    def __init__(self, directory: Path, *, appendonly: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"] if appendonly else ["--appendonly", "no"]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start (again, on the same port and directory) and wait until it answers."""
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server", *self.args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        probe = Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    await probe.ping()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.02)
        finally:
            await probe.aclose()

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no final save (what a crash or an OOM kill does)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
