"""The operator's call-out on delivery: ``POST`` (or ``PUT``) ``/operator/webhook/new-mail``.

Operators that can call out when they deliver a message tell the companion at once, so no IMAP
IDLE session is needed for them (``MSSC_WATCHER_MODE=webhook``). Dovecot does it with its
``push_notification`` plugin, OX driver::

    protocol lmtp {
      mail_plugins = $mail_plugins notify push_notification
    }
    plugin {
      push_notification_driver = ox:url=https://<user>:<password>@<companion>/operator/webhook/new-mail
    }

The credentials in the URL travel as HTTP Basic auth and must be ``MSSC_WATCHER_WEBHOOK_USER`` /
``MSSC_WATCHER_WEBHOOK_PASSWORD`` (compared in constant time). The OX driver sends ``PUT`` (both
methods are accepted), and notifies a mailbox only once its METADATA key is set, e.g.
``doveadm mailbox metadata set -u <address> -s "" /private/vendor/vendor.dovecot/http-notify
user=<address>``. A Lua driver script may post the same JSON with the identifiers only.

Read from the body: ``user`` (the mailbox address, mapped to the companion's mailbox id),
``folder``, ``imap-uidvalidity``, ``imap-uid`` and ``unseen``. The OX driver also sends ``from``,
``subject`` and ``snippet``: message content, which is never read into anything, kept or logged
(the body is decoded into a struct without those fields). Serve this URL over HTTPS.

Answers: ``204`` when announced, and also when ignored (another folder than INBOX, an address that
is not a companion mailbox: the operator learns nothing about who is enrolled); ``401`` for missing
or wrong credentials; ``400`` for a malformed body; ``404`` when this instance is not in webhook mode.
The announcement itself (``mail.arrived`` on the durable queue, once per message) is the watcher's
(:meth:`push.watcher.Watcher.operator_notified`), handed in as the ``watcher`` dependency.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated, Any, Final, Protocol, runtime_checkable

import msgspec
from litestar import Request, Response, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Mailbox
from core.logging import get_logger
from core.settings import Settings

log = get_logger("mssc.webhook")

WEBHOOK_PATH: Final = "/operator/webhook/new-mail"
#: A notification is a few hundred bytes (the OX driver's snippet is short).
MAX_BODY: Final = 16 * 1024
_REALM: Final = 'Basic realm="mss-companion operator webhook", charset="UTF-8"'

Uid = Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]


@runtime_checkable  # Litestar checks injected values against the annotation
class NewMailSink(Protocol):
    """Who announces what the operator notified (the watcher)."""

    async def operator_notified(self, mailbox_id: str, *, uidvalidity: int, uid: int, unseen: int | None) -> bool: ...


class OperatorNotification(msgspec.Struct, kw_only=True):
    """The identifiers of a Dovecot OX-driver notification; its content fields are not decoded."""

    user: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    event: str = "messageNew"
    folder: str = "INBOX"
    uidvalidity: Uid = msgspec.field(name="imap-uidvalidity")
    uid: Uid = msgspec.field(name="imap-uid")
    unseen: Annotated[int, msgspec.Meta(ge=0)] | None = None


_decoder = msgspec.json.Decoder(OperatorNotification)


def credentials_match(authorization: str | None, *, user: str, password: str) -> bool:
    """HTTP Basic ``authorization`` carries exactly ``user`` and ``password`` (constant time).
    Never true when no password is configured."""
    if not user or not password or not authorization:
        return False
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_user, colon, given_password = decoded.partition(b":")
    if not colon:
        return False
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return user_ok and password_ok


def parse_notification(body: bytes) -> OperatorNotification | None:
    """The identifiers of a notification, or ``None`` when the body is not one."""
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


async def mailbox_id_for(db: Database, address: str) -> str | None:
    async with db.read() as session:
        found = await session.scalar(select(Mailbox.id).where(Mailbox.address == address.strip().lower()))
    return None if found is None else str(found)


@route(
    WEBHOOK_PATH,
    http_method=[HttpMethod.POST, HttpMethod.PUT],
    status_code=204,
    include_in_schema=False,
    request_max_body_size=MAX_BODY,
)
async def operator_new_mail(
    request: Request[Any, Any, Any],
    settings: NamedDependency[Settings],
    db: NamedDependency[Database],
    watcher: NamedDependency[NewMailSink],
) -> Response[None]:
    """A message was delivered (the operator says): announce it once."""
    config = settings.watcher
    if config.mode != "webhook":
        return Response(None, status_code=404)
    if not credentials_match(
        request.headers.get("authorization"), user=config.webhook_user, password=config.webhook_password
    ):
        log.warning("webhook.unauthorized", client=request.client.host if request.client else None)
        return Response(None, status_code=401, headers={"WWW-Authenticate": _REALM})
    notification = parse_notification(await request.body())
    if notification is None:
        return Response(None, status_code=400)
    if notification.event != "messageNew" or notification.folder != "INBOX":
        return Response(None, status_code=204)
    mailbox_id = await mailbox_id_for(db, notification.user)
    if mailbox_id is None:
        log.info("webhook.unknown_mailbox")
        return Response(None, status_code=204)
    await watcher.operator_notified(
        mailbox_id, uidvalidity=notification.uidvalidity, uid=notification.uid, unseen=notification.unseen
    )
    return Response(None, status_code=204)
