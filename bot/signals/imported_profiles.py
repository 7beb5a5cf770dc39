"""Applying imported profile rows to contacts, and keeping the rows of people who are no
contact yet until they appear.

Finding the contact (the rule `docs/contacts.md` states): the first of these that names
someone wins — 微信号 equal to the contact's wxid or 微信号; unionid; 手机号 (any way of
writing it); 备注, when exactly one contact of the account has it. Only contacts of the row's
`账号` when it names one; otherwise every account's contact who matches (a birthday is the
person's, whichever account knows them).

Applying never clears: an empty cell leaves the field as it was. A phone number or unionid
the contact has no value for is stored (so later orders find them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session

from bot.contact_fields import set_field
from bot.events import ContactEventKind
from bot.orders.store import contacts_by_phone
from bot.people.importer import ProfileRow
from bot.signals import taglib
from bot.store.eventlog import EventLog
from bot.store.models import Contact, PendingProfile
from bot.tables.values import normalize_phone

SOURCE = "import"


class Ambiguous(ValueError):
    """A 备注 that several contacts of one account carry: which one is meant is unknown."""


def find_contacts(session: Session, row: ProfileRow) -> list[Contact]:
    """The contacts a row names (rule in the module docstring); Ambiguous for a shared 备注."""
    phone = normalize_phone(row.phone)
    for matches in (
        or_(Contact.wxid == row.wxid, Contact.weixin == row.wxid) if row.wxid else None,
        Contact.unionid == row.unionid if row.unionid else None,
    ):
        if matches is not None and (found := _where(session, row.account, matches)):
            return found
    if phone and (found := contacts_by_phone(session, phone, row.account)):
        return found
    if row.alias:
        found = _where(session, row.account, Contact.alias == row.alias)
        accounts = [c.account_id for c in found]
        if len(accounts) != len(set(accounts)):
            raise Ambiguous(f"备注 {row.alias!r} is on several contacts of one account: add 微信号 or 手机号")
        return found
    return []


def _where(session: Session, account: str | None, matches: object) -> list[Contact]:
    query = select(Contact).where(matches).order_by(Contact.id)  # type: ignore[arg-type]
    if account:
        query = query.where(Contact.account_id == account)
    return list(session.execute(query).scalars())


def apply_profile(
    session: Session, events: EventLog, contact: Contact, row: ProfileRow, now: datetime
) -> int:
    """Write the row onto the contact; returns how many fields and tags changed."""
    assert contact.id is not None
    changed = 0
    ref = f"import:{row.where}"[:128]
    for key, value in row.fields.items():
        if set_field(contact, key, value):
            events.record(contact.id, ContactEventKind.FIELD_SET, now, detail=f"{key}={value}", ref=ref)
            changed += 1
    phone = normalize_phone(row.phone)
    if phone and not contact.phone:
        contact.phone = phone
        changed += 1
    if row.unionid and not contact.unionid:
        contact.unionid = row.unionid
        changed += 1
    if changed:
        contact.updated_at = now
        session.flush()
    for tag in row.tags:
        added = taglib.add_tag(
            session,
            events,
            contact.id,
            tag,
            source=SOURCE,
            now=now,
            evidence=f"导入 {row.where}",
            evidence_ref=ref,
        )
        changed += int(added)
    return changed


def save_pending(session: Session, row: ProfileRow, now: datetime) -> bool:
    """Keep a row nobody matches; a row with the same keys replaces it (an import run
    twice keeps one). True when it is new or changed."""
    phone = normalize_phone(row.phone)
    same = (
        select(PendingProfile)
        .where(
            PendingProfile.account_id == row.account if row.account else PendingProfile.account_id.is_(None),
            PendingProfile.wxid == row.wxid if row.wxid else PendingProfile.wxid.is_(None),
            PendingProfile.phone == phone if phone else PendingProfile.phone.is_(None),
            PendingProfile.unionid == row.unionid if row.unionid else PendingProfile.unionid.is_(None),
            PendingProfile.alias == row.alias if row.alias else PendingProfile.alias.is_(None),
        )
        .limit(1)
    )
    existing = session.execute(same).scalar_one_or_none()
    fields, tags = dict(row.fields), list(row.tags)
    if existing is not None:
        if existing.fields == fields and existing.tags == tags:
            return False
        existing.fields, existing.tags, existing.source = fields, tags, row.where
        return True
    session.add(
        PendingProfile(
            account_id=row.account,
            wxid=row.wxid,
            phone=phone,
            unionid=row.unionid,
            alias=row.alias,
            fields=fields,
            tags=tags,
            source=row.where,
            created_at=now,
        )
    )
    session.flush()
    return True


def has_pending(session: Session) -> bool:
    return session.execute(select(PendingProfile.id).limit(1)).first() is not None


def link_pending(
    session: Session, events: EventLog, contact_ids: Sequence[int] | None, now: datetime
) -> list[int]:
    """Apply waiting rows to contacts that now match them (None: look at every contact);
    an applied row is done. Returns the contacts that changed."""
    if not has_pending(session):
        return []
    touched: list[int] = []
    wanted = set(contact_ids) if contact_ids is not None else None
    for pending in list(session.execute(select(PendingProfile).order_by(PendingProfile.id)).scalars()):
        row = ProfileRow(
            pending.source,
            wxid=pending.wxid,
            phone=pending.phone,
            unionid=pending.unionid,
            alias=pending.alias,
            account=pending.account_id,
            fields=dict(pending.fields or {}),
            tags=tuple(pending.tags or ()),
        )
        try:
            found = find_contacts(session, row)
        except Ambiguous:
            continue  # waits until 微信号 or 手机号 tells who it is
        if wanted is not None:
            found = [c for c in found if c.id in wanted]
        if not found:
            continue
        for contact in found:
            if apply_profile(session, events, contact, row, now):
                touched.append(contact.id or 0)
        session.delete(pending)
    session.flush()
    return touched
