"""``mssc-phone``: a phone in a terminal, for the demo and for mobile teams reading the API.

    mssc-phone enrol 'http://localhost:8000/e/<rendezvous>#<secret>' --name "Pixel de Camille"
    mssc-phone me
    mssc-phone whoami
    mssc-phone inbox [--mailbox ADDRESS] [--folder INBOX] [--limit 20]
    mssc-phone read <id> [--mailbox ADDRESS]
    mssc-phone save <id> <part> [--out FILE]
    mssc-phone receipt <id>
    mssc-phone send --to ADDRESS --subject "…" --text "…" [--attach FILE] [--mailbox ADDRESS]
    mssc-phone listen [--once] [--timeout S]

Without ``--mailbox``, mail commands use the professional's own (nominative) mailbox.

``listen`` is the demo's push receiver: it takes the pushes the server's dev sink recorded for this
phone (where APNs or FCM would deliver them), shows each as the phone would ("Nouveau message
sécurisé", "Alerte de garde"…), then fetches the content through the API, as an app does.

The phone's key, tokens and (WebAuthn mode) authenticator credential are kept in
``~/.config/mssc-phone/<profile>.json`` (mode 0600): a real app keeps its key in the secure element.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import mimetypes
import os
import secrets
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Final

import httpx

from contracts.alerts import AlertStatus
from contracts.mail import AddressView, MailboxView, MessageSummary, MssMarkers, OutgoingMessage
from contracts.push import GENERIC_TEXT_FR, AlertClass, LocKey
from contracts.push_feed import SentPush
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
        "pushCursor": s.push_cursor,
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
        push_cursor=data.get("pushCursor"),
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


# push (the demo's device simulator) ---------------------------------------------------------------

#: How long one call to the push feed waits for a push (the server allows up to 25 s).
FEED_WAIT_S: Final = 20.0
#: Event ids remembered for de-duplication (delivery is at least once).
SEEN_MAX: Final = 1000
#: Messages shown after a new-mail push, at most.
NEWEST_SHOWN: Final = 5
_NO_FEED = (
    "Ce serveur n'envoie pas ses notifications au simulateur : `mssc-phone listen` ne fonctionne "
    "qu'avec le serveur de démonstration (MSSC_PUSH_PROVIDERS=sink, le défaut en dev)."
)
_STATUS_FR = {
    AlertStatus.OPEN: "ouverte",
    AlertStatus.ACKNOWLEDGED: "prise en charge",
    AlertStatus.ESCALATED: "escaladée",
    AlertStatus.CLOSED: "close",
}


class _WipedError(Exception):
    """The server revoked this phone (wipe push or ``device_revoked`` answer): it erased itself."""


def _say(text: str) -> None:
    """A line at once, even when the output is a pipe (``listen | tee``): it is a live feed."""
    print(text, flush=True)


def notification_text(push: SentPush) -> str:
    """What the phone's notification shows: the generic text of the class and the badge, nothing else."""
    at = push.at.astimezone().strftime("%H:%M:%S")
    loc_key = push.payload.get("locKey")
    if push.kind == "background" or not isinstance(loc_key, str):
        what = "effacement à distance" if push.alert_class == AlertClass.WIPE else str(push.alert_class)
        return f"[{at}] Notification silencieuse : {what}"
    badge = push.payload.get("badge")
    return f"[{at}] {GENERIC_TEXT_FR[LocKey(loc_key)]}" + (f" — pastille {badge}" if badge is not None else "")


def _same_id(a: str, b: str) -> bool:
    """Ids as the push and the API write them (with or without dashes)."""
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a == b


async def _show_mail(client: PhoneClient, push: SentPush) -> None:
    """The app opens the mailbox the push names: its newest unread messages (or the newest one)."""
    mailbox_id = str(push.payload.get("mailboxId", ""))
    mailbox = next((m for m in await client.mailboxes() if _same_id(m.id, mailbox_id)), None)
    if mailbox is None:
        _say("  (boîte inconnue de ce téléphone : droits retirés ?)")
        return
    page = await client.messages(mailbox.id, limit=NEWEST_SHOWN)
    unread = [m for m in page.items if not m.seen]
    if unread:
        plural = "s" if len(unread) > 1 else ""
        _say(f"  {mailbox.address} — {len(unread)} message{plural} non lu{plural} :")
    else:
        _say(f"  {mailbox.address} — aucun message non lu ; le plus récent :")
    shown = unread or page.items[:1]
    for message in shown:
        _say(f"  {_summary_line(message)}")
        _say(f"        id : {message.id}")
    if shown:
        where = "" if mailbox.kind == "nominative" else f" --mailbox {mailbox.address}"
        _say(f"  Lire : mssc-phone read {shown[0].id}{where}")


async def _show_alert(client: PhoneClient, push: SentPush) -> None:
    detail = await client.alert(str(push.payload.get("alertId", "")))
    alert = detail.alert
    kind = "Alerte de garde" if push.alert_class == AlertClass.ONCALL_ALERT else "Alerte de visite"
    _say(f"  {kind} de {alert.raised_by} ({_STATUS_FR.get(alert.status, alert.status)}) :")
    _say(f"  « {detail.text} »")
    if alert.awaiting_me:
        _say(f"  Personne ne l'a encore prise : POST /api/v1/alerts/{alert.id}/ack pour la prendre.")


