"""The signal engine: each entry point is one unit of work (one transaction) that records
a signal, updates tags, referrals and tiers, and returns the contact events to publish
once the transaction has committed.

The daemon's signals stage and services call it for transport events and webhook orders;
`sopbot import-orders` calls it directly (its events are relayed by the daemon)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from bot.clock import Clock
from bot.config.settings import Settings
from bot.events import ContactEventKind, ContactEventRecorded, Outcome
from bot.orders.model import PAID, OrderIn
from bot.orders.store import SaveOutcome, link_orphans, relink_all, save_order
from bot.people.importer import ProfileRow
from bot.render import Renderer
from bot.signals import imported_profiles, purchases, referrals, taglib
from bot.signals.conversation import Conversation, Said
from bot.signals.matcher import MATCH_CHARS, Matcher, Where
from bot.signals.rules import TagsFile, load_tags
from bot.signals.tiers import TierPolicy, recompute
from bot.signals.tiers_ladder import TierLadder
from bot.store import Database
from bot.store.eventlog import EventLog
from bot.store.models import Contact, Order, Room
from bot.text import excerpt
from bot.wechat.types import Message


@dataclass
class OrderReport:
    """What an import or a webhook delivery did, per outcome."""

    outcomes: dict[str, int] = field(default_factory=dict)
    events: list[ContactEventRecorded] = field(default_factory=list)
    unknown_buyers: int = 0

    def count(self, outcome: SaveOutcome) -> int:
        return self.outcomes.get(outcome.value, 0)


@dataclass
class ProfileReport:
    """What `sopbot import-contacts` did: contacts found and changed, rows kept for people
    who are no contact yet, and rows that name nobody for sure."""

    matched_rows: int = 0
    contacts_changed: int = 0
    contacts_unchanged: int = 0
    pending: int = 0  # rows kept until their person appears (new or changed)
    pending_unchanged: int = 0
    ambiguous: list[tuple[str, str]] = field(default_factory=list)  # (file:LINE, why)
    events: list[ContactEventRecorded] = field(default_factory=list)


class SignalEngine:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        clock: Clock,
        *,
        tags: TagsFile | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.tz: tzinfo = settings.tz
        self.policy = TierPolicy.from_settings(settings.tiers)
        self.tags = tags if tags is not None else load_tags(settings.sop_path, settings.base_dir)
        self.matcher = Matcher(self.tags.rules)
        self.renderer = (
            renderer if renderer is not None else _renderer(settings.templates_path, self.policy.ladder)
        )
        self.conversation = Conversation(
            self.matcher,
            self.renderer,
            self._reply_context,
            reply_max_age=timedelta(seconds=settings.delivery.reply_max_age),
        )
        self._talk = threading.Lock()  # the conversation keeps a unit's pending hits

    # -- conversation ----------------------------------------------------------------

    def said(self, session: Session, account_id: str, message: Message) -> Said | None:
        contact_id = session.execute(
            select(Contact.id).where(Contact.account_id == account_id, Contact.wxid == message.talker.wxid)
        ).scalar_one_or_none()
        if contact_id is None:
            return None
        where, room_id = Where(), None
        if message.room is not None:
            room = session.execute(
                select(Room.id, Room.group_type, Room.topic).where(
                    Room.account_id == account_id, Room.room_wxid == message.room.room_wxid
                )
            ).first()
            room_id = room[0] if room else None
            where = Where(True, room[1] if room else None, room[2] if room else message.room.topic)
        return Said(
            account_id, int(contact_id), message.msg_id, message.text[:MATCH_CHARS], message.sent_at, where, room_id,
            message.talker.wxid,
        )  # fmt: skip

    def on_messages(self, account_id: str, messages: Sequence[Message]) -> Outcome:
        """Rules for messages the recorder has stored; then the talkers' tiers."""
        now = self.clock.now()
        with self._talk, self.database.session() as session:
            self.conversation.reset()
            events = EventLog(session)
            touched: list[int] = []
            for message in messages:
                said = self.said(session, account_id, message)
                if said is None or not said.text:
                    continue
                self.conversation.apply(session, events, said, now)
                touched.append(said.contact_id)
            planned = self.conversation.planned
            self.conversation.flush(session)
            last = excerpt(messages[-1].text) if messages else ""
            self.after_talk(session, events, touched, f"消息「{last}」")
        return Outcome(events.events, planned)

    def apply_said(self, session: Session, events: EventLog, items: Iterable[Said]) -> list[int]:
        """Lower-level: rules for already-resolved messages in the caller's transaction."""
        now = self.clock.now()
        touched = []
        items = list(items)
        self.conversation.reset()
        self.conversation.prefetch(session, items)
        for said in items:
            self.conversation.apply(session, events, said, now)
            touched.append(said.contact_id)
        self.conversation.flush(session)
        return touched

    # -- orders ------------------------------------------------------------------------

    def ingest_orders(self, orders: Sequence[OrderIn], *, source: str, relay: bool = False) -> OrderReport:
        """Store orders (idempotent on the order id) and everything that follows."""
        report = OrderReport()
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session, relay=relay)
            touched: list[int] = []
            causes: dict[int, str] = {}  # contact → its own order in this import (the evidence)
            for order in orders:
                outcome, stored = save_order(session, order, source=source, now=now)
                report.outcomes[outcome.value] = report.outcomes.get(outcome.value, 0) + 1
                if stored.contact_id is None and outcome == SaveOutcome.NEW:
                    report.unknown_buyers += 1
                moved = self._after_order(session, events, order, stored, outcome)
                causes.update(dict.fromkeys(moved, order.order_id))
                touched += moved
            self._settle(session, events, touched, "订单", relay=relay, causes=causes)
        report.events = events.events
        return report

    def _after_order(
        self, session: Session, events: EventLog, order: OrderIn, stored: Order, outcome: SaveOutcome
    ) -> list[int]:
        touched: list[int] = []
        if outcome == SaveOutcome.NEW and order.referrer:
            referrer = referrals.resolve_referrer(
                session, order.referrer, self.tags.referrals.code_pattern, order.account
            )
            if referrer is not None:
                key = (order.buyer_keys() or [f"order:{order.order_id}"])[0]
                referrals.record(
                    session, referrer, key, via="order", now=order.ordered_at, referred_id=stored.contact_id,
                    ref=order.order_id,
                )  # fmt: skip
        if outcome == SaveOutcome.NEW and stored.status == PAID:
            touched += self._purchased(session, events, [stored], buyer_keys=order.buyer_keys())
        elif outcome == SaveOutcome.REFUNDED:
            touched += referrals.unconvert(session, stored.order_id)
        if (
            stored.contact_id is not None
            and outcome != SaveOutcome.UNCHANGED
            and outcome != SaveOutcome.IGNORED
        ):
            touched.append(stored.contact_id)
        return touched

    def _purchased(
        self, session: Session, events: EventLog, orders: Sequence[Order], buyer_keys: Sequence[str] = ()
    ) -> list[int]:
        """Purchase events and referral conversions for newly known paid orders."""
        touched: list[int] = []
        for order in orders:
            if order.contact_id is not None:
                paid = purchases.paid_orders(session, order.contact_id)
                at = order.ordered_at or self.clock.now()
                if paid and paid[0].order_id == order.order_id:
                    events.record(order.contact_id, ContactEventKind.FIRST_PURCHASE, at, ref=order.order_id)
                amount = f"{order.amount_cents / 100:.2f}"
                events.record(
                    order.contact_id, ContactEventKind.PURCHASE, at, detail=amount, ref=order.order_id
                )
            touched += referrals.convert(
                session, events, buyer_id=order.contact_id, buyer_keys=buyer_keys, order_id=order.order_id,
                ordered_at=order.ordered_at or self.clock.now(),
            )  # fmt: skip
        return touched

    # -- profiles ----------------------------------------------------------------------

    def ingest_profiles(self, rows: Sequence[ProfileRow], *, relay: bool = False) -> ProfileReport:
        """Imported profile rows onto the contacts they name (several rows for one contact
        are merged, the later winning); the others wait for their person."""
        report = ProfileReport()
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session, relay=relay)
            planned: dict[int, tuple[Contact, ProfileRow]] = {}
            for row in rows:
                try:
                    found = imported_profiles.find_contacts(session, row)
                except imported_profiles.Ambiguous as error:
                    report.ambiguous.append((row.where, str(error)))
                    continue
                if not found:
                    if imported_profiles.save_pending(session, row, now):
                        report.pending += 1
                    else:
                        report.pending_unchanged += 1
                    continue
                report.matched_rows += 1
                for contact in found:
                    earlier = planned.get(contact.id or 0)
                    planned[contact.id or 0] = (contact, earlier[1].merged(row) if earlier else row)
            touched = [
                contact_id
                for contact_id, (contact, row) in planned.items()
                if imported_profiles.apply_profile(session, events, contact, row, now)
            ]
            report.contacts_changed = len(touched)
            report.contacts_unchanged = len(planned) - len(touched)
            self._settle(session, events, touched, "导入资料", purchase_tags=False)
        report.events = events.events
        return report

    # -- contacts appearing, spreading -----------------------------------------------------

    def on_contacts_seen(self, contact_ids: Sequence[int] | None = None) -> list[ContactEventRecorded]:
        """Orders of unknown buyers that now match a contact are linked (None: check all)."""
        with self.database.session() as session:
            events = EventLog(session)
            linked = relink_all(session) if contact_ids is None else link_orphans(session, contact_ids)
            profiled = imported_profiles.link_pending(session, events, contact_ids, self.clock.now())
            if not linked and not profiled:
                return []
            touched = self._purchased(session, events, [o for o in linked if o.status == PAID])
            touched += [o.contact_id for o in linked if o.contact_id is not None] + profiled
            self._settle(session, events, touched, "关联订单")
        return events.events

    def on_friend_added(self, account_id: str, wxid: str, hello: str) -> list[ContactEventRecorded]:
        """A referral code in the greeting; orders this new friend made before."""
        with self.database.session() as session:
            events = EventLog(session)
            contact_id = _contact_id(session, account_id, wxid)
            if contact_id is None:
                return []
            touched = [contact_id]
            found = self._referral_in(session, hello)
            if found is not None:
                referrer, code = found
                referrals.record(
                    session, referrer, f"wxid:{wxid}", via="code", now=self.clock.now(), referred_id=contact_id,
                    ref=f"code:{code}",
                )  # fmt: skip
            linked = link_orphans(session, [contact_id])
            touched += self._purchased(session, events, [o for o in linked if o.status == PAID])
            imported_profiles.link_pending(session, events, [contact_id], self.clock.now())
            self._settle(session, events, touched, "新好友")
        return events.events

    def referrer_in(self, session: Session, hello: str) -> int | None:
        """The contact whose referral code a greeting carries (None: no code, or nobody's);
        the recorder's test for a new friend's source `referral`."""
        found = self._referral_in(session, hello)
        return found[0] if found is not None else None

    def _referral_in(self, session: Session, hello: str) -> tuple[int, str] | None:
        pattern = self.tags.referrals.code_pattern
        code = referrals.find_code(pattern, hello) if hello else None
        referrer = referrals.resolve_referrer(session, code, pattern) if code else None
        return (referrer, code) if referrer is not None and code is not None else None

    def on_room_join(
        self, account_id: str, room_topic: str, invitee_wxids: Sequence[str], inviter_wxid: str | None
    ) -> list[ContactEventRecorded]:
        """The inviter brought the invitees in (unless the inviter is the account itself)."""
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session)
            inviter = _contact_id(session, account_id, inviter_wxid) if inviter_wxid else None
            invitees = [
                c for wxid in invitee_wxids if (c := _contact_id(session, account_id, wxid)) is not None
            ]
            if inviter is not None:
                for wxid, contact_id in zip(invitee_wxids, invitees, strict=False):
                    referrals.record(
                        session, inviter, f"wxid:{wxid}", via="room_invite", now=now, referred_id=contact_id,
                        ref=f"room:{room_topic}",
                    )  # fmt: skip
            linked = link_orphans(session, invitees)
            touched = invitees + self._purchased(session, events, [o for o in linked if o.status == PAID])
            imported_profiles.link_pending(session, events, invitees, now)
            self._settle(session, events, touched, "入群")
        return events.events

    # -- upkeep ----------------------------------------------------------------------------

    def sweep(self) -> list[ContactEventRecorded]:
        """Expired tags come off; the contacts concerned get their tiers recomputed."""
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session)
            taglib.expire_tags(session, events, now)
            touched = [e.contact_id for e in events.events]
            self._settle(session, events, touched, "标签到期", purchase_tags=False)
        return events.events

    def recompute_all(self, *, relay: bool = False, trigger: str = "重新计算") -> list[ContactEventRecorded]:
        now = self.clock.now()
        with self.database.session() as session:
            events = EventLog(session, relay=relay)
            recompute(session, self.policy, now, events, trigger=trigger)
            events.flush()
        return events.events

    def after_talk(self, session: Session, events: EventLog, touched: Sequence[int], trigger: str) -> None:
        """Tiers after messages: only for talkers whose tags changed or who sit at or
        below the deepest tier messages can reach."""
        tagged = {e.contact_id for e in events.events}
        ceiling = self.policy.message_ceiling
        rest = [c for c in dict.fromkeys(touched) if c not in tagged]
        low = {
            cid
            for start in range(0, len(rest), 1000)
            for cid, tier in session.connection().execute(
                select(Contact.id, Contact.tier).where(Contact.id.in_(rest[start : start + 1000]))
            )
            if tier not in self.policy.ladder.ids or self.policy.ladder.rank(tier) <= ceiling
        }
        self._settle(
            session, events, [c for c in touched if c in tagged or c in low], trigger, purchase_tags=False
        )

    def _settle(
        self,
        session: Session,
        events: EventLog,
        touched: Sequence[int],
        trigger: str,
        *,
        relay: bool = False,
        purchase_tags: bool = True,
        causes: Mapping[int, str] | None = None,
    ) -> None:
        contacts = list(dict.fromkeys(c for c in touched if c is not None))
        now = self.clock.now()
        if purchase_tags:
            for contact_id in contacts:
                purchases.refresh(session, events, self.tags.purchases, contact_id, now, self.tz)
        # each contact's move cites its own order or message, never the batch's last one
        for (cause, ref), ids in purchases.tier_causes(events.events, contacts, trigger, causes).items():
            recompute(session, self.policy, now, events, contact_ids=ids, trigger=cause, evidence_ref=ref)
        events.relay = relay or events.relay
        events.flush()

    def _reply_context(self, session: Session, contact: Contact) -> dict[str, object]:
        assert contact.id is not None
        return {
            "contact": {
                "name": contact.alias or contact.name,
                "tier": contact.tier,
                "tier_name": self.policy.name(contact.tier),
                "tags": taglib.live_tags(session, contact.id, self.clock.now()),
            },
            "referral_code": referrals.code_for(session, contact.id, self.clock.now()),
        }


def _contact_id(session: Session, account_id: str, wxid: str | None) -> int | None:
    if not wxid:
        return None
    found = session.execute(
        select(Contact.id).where(Contact.account_id == account_id, Contact.wxid == wxid)
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def _renderer(folder: Path, ladder: TierLadder) -> Renderer | None:
    """Reply templates; a tier's folder may be named by its id or its name (koc, 品牌KOC)."""
    return Renderer(folder, aliases=ladder.folder_aliases()) if folder.is_dir() else None
