"""Liveness and readiness: ready means the database and the ephemeral store both answer."""

from __future__ import annotations

import asyncio

from litestar import Response, Router, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.errors import ErrorCode
from core.errors import DomainError


@get("/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", summary="Database and store reachable")
async def ready(state: State) -> Response[dict[str, str]]:
    container = state.container
    checks: dict[str, str] = {}
    for name, probe in (("database", container.db.ping), ("store", container.ephemeral.ping)):
        try:
            async with asyncio.timeout(2):
                await probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = type(exc).__name__
    if any(v != "ok" for v in checks.values()):
        raise DomainError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "; ".join(f"{k}: {v}" for k, v in checks.items()),
            retry_after=5,
            headers={"Retry-After": "5"},
        )
    return Response({"status": "ok", **checks})


health_router = Router(path="/health", route_handlers=[live, ready], tags=["health"])


@get(
    "/metrics",
    summary="Prometheus metrics (content-free labels)",
    include_in_schema=False,
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics(state: State) -> bytes:
    container = state.container
    if "watcher" in container.settings.app.roles:
        stats = container.watcher.stats()
        container.pipeline.metrics.watcher(
            watching=stats.watching, connected=stats.connected, live_watchers=stats.live_watchers
        )
    return generate_latest(container.pipeline.metrics.registry)
