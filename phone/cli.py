"""``mssc-phone``: a phone in a terminal, for the demo and for mobile teams reading the API.

    mssc-phone enrol 'http://localhost:8000/e/<rendezvous>#<secret>' --name "Pixel de Camille"
    mssc-phone me
    mssc-phone whoami

The phone's key, tokens and (WebAuthn mode) authenticator credential are kept in
``~/.config/mssc-phone/<profile>.json`` (mode 0600): a real app keeps its key in the secure element.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from phone.client import PhoneClient, PhoneError, PhoneState, QrCode
from phone.keys import DeviceKey
from phone.soft_authenticator import SoftAuthenticator


def _profile_path(profile: str) -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "mssc-phone"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base / f"{profile}.json"


def save(client: PhoneClient, profile: str) -> None:
    s = client.state
    data = {
        "baseUrl": s.base_url,
        "key": s.key.pem(),
        "binding": s.binding,
        "deviceId": s.device_id,
        "accessToken": s.access_token,
        "refreshToken": s.refresh_token,
        "accessExpiresAt": s.access_expires_at,
        "scope": s.scope,
        "webauthn": client.authenticator.export(),
    }
    path = _profile_path(profile)
    path.touch(mode=0o600)
    path.write_text(json.dumps(data, indent=2))


def load(profile: str) -> PhoneClient:
    path = _profile_path(profile)
    if not path.exists():
        raise SystemExit(f"no enrolled phone in profile {profile!r}: run `mssc-phone enrol <qr-url>` first")
    data = json.loads(path.read_text())
    state = PhoneState(
        base_url=data["baseUrl"],
        key=DeviceKey.from_pem(data["key"]),
        binding=data["binding"],
        device_id=data["deviceId"],
        access_token=data["accessToken"],
        refresh_token=data["refreshToken"],
        access_expires_at=data["accessExpiresAt"],
        scope=data["scope"],
    )
    authenticator = SoftAuthenticator()
    authenticator.load(data.get("webauthn", []))
    return PhoneClient(state, authenticator=authenticator)


async def enrol(args: argparse.Namespace) -> None:
    qr = QrCode.parse(args.qr_url)
    client = PhoneClient(PhoneState(base_url=qr.origin))
    try:
        code = await client.claim(
            args.qr_url,
            name=args.name,
            platform=args.platform,
            binding=args.binding,
            push_provider=args.push_provider,
            push_token=args.push_token,
        )
        print(f"Code affiché sur le téléphone : {code}")
        print("Vérifiez que la page web affiche le même code, puis confirmez-le sur la page.")
        await client.bind()
        tokens = await client.complete(timeout_s=args.wait)
        save(client, args.profile)
        print(f"Téléphone enrôlé : {tokens['deviceId']}")
        print(f"Droits : {tokens['scope']}")
    finally:
        await client.aclose()


async def show(args: argparse.Namespace, what: str) -> None:
    client = load(args.profile)
    try:
        result: Any = await (client.me() if what == "me" else client.whoami())
        save(client, args.profile)
        print(json.dumps(result, indent=2, ensure_ascii=False))
    except PhoneError as exc:
        if exc.problem.get("wipe"):
            await client.acknowledge_wipe()
            _profile_path(args.profile).unlink(missing_ok=True)
            print("Cet appareil a été révoqué : clés et jetons effacés.", file=sys.stderr)
            raise SystemExit(3) from None
        raise
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mssc-phone", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="default", help="which simulated phone (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("enrol", help="enrol this phone from the QR code's URL")
    p.add_argument("qr_url")
    p.add_argument("--name", default="Téléphone de démonstration")
    p.add_argument("--platform", choices=["ios", "android", "web"], default="android")
    p.add_argument("--binding", choices=["es256", "webauthn"], default="es256")
    p.add_argument("--push-provider", choices=["apns", "fcm", "none"], default="none")
    p.add_argument("--push-token")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the web confirmation")
    sub.add_parser("me", help="the device, its professional and its mailboxes")
    sub.add_parser("whoami", help="what the access token says")
    args = parser.parse_args(argv)
    try:
        if args.command == "enrol":
            asyncio.run(enrol(args))
        else:
            asyncio.run(show(args, args.command))
    except PhoneError as exc:
        print(
            f"erreur {exc.status} {exc.code} : {exc.problem.get('detail') or exc.problem.get('title')}", file=sys.stderr
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
