"""Dev-only routes: the device simulator's push feed and the page of the pushes sent (demo).

``GET /api/v1/dev/pushes`` plays APNs/FCM for ``mssc-phone listen``: it long-polls the dev sink for
the calling device's pushes only, with the same device token and DPoP proof as every phone call.
``/dev/notifications`` shows a logged-in professional the pushes sent to their own devices, payload
as sent, so the demo shows that nothing but ids and counts goes out; its button drops a demo message
into their own mailbox at the sandbox operator. Both are mounted only with the sink (see
``backend.dev``) and left out of the OpenAPI contract; they read the sink of this process, which is
where the pushes are in the one-process demo.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import smtplib
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from litestar import Request, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from backend.alerts.availability import AvailabilityService
from backend.dev.demo_message import DEMO_SENDER, demo_message
from backend.dev.push_feed import device_feed
from backend.device_auth import DeviceAuthenticator
from backend.mail.sandbox_operator import SandboxOperator, SandboxOperatorError
from contracts.errors import ErrorCode
from contracts.push import GENERIC_TEXT_FR, AlertClass, LocKey
from contracts.push_feed import MAX_FEED_WAIT_S, FeedCursor, PushFeed
from core.db.engine import Database
from core.db.models import Mailbox, MailboxKind
from core.device_registry import DeviceRegistry
from core.errors import DomainError
from core.logging import get_logger
from core.settings import Settings
from enrolment.web.deps import checked_form, page, require_web
from enrolment.web.sessions import SessionStore
from push.providers.sink import SinkProvider, SinkRecord
from push.watcher import Watcher

log = get_logger("mssc.dev")

#: Rows on the page: the newest pushes of the professional's devices.
PAGE_ROWS: Final = 100
PARIS: Final = ZoneInfo("Europe/Paris")
CLASS_LABELS: Final = {
    AlertClass.MAIL: "Messagerie",
    AlertClass.VISIT_ALERT: "Alerte de visite",
    AlertClass.ONCALL_ALERT: "Alerte de garde",
    AlertClass.WIPE: "Effacement à distance",
}
KIND_LABELS: Final = {"alert": "affichée", "background": "silencieuse"}
PRIORITY_LABELS: Final = {"high": "haute", "normal": "normale"}
FLASHES: Final = {
    "depose": "Message de démonstration déposé dans votre boîte nominative : la notification arrive "
    "sur vos téléphones en quelques secondes."
}


def _sink_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Before anything else (login, token, query): 404, as for any unknown path, when pushes really
    go out. ``create_app`` mounts these routes only with the sink; this holds if it did anyway."""
    if connection.app.state.container.providers.sink is None:
        raise NotFoundException()


def _sink(state: State) -> SinkProvider:
    sink: SinkProvider = state.container.providers.sink
    return sink


# the device simulator's feed ------------------------------------------------------------------------


@get("/dev/pushes", include_in_schema=False)
async def push_feed(
    request: Request[Any, Any, Any],
    sink: NamedDependency[SinkProvider],
    authenticator: NamedDependency[DeviceAuthenticator],
    after: Annotated[FeedCursor | None, QueryParameter(max_length=64)] = None,
    wait: Annotated[float, QueryParameter(ge=0, le=MAX_FEED_WAIT_S)] = 0,
) -> PushFeed:
    """Dev only: the pushes sent to the calling device after ``after``, waiting up to ``wait`` s for one."""
    device = await authenticator.authenticate(request)
    return await device_feed(sink, device.device_id, after=after, wait_s=wait)


dev_api_router = Router(
    path="/api/v1",
    route_handlers=[push_feed],
    dependencies={"sink": Provide(_sink, sync_to_thread=False)},
    guards=[_sink_only],
    include_in_schema=False,
)


# the page of sent pushes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushRow:
    """One sent push as the page shows it: the device's name is ours, the rest is what was sent."""

    device: str
    alert_class: str
    shown_text: str
    at: str
    kind: str
    priority: str
    payload_json: str


