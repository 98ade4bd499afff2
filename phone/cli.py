"""``mssc-phone``: a phone in a terminal, for the demo and for mobile teams reading the API.

    mssc-phone enrol 'http://localhost:8000/e/<rendezvous>#<secret>' --name "Pixel de Camille"
    mssc-phone me
    mssc-phone whoami
    mssc-phone inbox [--mailbox ADDRESS] [--folder INBOX] [--limit 20]
    mssc-phone read <id> [--mailbox ADDRESS]
    mssc-phone save <id> <part> [--out FILE]
    mssc-phone receipt <id>
    mssc-phone send --to ADDRESS --subject "…" --text "…" [--attach FILE] [--mailbox ADDRESS]

Without ``--mailbox``, mail commands use the professional's own (nominative) mailbox.

The phone's key, tokens and (WebAuthn mode) authenticator credential are kept in
``~/.config/mssc-phone/<profile>.json`` (mode 0600): a real app keeps its key in the secure element.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import mimetypes
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from contracts.mail import AddressView, MailboxView, MessageSummary, MssMarkers, OutgoingMessage
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


async def with_phone(args: argparse.Namespace, action: Callable[[PhoneClient], Awaitable[None]]) -> None:
    """Run ``action`` with the enrolled phone; keep its refreshed tokens; wipe it if it was revoked."""
    client = load(args.profile)
    try:
        await action(client)
        save(client, args.profile)
    except PhoneError as exc:
        if exc.problem.get("wipe"):
            await client.acknowledge_wipe()
            _profile_path(args.profile).unlink(missing_ok=True)
            print("Cet appareil a été révoqué : clés et jetons effacés.", file=sys.stderr)
            raise SystemExit(3) from None
        save(client, args.profile)
        raise
    finally:
        await client.aclose()


async def show(args: argparse.Namespace, what: str) -> None:
    async def run(client: PhoneClient) -> None:
        result: Any = await (client.me() if what == "me" else client.whoami())
        print(json.dumps(result, indent=2, ensure_ascii=False))

    await with_phone(args, run)


# mail ---------------------------------------------------------------------------------------------


async def pick_mailbox(client: PhoneClient, address: str | None) -> MailboxView:
    """``address`` among the phone's mailboxes, or the professional's own one."""
    mailboxes = await client.mailboxes()
    if not mailboxes:
        raise SystemExit("Aucune boîte aux lettres n'est accessible depuis ce téléphone.")
    if address:
        found = next((m for m in mailboxes if m.address.lower() == address.strip().lower()), None)
        if found is None:
            known = ", ".join(m.address for m in mailboxes)
            raise SystemExit(f"Boîte inconnue pour ce téléphone : {address} (boîtes accessibles : {known})")
        return found
    return next((m for m in mailboxes if m.kind == "nominative"), mailboxes[0])


def _when(value: str | None) -> str:
    if not value:
        return "(sans date)"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value[:16]
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%d/%m/%Y %H:%M")


def _who(addresses: list[AddressView]) -> str:
    return ", ".join(f"{a.name} <{a.email}>" if a.name else a.email for a in addresses) or "(inconnu)"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _markers(mss: MssMarkers, *, attachments: bool = False) -> list[str]:
    """What the phone shows next to a message: attachment and MSSanté markers, in French."""
    found = ["PJ"] if attachments else []
    if mss.code_cda:
        found.append(f"CDA {mss.code_cda}")
    if mss.ins:
        found.append("INS")
    if mss.read_receipt_requested:
        found.append("accusé de lecture demandé")
    if mss.conversation_closed:
        found.append("réponse du patient impossible")
    if mss.end_of_conversation:
        found.append("fin de conversation")
    return found


def _patient(addresses: list[AddressView]) -> bool:
    return any(a.email.lower().endswith("@patient.mssante.fr") for a in addresses)


def _summary_line(message: MessageSummary) -> str:
    sender = message.from_[0].name or message.from_[0].email if message.from_ else "(inconnu)"
    markers = _markers(message.mss, attachments=message.has_attachments)
    if _patient(message.from_):
        markers.insert(0, "patient")
    flags = "●" if not message.seen else " "
    tail = "".join(f" [{m}]" for m in markers)
    return f"{flags} {_when(message.date)}  {_short(sender, 30):<30}  {message.subject or '(sans objet)'}{tail}"


async def inbox(args: argparse.Namespace) -> None:
    async def run(client: PhoneClient) -> None:
        mailbox = await pick_mailbox(client, args.mailbox)
        page = await client.messages(mailbox.id, folder=args.folder, cursor=args.cursor, limit=args.limit)
        count = len(page.items)
        print(f"{mailbox.address} — {args.folder} : {count} message{'s' if count != 1 else ''}")
        for message in page.items:
            print(_summary_line(message))
            print(f"    id : {message.id}")
        if page.next_cursor:
            print(f"Messages plus anciens : mssc-phone inbox --cursor {page.next_cursor}")

    await with_phone(args, run)


async def read(args: argparse.Namespace) -> None:
    async def run(client: PhoneClient) -> None:
        mailbox = await pick_mailbox(client, args.mailbox)
        detail = await client.message(mailbox.id, args.id)
        summary = detail.summary
        print(f"De : {_who(summary.from_)}")
        print(f"À : {_who(summary.to)}")
        if summary.cc:
            print(f"Cc : {_who(summary.cc)}")
        print(f"Date : {_when(summary.date)}")
        print(f"Objet : {summary.subject or '(sans objet)'}")
        markers = _markers(summary.mss)
        if _patient(summary.from_):
            markers.insert(0, "message d'un patient (Mon espace santé)")
        if markers:
            print(f"MSSanté : {', '.join(markers)}")
        print()
        print(detail.text.rstrip() or "(pas de texte)")
        if detail.partial:
            print("\n(message en partie illisible : une partie n'a pas pu être décodée)")
        if detail.attachments:
            print("\nPièces jointes :")
            for attachment in detail.attachments:
                extra = " — archive IHE XDM (documents CDA)" if attachment.ihe_xdm else ""
                print(
                    f"  {attachment.part}  {attachment.filename}  "
                    f"({attachment.content_type}, {_size(attachment.size)}){extra}"
                )
            print(f"Enregistrer : mssc-phone save {args.id} <partie>")
        if summary.mss.read_receipt_requested:
            print(f"L'expéditeur demande un accusé de lecture : mssc-phone receipt {args.id}")

    await with_phone(args, run)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} o"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} ko".replace(".", ",")
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")


def _safe_filename(name: str, part: str) -> str:
    """The attachment's own name, reduced to a plain file name of the current directory."""
    base = Path(name.replace("\\", "/")).name.strip().lstrip(".")
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*')
    return cleaned or f"piece-jointe-{part}"


