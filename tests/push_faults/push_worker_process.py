"""A push worker in a process of its own, for the fault tests that SIGKILL it mid-batch.

``python -m tests.push_faults.push_worker_process '<json>'``: the JSON names the database URL, the
Redis URL and namespace of the queue, the consumer name, the push settings (providers pointed at
the local APNs and FCM peers) and how soon a silent consumer's entries are taken over. It runs the
policy and sender loops, as the app's ``push`` role does, until killed; SIGTERM stops it politely.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from core.db.engine import Database
from core.queue import QueuePolicy, RedisStreamQueue
from core.settings import AppSettings, DatabaseSettings, PushSettings, Settings
from push.delivery import RetryPolicy
from push.metrics import PushMetrics
from push.pipeline import PushPipeline
from push.providers.factory import providers_from_settings


async def main(config: dict[str, object]) -> None:
    fields: dict[str, Any] = dict(config["push"])  # type: ignore[call-overload]
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    push = PushSettings(**values)
    settings = Settings(app=AppSettings(data_dir=str(config["data_dir"])), push=push)
    db = Database(DatabaseSettings(url=str(config["db_url"])))
    queue = RedisStreamQueue.from_url(str(config["redis_url"]), str(config["namespace"]), QueuePolicy(max_attempts=50))
    providers = providers_from_settings(settings)
    pipeline = PushPipeline(
        db=db,
        queue=queue,
        providers=providers,
        retry=RetryPolicy.from_settings(push),
        metrics=PushMetrics(),
        consumer=str(config["consumer"]),
        batch=int(str(config.get("batch", 50))),
        reclaim_idle_ms=int(str(config["reclaim_idle_ms"])),
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    pipeline.start()
    print("started", flush=True)  # the test waits for this line
    await stop.wait()
    await pipeline.stop()
    await providers.aclose()
    await queue.close()
    await db.dispose()


if __name__ == "__main__":
    Path(json.loads(sys.argv[1])["data_dir"]).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(json.loads(sys.argv[1])))
