"""Availability modes and quiet hours: who gets a phone push for what, right now.

=============  ======================  ===========================  ==============================
mode           mail                    visit alert                  on-call alert
=============  ======================  ===========================  ==============================
au_cabinet     no push                 no push (listed in the app)  time-sensitive if on the rota
en_visite      push, not in quiet h.   push                         time-sensitive if on the rota
de_garde       push, not in quiet h.   push                         time-sensitive
absent         no push                 no push                      time-sensitive if on the rota
=============  ======================  ===========================  ==============================

Choices:

* **Quiet hours silence mail only.** A visit alert is raised by a colleague (or the structure's
  software) for someone who said they are on visit: it is operational and rare, and a professional
  on visit at night is working. It is pushed normally (not time-sensitive) during quiet hours too.
* **The rota wins over the mode for on-call alerts**: whoever is on call now gets them, as
  time-sensitive pushes, whatever their mode or quiet hours ("absent" included: being on the rota
  is the stronger statement). ``de_garde`` without a shift counts as on call too. The titulaire or
  manager of the alert's structure, the last step of an escalation, gets them as well.
* Quiet hours are local times in the professional's time zone (Europe/Paris by default); a window
  whose start is after its end spans midnight (22:00 → 07:00); start equal to end means none.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from backend.alerts import members
from contracts.alerts import AvailabilityMode
from core.audit import AuditTrail
from core.db.engine import Database
from core.db.models import Availability, OnCallShift
from core.device_registry import Actor

#: What the push pipeline asks about: new mail, a visit alert, an on-call alert.
AlertClass = Literal["mail", "visit", "oncall"]
#: ``False``: no push; ``True``: a normal push; ``"time_sensitive"``: breaks through focus modes.
PushAllowed = bool | Literal["time_sensitive"]
TIME_SENSITIVE: Literal["time_sensitive"] = "time_sensitive"

PARIS = "Europe/Paris"
_WORKING = frozenset({AvailabilityMode.EN_VISITE, AvailabilityMode.DE_GARDE})


@dataclass(frozen=True, slots=True)
class AvailabilityState:
    professional_id: uuid.UUID
    mode: AvailabilityMode = AvailabilityMode.AU_CABINET
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    timezone: str = PARIS

    @property
    def quiet_hours(self) -> tuple[dt.time, dt.time] | None:
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return None
        return self.quiet_start, self.quiet_end

    def in_quiet_hours(self, now: dt.datetime) -> bool:
        window = self.quiet_hours
        if window is None:
            return False
        start, end = window
        local = now.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if start < end:
            return start <= local < end
        return local >= start or local < end  # spans midnight


def decide(state: AvailabilityState, alert_class: AlertClass, now: dt.datetime, *, on_call: bool) -> PushAllowed:
    """The table above, as a pure function. ``on_call``: on the rota now (or the escalation's manager)."""
    if alert_class == "oncall":
        return TIME_SENSITIVE if on_call or state.mode == AvailabilityMode.DE_GARDE else False
    if state.mode not in _WORKING:
        return False
    if alert_class == "visit":
        return True
    return not state.in_quiet_hours(now)


class AvailabilityService:
    def __init__(self, db: Database, audit: AuditTrail) -> None:
        self._db = db
        self._audit = audit

    async def get(self, professional_id: uuid.UUID) -> AvailabilityState:
        async with self._db.read() as session:
            row = await session.scalar(select(Availability).where(Availability.professional_id == professional_id))
        return _state(professional_id, row)

    async def get_many(self, professional_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, AvailabilityState]:
        """:meth:`get` for many at once (one query: the push pipeline decides for a whole batch)."""
        async with self._db.read() as session:
            rows = await session.scalars(select(Availability).where(Availability.professional_id.in_(professional_ids)))
            found = {row.professional_id: row for row in rows}
        return {p: _state(p, found.get(p)) for p in professional_ids}

    async def set(
        self,
        professional_id: uuid.UUID,
        *,
        mode: AvailabilityMode,
        quiet_hours: tuple[dt.time, dt.time] | None,
        actor: Actor,
        source: Literal["phone", "web"],
    ) -> AvailabilityState:
        async with self._db.transaction() as session:
            row = await session.scalar(
                select(Availability).where(Availability.professional_id == professional_id).with_for_update()
            )
            if row is None:
                row = Availability(professional_id=professional_id, timezone=PARIS)
                session.add(row)
            row.mode = mode
            row.quiet_start, row.quiet_end = quiet_hours if quiet_hours else (None, None)
            await session.flush()
            await self._audit.record(
                "availability.changed",
                actor=actor.idnat,
                device_id=actor.device_id,
                target=actor.idnat,
                details={"mode": str(mode), "quietHours": quiet_hours is not None, "source": source},
                session=session,
            )
        return _state(professional_id, row)

    async def on_call_now(
        self, professional_id: uuid.UUID, now: dt.datetime | None = None, *, structure_id: uuid.UUID | None = None
    ) -> bool:
        """On a rota right now (of ``structure_id``, or of any structure)."""
        at = now or dt.datetime.now(dt.UTC)
        query = select(OnCallShift.id).where(
            OnCallShift.professional_id == professional_id, OnCallShift.starts_at <= at, OnCallShift.ends_at > at
        )
        if structure_id is not None:
            query = query.where(OnCallShift.structure_id == structure_id)
        async with self._db.read() as session:
            return await session.scalar(query.limit(1)) is not None

    async def push_allowed(
        self,
        professional_id: uuid.UUID,
        alert_class: AlertClass,
        now: dt.datetime | None = None,
        *,
        structure_id: uuid.UUID | None = None,
    ) -> PushAllowed:
        """Whether (and how) to push ``alert_class`` to this professional now.

        ``structure_id`` (on-call alerts): the alert's structure, whose rota and managers count.
        """
        at = now or dt.datetime.now(dt.UTC)
        state = await self.get(professional_id)
        on_call = False
        if alert_class == "oncall":
            on_call = await self.on_call_now(professional_id, at, structure_id=structure_id)
            if not on_call and structure_id is not None:
                async with self._db.read() as session:
                    on_call = professional_id in await members.managers(session, structure_id)
        return decide(state, alert_class, at, on_call=on_call)


def _state(professional_id: uuid.UUID, row: Availability | None) -> AvailabilityState:
    if row is None:
        return AvailabilityState(professional_id)
    return AvailabilityState(
        professional_id,
        mode=AvailabilityMode(row.mode),
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        timezone=row.timezone or PARIS,
    )