async def save_attachment(args: argparse.Namespace) -> None:
    async def run(client: PhoneClient) -> None:
        mailbox = await pick_mailbox(client, args.mailbox)
        detail = await client.message(mailbox.id, args.id)
        attachment = next((a for a in detail.attachments if a.part == args.part), None)
        if attachment is None:
            parts = ", ".join(a.part for a in detail.attachments) or "aucune"
            raise SystemExit(f"Pas de pièce jointe {args.part} dans ce message (parties : {parts}).")
        target = Path(args.out) if args.out else Path(_safe_filename(attachment.filename, attachment.part))
        if target.exists() and not args.force:
            raise SystemExit(f"{target} existe déjà : choisissez un autre nom (--out) ou --force.")
        partial = target.with_name(f".{target.name}.part")
        written = 0
        try:
            with partial.open("wb") as out:
                async for chunk in client.attachment(mailbox.id, args.id, args.part):
                    out.write(chunk)
                    written += len(chunk)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        print(f"Enregistré : {target} ({_size(written)}, {attachment.content_type})")

    await with_phone(args, run)


async def receipt(args: argparse.Namespace) -> None:
    async def run(client: PhoneClient) -> None:
        mailbox = await pick_mailbox(client, args.mailbox)
        await client.receipt(mailbox.id, args.id)
        print("Accusé de lecture envoyé.")

    await with_phone(args, run)


def _read_attachments(names: list[str]) -> list[tuple[str, bytes, str]]:
    files: list[tuple[str, bytes, str]] = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            raise SystemExit(f"Fichier introuvable : {path}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files.append((path.name, path.read_bytes(), kind))
    return files


async def send(args: argparse.Namespace) -> None:
    text = sys.stdin.read() if args.text == "-" else args.text
    files = _read_attachments(args.attach or [])
    outgoing = OutgoingMessage(
        to=list(args.to),
        cc=list(args.cc or []),
        subject=args.subject,
        text=text,
        request_read_receipt=args.read_receipt,
    )

    async def run(client: PhoneClient) -> None:
        mailbox = await pick_mailbox(client, args.mailbox)
        if not mailbox.can_send:
            raise SystemExit(f"Ce téléphone peut lire {mailbox.address} mais pas envoyer depuis cette boîte.")
        sent = await client.send(mailbox.id, outgoing, attachments=files)
        copy = f", copie dans {sent.sent_copy}" if sent.sent_copy else ""
        print(f"Envoyé depuis {mailbox.address} à {sent.recipients} destinataire(s){copy}.")

    await with_phone(args, run)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    p = sub.add_parser("inbox", help="list the newest messages of a folder")
    p.add_argument("--mailbox", help="address of the mailbox (default: the professional's own)")
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--cursor", help="the next page, as the previous listing printed it")
    p = sub.add_parser("read", help="show a message: headers, text, attachments")
    p.add_argument("id")
    p.add_argument("--mailbox")
    p = sub.add_parser("save", help="save an attachment to a file (streamed)")
    p.add_argument("id")
    p.add_argument("part", help="the attachment's part, as `read` lists it")
    p.add_argument("--out", help="file to write (default: the attachment's name, here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--mailbox")
    p = sub.add_parser("receipt", help="send the read receipt a message asks for")
    p.add_argument("id")
    p.add_argument("--mailbox")
    p = sub.add_parser("send", help="send a message")
    p.add_argument("--to", action="append", required=True, help="recipient (repeat for several)")
    p.add_argument("--cc", action="append")
    p.add_argument("--subject", required=True)
    p.add_argument("--text", required=True, help="the text, or - to read it from standard input")
    p.add_argument("--attach", action="append", help="a file to attach (repeat for several)")
    p.add_argument("--read-receipt", action="store_true", help="ask for a read receipt")
    p.add_argument("--mailbox", help="send from this mailbox (default: the professional's own)")
    return parser.parse_args(argv)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
    "enrol": enrol,
    "inbox": inbox,
    "read": read,
    "save": save_attachment,
    "receipt": receipt,
    "send": send,
}


async def run(args: argparse.Namespace) -> None:
    """One command, in the caller's event loop."""
    command = COMMANDS.get(args.command)
    await (command(args) if command is not None else show(args, args.command))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except PhoneError as exc:
        print(
            f"erreur {exc.status} {exc.code} : {exc.problem.get('detail') or exc.problem.get('title')}", file=sys.stderr
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
