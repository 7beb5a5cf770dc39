"""Storing orders idempotently on the order id, and finding who bought.

An order moves only forward: paid → refunded or cancelled. Replaying a file or a webhook
delivery leaves a stored order as it is; a `paid` row for an order already refunded is
ignored (the refund stands)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select
from sqlmodel import Session

from bot.orders.model import PAID, OrderIn, normalize_phone
from bot.store.models import Contact, Order


class SaveOutcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    REFUNDED = "refunded"  # refunded or cancelled now
    UNCHANGED = "unchanged"
    IGNORED = "ignored"  # a paid row for an order that was already refunded or cancelled


def find_buyer(
    session: Session, wxid: str | None, phone: str | None, unionid: str | None, account: str | None
) -> int | None:
    """Who bought: the contact whose wxid, else whose 微信号, is the order's wxid; else the
    one with its unionid; else with its phone number (any way of writing it). Only in
    `account` when the order names one; the oldest contact when several accounts know the
    person. (docs/orders.md states this rule.)"""
    for column, value in (
        (Contact.wxid, wxid),
        (Contact.weixin, wxid),
        (Contact.unionid, unionid),
        (Contact.phone, normalize_phone(phone)),
    ):
        if not value:
            continue
        query = select(Contact.id).where(column == value).order_by(Contact.id).limit(1)
        if account:
            query = query.where(Contact.account_id == account)
        found = session.execute(query).scalar_one_or_none()
        if found is not None:
            return int(found)
    return _by_written_phone(session, normalize_phone(phone), account)


def _by_written_phone(session: Session, phone: str | None, account: str | None) -> int | None:
    """A contact whose phone is written another way (`+86 138-0000-0001`)."""
    if not phone or len(phone) < 8:
        return None
    found = contacts_by_phone(session, phone, account)
    return int(found[0].id) if found and found[0].id is not None else None


def contacts_by_phone(session: Session, phone: str, account: str | None) -> list[Contact]:
    """The contacts whose stored phone, however written, is `phone` (normalised), oldest
    first; only `account`'s when given."""
    query = select(Contact).where(Contact.phone.like(f"%{phone[-4:]}")).order_by(Contact.id)
    if account:
        query = query.where(Contact.account_id == account)
    return [c for c in session.execute(query).scalars() if normalize_phone(c.phone) == phone]


def save_order(session: Session, order: OrderIn, *, source: str, now: datetime) -> tuple[SaveOutcome, Order]:
    stored = session.get(
        Order, order.order_id, with_for_update=session.get_bind().dialect.name == "postgresql"
    )
    items = [item.stored() for item in order.items]
    if stored is None:
        stored = Order(
            order_id=order.order_id,
            contact_id=find_buyer(session, order.wxid, order.phone, order.unionid, order.account),
            buyer_wxid=order.wxid,
            buyer_phone=order.phone,
            buyer_unionid=order.unionid,
            amount_cents=order.amount_cents,
            status=order.status,
            discounted=order.discounted,
            referrer=order.referrer,
            items=items or None,
            ordered_at=order.ordered_at,
            source=source,
            imported_at=now,
            updated_at=now,
            account_id=order.account,
        )
        session.add(stored)
        session.flush()
        return SaveOutcome.NEW, stored
    if stored.status != PAID:
        return (SaveOutcome.UNCHANGED if order.status == stored.status else SaveOutcome.IGNORED), stored
    if order.status != PAID:
        stored.status = order.status
        stored.updated_at = now
        return SaveOutcome.REFUNDED, stored
    changed = (
        stored.amount_cents != order.amount_cents
        or stored.discounted != order.discounted
        or (stored.items or []) != items
        or stored.ordered_at != order.ordered_at
    )
    if not changed:
        return SaveOutcome.UNCHANGED, stored
    stored.amount_cents, stored.discounted = order.amount_cents, order.discounted
    stored.items, stored.ordered_at, stored.updated_at = items or None, order.ordered_at, now
    return SaveOutcome.UPDATED, stored


def link_orphans(session: Session, contact_ids: Sequence[int]) -> list[Order]:
    """Orders of unknown buyers that belong to these contacts: link them; returns them."""
    linked: list[Order] = []
    for contact in session.execute(select(Contact).where(Contact.id.in_(contact_ids))).scalars():
        matches = [Order.buyer_wxid == contact.wxid]
        if contact.weixin:
            matches.append(Order.buyer_wxid == contact.weixin)
        if contact.phone:
            matches.append(Order.buyer_phone == normalize_phone(contact.phone))
        if contact.unionid:
            matches.append(Order.buyer_unionid == contact.unionid)
        orders = list(
            session.execute(
                select(Order)
                .where(Order.contact_id.is_(None), or_(*matches))
                .where(or_(Order.account_id.is_(None), Order.account_id == contact.account_id))
                .order_by(Order.ordered_at)
            ).scalars()
        )
        for order in orders:
            order.contact_id = contact.id
        linked += orders
    return linked


def has_orphans(session: Session) -> bool:
    return (
        session.execute(select(Order.order_id).where(Order.contact_id.is_(None)).limit(1)).first() is not None
    )


def relink_all(session: Session) -> list[Order]:
    """Link every orphan order whose buyer is now a known contact (after a contact sync)."""
    if not has_orphans(session):
        return []
    orphans = session.execute(
        select(Order.buyer_wxid, Order.buyer_phone, Order.buyer_unionid, Order.account_id).where(
            Order.contact_id.is_(None)
        )
    ).all()
    contact_ids = {
        found
        for wxid, phone, unionid, account in orphans
        if (found := find_buyer(session, wxid, phone, unionid, account))
    }
    return link_orphans(session, sorted(contact_ids))