def _row(record: SinkRecord, device_name: str) -> PushRow:
    loc_key = record.payload.get("locKey")
    return PushRow(
        device=device_name,
        alert_class=CLASS_LABELS.get(record.alert_class, str(record.alert_class)),
        shown_text=GENERIC_TEXT_FR[LocKey(loc_key)] if loc_key in set(LocKey) else "(rien : silencieuse)",
        at=dt.datetime.fromtimestamp(record.at, PARIS).strftime("%d/%m/%Y %H:%M:%S"),
        kind=KIND_LABELS.get(record.kind.value, record.kind.value),
        priority=PRIORITY_LABELS.get(record.priority.value, record.priority.value),
        payload_json=json.dumps(record.payload, ensure_ascii=False, sort_keys=True),
    )


async def _nominative_mailbox(db: Database, professional_id: uuid.UUID) -> Mailbox | None:
    async with db.read() as session:
        found: Mailbox | None = await session.scalar(
            select(Mailbox)
            .where(Mailbox.professional_id == professional_id, Mailbox.kind == MailboxKind.NOMINATIVE)
            .order_by(Mailbox.created_at)
            .limit(1)
        )
        return found


def _sandbox_operator(request: Request[Any, Any, Any]) -> SandboxOperator | None:
    sandbox = getattr(request.app.state, "sandbox_operator", None)
    return sandbox if isinstance(sandbox, SandboxOperator) and sandbox.running else None


@get("/dev/notifications", name="dev_notifications")
async def notifications_page(
    request: Request[Any, Any, Any],
    sink: NamedDependency[SinkProvider],
    sessions: NamedDependency[SessionStore],
    devices: NamedDependency[DeviceRegistry],
    db: NamedDependency[Database],
    availability: NamedDependency[AvailabilityService],
    watcher: NamedDependency[Watcher],
    settings: NamedDependency[Settings],
) -> Template:
    web = await require_web(request, sessions)
    me = uuid.UUID(web.professional_id or "")
    # revoked devices too: their last push is the wipe
    names = {str(d.id): d.name for d in await devices.of_professional(me, include_revoked=True)}
    records = [r for r in reversed(sink.records()) if r.device_id in names][:PAGE_ROWS]
    mailbox = await _nominative_mailbox(db, me)
    # whether this process's watcher idles on the mailbox (None: it runs elsewhere, or not in IDLE)
    idling_here = "watcher" in settings.app.roles and watcher.settings.mode == "idle"
    watched = (mailbox is not None and str(mailbox.id) in watcher.watching) if idling_here else None
    return page(
        "dev_notifications.html",
        web,
        nav="devices",
        rows=[_row(r, names[r.device_id]) for r in records],
        can_deposit=mailbox is not None and _sandbox_operator(request) is not None,
        mail_push_now=bool(await availability.push_allowed(me, "mail")),
        watched=watched,
        flash=FLASHES.get(request.query_params.get("ok", "")),
    )


@post("/dev/notifications/message-demo", status_code=303)
async def deposit_demo_message(
    request: Request[Any, Any, Any],
    sessions: NamedDependency[SessionStore],
    db: NamedDependency[Database],
) -> Redirect:
    """Deliver the demo message to the professional's own mailbox through the sandbox's LMTP."""
    web = await require_web(request, sessions)
    await checked_form(request, web)
    sandbox = _sandbox_operator(request)
    if sandbox is None:
        raise NotFoundException()
    mailbox = await _nominative_mailbox(db, uuid.UUID(web.professional_id or ""))
    if mailbox is None:
        raise DomainError(ErrorCode.MAILBOX_NOT_FOUND, "no nominative mailbox")
    raw = demo_message(to_address=mailbox.address, to_name=web.display_name or mailbox.display_name)
    try:
        await asyncio.to_thread(sandbox.deliver, mailbox.address, raw, envelope_from=DEMO_SENDER)
    except (OSError, smtplib.SMTPException, SandboxOperatorError) as exc:
        # the exception text may quote the server's reply (an address): its type only
        log.warning("dev.demo_message_failed", mailbox_id=str(mailbox.id), error=type(exc).__name__)
        raise DomainError(ErrorCode.OPERATOR_UNAVAILABLE, "the sandbox operator did not take the message") from None
    log.info("dev.demo_message_delivered", mailbox_id=str(mailbox.id))
    return Redirect("/dev/notifications?ok=depose", status_code=303)


dev_web_router = Router(
    path="/",
    route_handlers=[notifications_page, deposit_demo_message],
    dependencies={"sink": Provide(_sink, sync_to_thread=False)},
    guards=[_sink_only],
    include_in_schema=False,
)