async def _forget(client: PhoneClient, profile: str) -> None:
    """Erase the phone: tell the server (best effort), then drop keys, tokens and the profile."""
    with contextlib.suppress(PhoneError, httpx.HTTPError):
        await client.acknowledge_wipe()
    client.state.access_token = client.state.refresh_token = None
    _profile_path(profile).unlink(missing_ok=True)


async def _show_push(client: PhoneClient, push: SentPush, profile: str) -> None:
    """One push: the notification, then what the app fetches; a wipe erases the phone."""
    _say(notification_text(push))
    if push.alert_class == AlertClass.WIPE:
        await _forget(client, profile)
        _say("  Effacement à distance : cet appareil a été révoqué ; clés, jetons et profil effacés.")
        raise _WipedError
    try:
        if push.alert_class == AlertClass.MAIL:
            await _show_mail(client, push)
        else:
            await _show_alert(client, push)
    except PhoneError as exc:
        if exc.problem.get("wipe"):
            raise
        _say(f"  (contenu indisponible : {exc.code})")
    except httpx.TransportError:
        _say("  (contenu indisponible : serveur injoignable)")


async def _prepare(client: PhoneClient) -> list[SentPush]:
    """What an app does at launch: check the feed, register a push address if it has none, say when
    mail is not pushed right now (availability). Returns the pushes that came while it was off."""
    try:
        waiting = await client.pushes(wait_s=0)
    except PhoneError as exc:
        if exc.status == 404 and exc.code == "not_found":
            raise SystemExit(_NO_FEED) from None
        raise
    me = await client.me()
    if me.get("pushProvider") in (None, "none") or me.get("pushTokenNeeded"):
        provider = "apns" if me.get("platform") == "ios" else "fcm"
        await client.register_push(provider, f"mssc-phone-{secrets.token_hex(16)}")
        _say(
            "Jeton de notification du simulateur enregistré : le serveur surveille vos boîtes "
            "d'ici une dizaine de secondes."
        )
    if not (await client.availability()).mail_push_now:
        _say(
            "Notifications de messagerie suspendues en ce moment (au cabinet, absent ou heures calmes) : "
            "choisissez « En visite » sur la page Disponibilité."
        )
    _say(f"En écoute des notifications de « {me.get('name')} »… (Ctrl-C pour arrêter)")
    return waiting


async def _listen(client: PhoneClient, args: argparse.Namespace) -> int:
    """Show pushes until ``--once`` is satisfied or ``--timeout`` runs out; how many were shown."""
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen: dict[str, None] = {}  # insertion-ordered: the oldest ids go first
    shown = 0
    batch = await _prepare(client)
    while True:
        for push in batch:
            event_id = str(push.payload.get("eventId", push.push_id))
            if event_id in seen:
                continue  # at-least-once delivery: the same event twice is shown once
            seen[event_id] = None
            if len(seen) > SEEN_MAX:
                del seen[next(iter(seen))]
            await _show_push(client, push, args.profile)
            shown += 1
            if args.once:
                client.state.push_cursor = push.cursor  # the next run starts right after this one
                return shown
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return shown
        try:
            batch = await client.pushes(wait_s=FEED_WAIT_S if remaining is None else min(FEED_WAIT_S, remaining))
        except httpx.TransportError:
            print("Serveur injoignable : nouvel essai dans 2 s…", file=sys.stderr, flush=True)
            batch = []
            await asyncio.sleep(2)


async def listen(args: argparse.Namespace) -> None:
    """``mssc-phone listen``: the device simulator's notifications (demo server only)."""
    if args.timeout is not None and args.timeout <= 0:
        raise SystemExit("--timeout doit être positif.")
    client = load(args.profile)
    wiped = False
    try:
        shown = await _listen(client, args)
    except _WipedError:
        wiped = True
        raise SystemExit(3) from None
    except PhoneError as exc:
        if not exc.problem.get("wipe"):
            raise
        wiped = True
        await _forget(client, args.profile)
        _say("Cet appareil a été révoqué : clés, jetons et profil effacés.")
        raise SystemExit(3) from None
    finally:
        if not wiped:
            save(client, args.profile)  # refreshed tokens and the feed's cursor, Ctrl-C included
        await client.aclose()
    if args.once and shown == 0:
        raise SystemExit(f"Aucune notification reçue en {args.timeout:g} s.")


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
    p = sub.add_parser("listen", help="receive this phone's notifications (demo server), then fetch the content")
    p.add_argument("--once", action="store_true", help="stop after the first notification")
    p.add_argument("--timeout", type=float, help="stop listening after this many seconds")
    return parser.parse_args(argv)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
    "enrol": enrol,
    "inbox": inbox,
    "read": read,
    "save": save_attachment,
    "receipt": receipt,
    "send": send,
    "listen": listen,
}


async def run(args: argparse.Namespace) -> None:
    """One command, in the caller's event loop."""
    command = COMMANDS.get(args.command)
    await (command(args) if command is not None else show(args, args.command))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        # Ctrl-C is how ``listen`` ends (it saved its tokens and cursor on the way out): no traceback
        listening = args.command == "listen"
        print("\nÉcoute arrêtée." if listening else "\nInterrompu.", file=sys.stderr)
        raise SystemExit(0 if listening else 130) from None
    except PhoneError as exc:
        print(
            f"erreur {exc.status} {exc.code} : {exc.problem.get('detail') or exc.problem.get('title')}", file=sys.stderr
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
