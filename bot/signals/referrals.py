"""Spreading: who brought whom (group invites, referral codes in friend requests, an
order's referrer), and the conversion when the person brought in buys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session

from bot.events import ContactEventKind
from bot.orders.model import identity_keys, normalize_phone
from bot.store.eventlog import EventLog
from bot.store.models import Contact, Referral, ReferralCode
from bot.store.upsert import upsert

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def code_for(session: Session, contact_id: int, now: datetime) -> str:
    """The contact's referral code, made on first use."""
    existing = session.execute(
        select(ReferralCode.code).where(ReferralCode.contact_id == contact_id)
    ).scalar_one_or_none()
    if existing:
        return str(existing)
    digest = int.from_bytes(hashlib.sha256(f"sopbot-referral:{contact_id}".encode()).digest()[:10], "big")
    for length in range(6, 13):
        code = ""
        value = digest
        for _ in range(length):
            value, index = divmod(value, len(_ALPHABET))
            code += _ALPHABET[index]
        if session.get(ReferralCode, code) is None:
            session.add(ReferralCode(code=code, contact_id=contact_id, created_at=now))
            session.flush()
            return code
    raise RuntimeError(f"no free referral code for contact {contact_id}")


def find_code(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.IGNORECASE)
    return match.group(1).upper() if match else None


def resolve_referrer(
    session: Session, reference: str, pattern: str, account: str | None = None
) -> int | None:
    """A referral code (with or without its prefix), a wxid or a phone number → contact id."""
    text = reference.strip()
    code = find_code(pattern, text) or text.upper()
    owner = session.execute(
        select(ReferralCode.contact_id).where(ReferralCode.code == code)
    ).scalar_one_or_none()
    if owner is not None:
        return int(owner)
    query = (
        select(Contact.id)
        .where(or_(Contact.wxid == text, Contact.phone == (normalize_phone(text) or text)))
        .order_by(Contact.id)
    )
    if account:
        query = query.where(Contact.account_id == account)
    found = session.execute(query.limit(1)).scalar_one_or_none()
    return int(found) if found is not None else None


def record(
    session: Session,
    referrer_id: int,
    referred_key: str,
    *,
    via: str,
    now: datetime,
    referred_id: int | None = None,
    ref: str | None = None,
) -> bool:
    """Remember that `referrer_id` brought `referred_key` in (the first way counts)."""
    if referred_id == referrer_id:
        return False
    inserted = upsert(
        session,
        Referral,
        {
            "referrer_id": referrer_id,
            "referred_key": referred_key,
            "referred_id": referred_id,
            "via": via,
            "ref": ref,
            "created_at": now,
        },
        conflict=["referrer_id", "referred_key"],
        returning=Referral.id,
    )
    return inserted is not None


def keys_of(contact: Contact) -> list[str]:
    return identity_keys(contact.wxid, contact.phone, contact.unionid)


def convert(
    session: Session,
    log: EventLog,
    *,
    buyer_id: int | None,
    buyer_keys: Sequence[str],
    order_id: str,
    ordered_at: datetime,
) -> list[int]:
    """The buyer's open referrals made before this order are converted; returns the
    referrers (each gets a REFERRAL_CONVERTED event)."""
    keys = list(buyer_keys)
    if buyer_id is not None:
        contact = session.get(Contact, buyer_id)
        if contact is not None:
            keys += keys_of(contact)
    conditions = [Referral.referred_key.in_(keys)] if keys else []
    if buyer_id is not None:
        conditions.append(Referral.referred_id == buyer_id)
    if not conditions:
        return []
    open_referrals = session.execute(
        select(Referral).where(
            or_(*conditions), Referral.converted_at.is_(None), Referral.created_at <= ordered_at
        )
    ).scalars()
    referrers = []
    for referral in open_referrals:
        referral.converted_at = ordered_at
        referral.converted_order_id = order_id
        if buyer_id is not None and referral.referred_id is None:
            referral.referred_id = buyer_id
        referrers.append(referral.referrer_id)
        log.record(
            referral.referrer_id,
            ContactEventKind.REFERRAL_CONVERTED,
            ordered_at,
            detail=referral.via,
            ref=order_id,
        )
    return sorted(set(referrers))


def unconvert(session: Session, order_id: str) -> list[int]:
    """A refunded order no longer counts as a referral's success; returns the referrers."""
    referrals = session.execute(select(Referral).where(Referral.converted_order_id == order_id)).scalars()
    referrers = []
    for referral in referrals:
        referral.converted_at = None
        referral.converted_order_id = None
        referrers.append(referral.referrer_id)
    return referrers
