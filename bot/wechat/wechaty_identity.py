"""Keeps one sopbot id per person when a puppet changes ids across logins.

sopbot's id for a person (the `wxid` every other part of the bot sees, `contacts.wxid`) is
the puppet id it was first seen under. When an unknown puppet id shows up, it is matched to
a known person on stable fields, strongest first:

1. 微信号 (`weixin`), the handle a person chose; unique in WeChat.
2. the operator's remark name (`alias`), when exactly one known person has it.
3. display name *and* avatar URL together, when exactly one known person has both.

A person already bound to a puppet id seen in this session is never taken over by another
id (two live people with the same remark stay two people). With no stable field at all (no
微信号, no remark, no avatar), the new id becomes a new person: a wrong merge would send one
customer's messages to another, a duplicate only splits the history, and the operator can
set a remark name (备注) to make the match. Every id ever seen is kept in
`wechat_identities`; sends go to the id the person was last seen under.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.store import Database
from bot.store.models import WechatIdentity
from bot.store.upsert import upsert

log = logging.getLogger("bot.wechat.identity")


@dataclass
class Seen:
    """What a puppet tells about a person, enough to recognise them later."""

    puppet_id: str
    weixin: str | None = None
    alias: str | None = None
    name: str | None = None
    avatar: str | None = None


@dataclass
class _Row:
    canonical: str
    puppet_id: str
    weixin: str | None
    alias: str | None
    name: str | None
    avatar: str | None
    last_seen: datetime | None


class IdentityMap:
    """Puppet id <-> sopbot id for one account. Backed by the database when given one,
    else kept in memory (enough within one process)."""

    def __init__(self, account_id: str, database: Database | None) -> None:
        self.account_id = account_id
        self.database = database
        self._rows: dict[str, _Row] = {}  # puppet id -> row
        self._current: dict[str, str] = {}  # canonical -> puppet id last seen
        self._live: set[str] = set()  # canonical ids resolved in this session
        self._loaded = False
        self._pending: list[tuple[_Row, str | None]] = []

    def load(self) -> None:
        if self._loaded or self.database is None:
            self._loaded = True
            return
        with self.database.session(read_only=True) as session:
            rows = session.execute(
                select(WechatIdentity)
                .where(WechatIdentity.account_id == self.account_id)
                .order_by(WechatIdentity.last_seen_at, WechatIdentity.id)
            ).scalars()
            for row in rows:
                self._remember(
                    _Row(row.canonical_wxid, row.puppet_id, row.weixin, row.alias, row.name, row.avatar,
                         row.last_seen_at)
                )  # fmt: skip
        self._loaded = True

    def new_session(self) -> None:
        """A new login: who is live is learnt again."""
        self._live.clear()

    def puppet_id(self, canonical: str) -> str:
        """The id to send to for sopbot's `canonical` id."""
        return self._current.get(canonical, canonical)

    def canonical(self, puppet_id: str) -> str:
        """sopbot's id for a puppet id already resolved (or the id itself)."""
        row = self._rows.get(puppet_id)
        return row.canonical if row else puppet_id

    def resolve(self, seen: Seen, now: datetime) -> str:
        """sopbot's id for the person behind `seen`, learning the puppet id if new."""
        self.load()
        row = self._rows.get(seen.puppet_id)
        if row is not None:
            changed = (row.weixin, row.alias, row.name, row.avatar) != (
                seen.weixin or row.weixin, seen.alias or row.alias, seen.name or row.name,
                seen.avatar or row.avatar,
            )  # fmt: skip
            self._live.add(row.canonical)
            if changed or self._current.get(row.canonical) != seen.puppet_id:
                self._store(row.canonical, seen, row_matched=None, now=now)
            return row.canonical
        canonical, how = self._match(seen)
        if canonical is None:
            canonical, how = seen.puppet_id, "new"
        else:
            log.info(
                "account %s: puppet id %s is %s, known before as %s (matched by %s)",
                self.account_id, seen.puppet_id, seen.name or "?", canonical, how,
            )  # fmt: skip
        self._live.add(canonical)
        self._store(canonical, seen, row_matched=how, now=now)
        return canonical

    # -- internals ------------------------------------------------------------------------

    def _match(self, seen: Seen) -> tuple[str | None, str]:
        taken = {c for c in self._live if self._current.get(c) not in (None, seen.puppet_id)}
        by_person: dict[str, _Row] = {}
        for row in self._rows.values():
            if row.canonical not in taken:
                by_person[row.canonical] = row  # later rows win: freshest fields
        if seen.weixin and seen.weixin != seen.puppet_id:
            hits = {c for c, r in by_person.items() if r.weixin == seen.weixin}
            if len(hits) == 1:
                return hits.pop(), "weixin"
        if seen.alias:
            hits = {c for c, r in by_person.items() if r.alias == seen.alias}
            if len(hits) == 1:
                return hits.pop(), "alias"
        if seen.name and seen.avatar:
            hits = {c for c, r in by_person.items() if (r.name, r.avatar) == (seen.name, seen.avatar)}
            if len(hits) == 1:
                return hits.pop(), "name_avatar"
        return None, "new"

    def _remember(self, row: _Row) -> None:
        self._rows[row.puppet_id] = row
        self._current[row.canonical] = row.puppet_id

    def _store(self, canonical: str, seen: Seen, *, row_matched: str | None, now: datetime) -> None:
        old = self._rows.get(seen.puppet_id)
        row = _Row(
            canonical,
            seen.puppet_id,
            seen.weixin or (old.weixin if old else None),
            seen.alias or (old.alias if old else None),
            seen.name or (old.name if old else None),
            seen.avatar or (old.avatar if old else None),
            now,
        )
        self._remember(row)
        if self.database is not None:
            self._pending.append((row, row_matched))

    def flush(self) -> None:
        """Write what was learnt since the last flush (one transaction; call off the loop)."""
        pending, self._pending = self._pending, []
        if not pending or self.database is None:
            return
        with self.database.session() as session:
            for row, matched in pending:
                if matched is None:
                    session.execute(
                        update(WechatIdentity)
                        .where(
                            WechatIdentity.account_id == self.account_id,
                            WechatIdentity.puppet_id == row.puppet_id,
                        )
                        .values(weixin=row.weixin, alias=row.alias, name=row.name, avatar=row.avatar,
                                last_seen_at=row.last_seen)
                    )  # fmt: skip
                    continue
                values = {
                    "account_id": self.account_id,
                    "puppet_id": row.puppet_id,
                    "canonical_wxid": row.canonical,
                    "weixin": row.weixin,
                    "alias": row.alias,
                    "name": row.name,
                    "avatar": row.avatar,
                    "matched_by": matched,
                    "first_seen_at": row.last_seen,
                    "last_seen_at": row.last_seen,
                }
                upsert(
                    session,
                    WechatIdentity,
                    values,
                    conflict=["account_id", "puppet_id"],
                    update=["canonical_wxid", "weixin", "alias", "name", "avatar", "last_seen_at"],
                )
