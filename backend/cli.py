"""``mss-companion``: serve the app, rotate signing keys, check the audit trail, write the OpenAPI.

Every command reads the same ``MSSC_*`` settings as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings, SettingsError

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "contracts" / "openapi.json"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from backend.app import create_app

    settings = _settings()
    host = args.host or settings.app.host
    port = args.port or settings.app.port
    print(
        f"mss-companion ({settings.app.mode}) on http://{host}:{port} — public URL {settings.app.public_url}",
        file=sys.stderr,
    )
    uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Forwarded headers are believed only from the configured proxies (never by default)."""
    proxies = settings.app.trusted_proxies
    return {
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else None,
    }


def rotate_keys(_args: argparse.Namespace) -> None:
    from backend.auth.signing_keys import rotate

    kid = rotate(_settings().tokens.signing_keys_dir)
    print(f"new signing key {kid}; older keys keep verifying until removed")


def verify_audit(args: argparse.Namespace) -> None:
    from core.audit import AuditTrail
    from core.db.engine import Database

    async def run() -> bool:
        db = Database(_settings().db)
        try:
            check = await AuditTrail(db).verify(args.chain)
        finally:
            await db.dispose()
        print(
            json.dumps(
                {"chain": check.chain, "events": check.events, "ok": check.ok, "firstBadSeq": check.first_bad_seq}
            )
        )
        return check.ok

    raise SystemExit(0 if asyncio.run(run()) else 1)


def expire_devices(_args: argparse.Namespace) -> None:
    from core.audit import AuditTrail
    from core.db.engine import Database
    from core.device_registry import DeviceRegistry

    async def run() -> None:
        settings = _settings()
        db = Database(settings.db)
        try:
            ids = await DeviceRegistry(db, AuditTrail(db)).expire_idle(
                idle_days=settings.enrolment.device_idle_expiry_days
            )
        finally:
            await db.dispose()
        print(f"{len(ids)} idle device(s) revoked")

    asyncio.run(run())


def write_openapi(args: argparse.Namespace) -> None:
    from backend.openapi_doc import openapi_json

    text = openapi_json()
    if args.check:
        if not OPENAPI_PATH.exists() or OPENAPI_PATH.read_text() != text:
            print(f"{OPENAPI_PATH} is stale: run `make openapi`", file=sys.stderr)
            raise SystemExit(1)
        return
    OPENAPI_PATH.write_text(text)
    print(f"wrote {OPENAPI_PATH}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mss-companion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the server (web pages, phone API)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=serve)
    sub.add_parser("rotate-keys", help="add a new token signing key").set_defaults(func=rotate_keys)
    p = sub.add_parser("verify-audit", help="recompute an audit chain")
    p.add_argument("--chain", default="global", help="a structure id, or 'global'")
    p.set_defaults(func=verify_audit)
    sub.add_parser("expire-devices", help="revoke devices unused for too long").set_defaults(func=expire_devices)
    p = sub.add_parser("openapi", help="write contracts/openapi.json")
    p.add_argument("--check", action="store_true", help="fail if the committed document is stale")
    p.set_defaults(func=write_openapi)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
