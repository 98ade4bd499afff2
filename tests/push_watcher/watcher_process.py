"""A watcher in a process of its own, for the tests that kill one (``python -m … '<json>'``).

The JSON argument names the database URL, the Redis URL and namespace, the operator (Dovecot), the
watcher's owner id and its settings. It runs until killed; SIGTERM stops it politely.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from backend.mail.operator import MasterUserAuth
from core.db.engine import Database
from core.ephemeral import RedisEphemeral
from core.queue import QueuePolicy, RedisStreamQueue
from core.settings import DatabaseSettings, OperatorSettings, WatcherSettings
from push.watcher import RedisLeases, WatchedMailbox, Watcher, push_enabled_mailboxes, session_opener


async def main(config: dict[str, object]) -> None:
    db = Database(DatabaseSettings(url=str(config["db_url"])))
    redis_url, namespace, owner = str(config["redis_url"]), str(config["namespace"]), str(config["owner"])
    settings = WatcherSettings(**config["watcher"])  # type: ignore[arg-type]
    operator = OperatorSettings(
        kind="remote",
        imap_host=str(config["imap_host"]),
        imap_port=int(str(config["imap_port"])),
        tls="plain",
        auth="master",
        master_user=str(config["master_user"]),
        master_password=str(config["master_password"]),
        connect_timeout_s=3.0,
        command_timeout_s=10.0,
    )
    auth = MasterUserAuth(user=operator.master_user, password=operator.master_password)
    ephemeral = RedisEphemeral.from_url(redis_url, namespace)

    async def discover() -> list[WatchedMailbox]:
        return await push_enabled_mailboxes(db)

    watcher = Watcher(
        settings=settings,
        queue=RedisStreamQueue.from_url(redis_url, namespace, QueuePolicy(maxlen=None)),
        ephemeral=ephemeral,
        leases=RedisLeases.from_url(redis_url, namespace, owner, settings.lease_ttl_s),
        discover=discover,
        opener=session_opener(operator, auth, None),
        watcher_id=owner,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await watcher.start()
    print("started", flush=True)  # the test waits for this line
    await stop.wait()
    await watcher.stop()
    await ephemeral.close()
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
