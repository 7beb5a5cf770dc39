"""One contact's whole story for `sopbot contact NAME`: tags with evidence, tier and its
history, orders, referrals, events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session

from bot.store.models import Contact, ContactEvent, ContactTag, Order, Referral, ReferralCode, Tag, TierChange


@dataclass(frozen=True)
class TagLine:
    name: str
    source: str
    evidence: str | None
    ref: str | None
    added_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Profile:
    contact: Contact
    tags: list[TagLine]
    history: list[TierChange]
    orders: list[Order]
    brought: list[tuple[Referral, str]]  # referral, the referred person's name or key
    brought_by: list[tuple[Referral, str]]
    events: list[ContactEvent]
    code: str | None


MAX_NEEDLE = 200  # characters; WeChat names and remarks are far shorter


def find(session: Session, needle: str, account: str | None = None) -> list[Contact]:
    """Exact wxid, name or remark first; else names containing the text (`%` and `_` are
    plain characters here, not wildcards)."""
    base = select(Contact).order_by(Contact.id)
    if account:
        base = base.where(Contact.account_id == account)
    exact = list(
        session.execute(
            base.where(or_(Contact.wxid == needle, Contact.name == needle, Contact.alias == needle))
        ).scalars()
    )
    if exact:
        return exact
    if len(needle) > MAX_NEEDLE:
        return []  # no name or remark is that long
    matches = or_(
        Contact.name.contains(needle, autoescape=True), Contact.alias.contains(needle, autoescape=True)
    )
    return list(session.execute(base.where(matches)).scalars())


def load(session: Session, contact: Contact) -> Profile:
    cid = contact.id
    tags = [
        TagLine(name, row.source, row.evidence, row.evidence_ref, row.added_at, row.expires_at)
        for row, name in session.execute(
            select(ContactTag, Tag.name).join(Tag, Tag.id == ContactTag.tag_id).where(ContactTag.contact_id == cid)
            .order_by(ContactTag.added_at, Tag.name)
        )
    ]  # fmt: skip
    history = list(
        session.execute(
            select(TierChange).where(TierChange.contact_id == cid).order_by(TierChange.id)
        ).scalars()
    )
    orders = list(
        session.execute(select(Order).where(Order.contact_id == cid).order_by(Order.ordered_at)).scalars()
    )
    out_rows = list(
        session.execute(select(Referral).where(Referral.referrer_id == cid).order_by(Referral.id)).scalars()
    )
    in_rows = list(
        session.execute(select(Referral).where(Referral.referred_id == cid).order_by(Referral.id)).scalars()
    )
    wanted = {r.referred_id for r in out_rows if r.referred_id} | {r.referrer_id for r in in_rows}
    names = (
        dict(session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(wanted))).all())
        if wanted
        else {}
    )
    brought = [
        (r, names.get(r.referred_id, r.referred_key) if r.referred_id else r.referred_key) for r in out_rows
    ]
    brought_by = [(r, names.get(r.referrer_id, str(r.referrer_id))) for r in in_rows]
    events = list(
        session.execute(
            select(ContactEvent)
            .where(ContactEvent.contact_id == cid)
            .order_by(ContactEvent.at, ContactEvent.id)
        ).scalars()
    )
    code = session.execute(
        select(ReferralCode.code).where(ReferralCode.contact_id == cid)
    ).scalar_one_or_none()
    return Profile(contact, tags, history, orders, brought, brought_by, events, code)
