"""Copying tags and tiers to the contact's WeChat tags (where the transport can): a reaction
lane of every account's pipeline, fed the contact events after their commit.

Tier tags carry the tier's display name (`复购会员`). The mirror notes the tier tag it put
on WeChat as a `mirror` tag (events with `ref = "mirror"`, history only), so the next
contact sync does not mistake it for an operator's own tier tag (which counts as a floor).
Events that came from WeChat itself (its tags at a sync) are not copied back."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from bot.clock import Clock
from bot.events import HISTORY_ONLY_REFS, MIRROR_REF, ContactEventKind, ContactEventRecorded, Outcome
from bot.signals import taglib
from bot.signals.tiers import TierPolicy
from bot.store import Database
from bot.store.eventlog import EventLog
from bot.store.models import Contact, TierChange
from bot.wechat.transport import Transport, TransportError

log = logging.getLogger("bot.signals.mirror")
SOURCE = "mirror"
FROM_WECHAT = "wechat"  # the ref of tag events a contact sync recorded


class TagMirror:
    def __init__(self, transport: Transport, database: Database, clock: Clock, policy: TierPolicy) -> None:
        self.transport = transport
        self.database = database
        self.clock = clock
        self.policy = policy

    @property
    def able(self) -> bool:
        return "tags" in self.transport.capabilities

    async def on_event(self, event: ContactEventRecorded) -> Outcome | None:
        if not self.able or not event.detail or event.ref in HISTORY_ONLY_REFS:
            return None
        tag_event = event.kind in (ContactEventKind.TAG_ADDED, ContactEventKind.TAG_REMOVED)
        if (tag_event and event.ref == FROM_WECHAT) or not (tag_event or event.kind == ContactEventKind.TIER_CHANGED):
            return None
        wxid, old_tier = await asyncio.to_thread(self._look_up, event)
        if wxid is None:
            return None
        try:
            if event.kind == ContactEventKind.TAG_ADDED:
                await self.transport.add_tag(wxid, event.detail)
            elif event.kind == ContactEventKind.TAG_REMOVED:
                await self.transport.remove_tag(wxid, event.detail)
            else:
                if old_tier:
                    await self.transport.remove_tag(wxid, self.policy.name(old_tier))
                await self.transport.add_tag(wxid, self.policy.name(event.detail))
                return await asyncio.to_thread(self._note, event.contact_id, old_tier, event.detail)
        except TransportError as error:
            log.warning("could not mirror %s %s to WeChat for %s: %s", event.kind, event.detail, wxid, error)
        return None

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

    def _note(self, contact_id: int, old_tier: str | None, new_tier: str) -> Outcome:
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session)
            if old_tier:
                taglib.remove_tag(
                    session, events, contact_id, self.policy.name(old_tier), now=now, ref=MIRROR_REF, source=SOURCE
                )
            taglib.add_tag(
                session, events, contact_id, self.policy.name(new_tier), source=SOURCE, now=now,
                evidence="层级同步", evidence_ref=MIRROR_REF,
            )  # fmt: skip
            events.flush()
        return Outcome(events.events)
