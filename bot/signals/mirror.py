"""Copying tags and tiers to the contact's WeChat tags (where the transport can).

Tier tags carry the tier's display name (`复购会员`). The mirror notes the tier tag it put
on WeChat as a `mirror` tag, so the next contact sync does not mistake it for an
operator's own tier tag (which counts as a floor)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from bot.clock import Clock
from bot.events import ContactEventKind, ContactEventRecorded
from bot.signals.tiers import TierPolicy
from bot.store import Database
from bot.store import directory as d
from bot.store.models import Contact, TierChange
from bot.wechat.transport import Transport, TransportError

log = logging.getLogger("bot.signals.mirror")
SOURCE = "mirror"


class TagMirror:
    def __init__(self, transport: Transport, database: Database, clock: Clock, policy: TierPolicy) -> None:
        self.transport = transport
        self.database = database
        self.clock = clock
        self.policy = policy

    @property
    def able(self) -> bool:
        return "tags" in self.transport.capabilities

    async def on_event(self, event: ContactEventRecorded) -> None:
        if not self.able or event.kind not in (
            ContactEventKind.TAG_ADDED,
            ContactEventKind.TAG_REMOVED,
            ContactEventKind.TIER_CHANGED,
        ):
            return
        wxid, old_tier = await asyncio.to_thread(self._look_up, event)
        if wxid is None:
            return
        try:
            if event.kind == ContactEventKind.TAG_ADDED and event.detail:
                await self.transport.add_tag(wxid, event.detail)
            elif event.kind == ContactEventKind.TAG_REMOVED and event.detail:
                await self.transport.remove_tag(wxid, event.detail)
            elif event.kind == ContactEventKind.TIER_CHANGED and event.detail:
                if old_tier:
                    await self.transport.remove_tag(wxid, self.policy.name(old_tier))
                await self.transport.add_tag(wxid, self.policy.name(event.detail))
                await asyncio.to_thread(self._note, event.contact_id, old_tier, event.detail)
        except TransportError as error:
            log.warning("could not mirror %s %s to WeChat for %s: %s", event.kind, event.detail, wxid, error)

    def _look_up(self, event: ContactEventRecorded) -> tuple[str | None, str | None]:
        with self.database.session(read_only=True) as session:
            wxid = session.execute(
                select(Contact.wxid).where(Contact.id == event.contact_id)
            ).scalar_one_or_none()
            old = None
            if event.kind == ContactEventKind.TIER_CHANGED:
                old = session.execute(
                    select(TierChange.from_tier)
                    .where(TierChange.contact_id == event.contact_id, TierChange.to_tier == event.detail)
                    .order_by(TierChange.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
        return wxid, old

    def _note(self, contact_id: int, old_tier: str | None, new_tier: str) -> None:
        from bot.signals.eventlog import EventLog
        from bot.signals.taglib import remove_tag

        now = self.clock.now()
        with self.database.session() as session:
            if old_tier:
                remove_tag(
                    session, EventLog(session), contact_id, self.policy.name(old_tier), now=now, source=SOURCE
                )
            d.tag_contact(
                session, contact_id, self.policy.name(new_tier), source=SOURCE, now=now, evidence="层级同步"
            )
