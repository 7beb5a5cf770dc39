"""Running tag rules on an inbound message: count the hit, check the window and the
cooldown, then do the rule's actions (tags, reply, opt-out/in) with the message as the
evidence.

A rule that opts the contact out (or in) replies only when it changed their state: who
says 退订 twice gets one confirmation, and 订阅 from someone who never left gets none."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from bot.config.units import format_duration
from bot.contact_fields import FieldValueError, field_key, normalise, set_field
from bot.delivery.outbox import PlannedMessage, enqueue, reply_key
from bot.events import ContactEventKind
from bot.policies import Category, Origin, QuietPolicy
from bot.render import Renderer, RenderError
from bot.signals import sql, taglib
from bot.signals.matcher import Hit, Matcher, Where
from bot.signals.rules import Action, Rule
from bot.store.eventlog import EventLog
from bot.store.models import Contact, ContactTag, RuleHit
from bot.store.upsert import insert_for
from bot.text import excerpt
from bot.wechat.types import Text

log = logging.getLogger("bot.signals")
SOURCE = "rule"


@dataclass(frozen=True)
class Said:
    """An inbound message, as the rules see it."""

    account_id: str
    contact_id: int
    msg_id: str
    text: str
    at: datetime
    where: Where = field(default_factory=Where)
    room_id: int | None = None
    talker_wxid: str = ""


ReplyContext = Callable[[Session, Contact], dict[str, object]]


@dataclass
class Conversation:
    matcher: Matcher
    renderer: Renderer | None
    context: ReplyContext | None = None
    reply_max_age: timedelta = timedelta(minutes=30)
    _pending: list[dict[str, object]] = field(default_factory=list)
    _messages: set[tuple[int, str]] = field(default_factory=set)
    _seen_before: set[tuple[int, str]] = field(default_factory=set)
    _tags: dict[tuple[int, int], datetime | None] = field(default_factory=dict)
    _new_tags: list[dict[str, object]] = field(default_factory=list)
    _history: dict[tuple[int, str], list[list[object]]] = field(default_factory=dict)  # [hit_at, fired]
    _prefetched: bool = False
    planned: int = 0  # replies put in the outbox since the last reset

    def apply(self, session: Session, events: EventLog, said: Said, now: datetime) -> list[str]:
        """Run the rules on one message; returns the ids of the rules that fired. The hits
        are written by `flush()` (one statement for the whole unit of work)."""
        hits = self.matcher.match(said.text, said.where)
        if not hits:
            return []
        if self._prefetched:
            seen = (said.contact_id, said.msg_id) in self._seen_before
        else:
            seen = self._seen(session, said)
        if (said.contact_id, said.msg_id) in self._messages or seen:
            return []  # the same message again (a redelivery): already counted
        self._messages.add((said.contact_id, said.msg_id))
        events.know(said.contact_id, said.account_id)
        fired: list[str] = []
        for hit in hits:
            if self._hit(session, events, said, hit, now):
                fired.append(hit.rule.id)
                if hit.rule.stop:
                    break
        return fired

    def prefetch(self, session: Session, items: list[Said]) -> None:
        """For a batch: which messages were seen before and the talkers' tags, in two
        queries instead of one per message and tag."""
        refs = list({said.msg_id for said in items})
        contacts = list({said.contact_id for said in items})
        connection = session.connection()
        for start in range(0, len(refs), 500):
            query = select(RuleHit.contact_id, RuleHit.message_ref).where(
                RuleHit.message_ref.in_(refs[start : start + 500])
            )
            self._seen_before.update((c, m) for c, m in connection.execute(query))
        for start in range(0, len(contacts), 500):
            query = select(ContactTag.contact_id, ContactTag.tag_id, ContactTag.expires_at).where(
                ContactTag.contact_id.in_(contacts[start : start + 500])
            )
            self._tags.update({(c, t): e for c, t, e in connection.execute(query)})
        counted = [r for r in self.matcher.rules if r.min_hits > 1 or r.cooldown is not None]
        if counted:
            spans = [r.within or r.cooldown for r in counted]
            oldest = None if any(span is None for span in spans) else min(x.at for x in items) - max(spans)  # type: ignore[type-var]
            for start in range(0, len(contacts), 500):
                query = select(RuleHit.contact_id, RuleHit.rule_id, RuleHit.hit_at, RuleHit.fired).where(
                    RuleHit.contact_id.in_(contacts[start : start + 500]),
                    RuleHit.rule_id.in_([r.id for r in counted]),
                )
                if oldest is not None:
                    query = query.where(RuleHit.hit_at > oldest)
                for contact, rule, at, fired in connection.execute(query):
                    self._history.setdefault((contact, rule), []).append([at, fired])
        self._prefetched = True

    def flush(self, session: Session) -> None:
        if self._pending:
            session.execute(insert_for(session, RuleHit.__table__), self._pending)
        self._flush_tags(session)
        self.reset()

    def _flush_tags(self, session: Session) -> None:
        if self._new_tags:
            session.connection().execute(sql.ADD_TAG, self._new_tags)
            self._new_tags.clear()

    def reset(self) -> None:
        self._pending.clear()
        self._messages.clear()
        self._seen_before.clear()
        self._tags.clear()
        self._new_tags.clear()
        self._history.clear()
        self._prefetched = False
        self.planned = 0

    @staticmethod
    def _seen(session: Session, said: Said) -> bool:
        found = session.connection().execute(
            sql.MESSAGE_SEEN, {"contact": said.contact_id, "ref": said.msg_id}
        )
        return found.first() is not None

    def _count(
        self, session: Session, contact_id: int, rule: Rule, since: datetime | None, *, fired: bool = False
    ) -> int:
        """Hits of the rule by the contact after `since` (only fired ones, if asked),
        counting this unit's own hits too."""
        key = (contact_id, rule.id)
        recent = self._history.get(key, [])
        in_memory = sum(1 for at, was in recent if (since is None or at > since) and (was or not fired))  # type: ignore[operator]
        if self._prefetched:
            return in_memory
        connection = session.connection()
        params: dict[str, object] = {"contact": contact_id, "rule": rule.id}
        if fired:
            assert since is not None
            return in_memory + (
                connection.execute(sql.FIRED_SINCE, {**params, "yes": True, "since": since}).first()
                is not None
            )
        if since is None:
            return in_memory + int(connection.execute(sql.HITS, params).scalar_one())
        return in_memory + int(connection.execute(sql.HITS_SINCE, {**params, "since": since}).scalar_one())

    def _hit(self, session: Session, events: EventLog, said: Said, hit: Hit, now: datetime) -> bool:
        rule = hit.rule
        row: dict[str, object] = {
            "contact_id": said.contact_id, "rule_id": rule.id, "hit_at": said.at, "message_ref": said.msg_id,
            "excerpt": excerpt(said.text, 60), "fired": False,
        }  # fmt: skip
        count = 1
        if rule.min_hits > 1:
            since = said.at - rule.within if rule.within is not None else None
            count = self._count(session, said.contact_id, rule, since) + 1
        if rule.cooldown is not None:
            cooling = self._count(session, said.contact_id, rule, said.at - rule.cooldown, fired=True) > 0
        else:
            cooling = False
        self._pending.append(row)
        memory = [said.at, False]
        if rule.min_hits > 1 or rule.cooldown is not None:
            self._history.setdefault((said.contact_id, rule.id), []).append(memory)
        if count < rule.min_hits or cooling:
            return False
        memory[1] = True
        row["fired"] = True
        evidence = f"「{excerpt(said.text)}」（{rule.label}：{hit.term}"
        if rule.min_hits > 1:
            window = f"{format_duration(rule.within)}内" if rule.within else "累计"
            evidence += f"，{window}第 {count} 次"
        evidence += "）"
        confirm = self._changes_state(session, said.contact_id, rule)
        for action in rule.actions:
            if action.reply and not confirm:
                continue  # the confirmation of a state the contact is already in
            self._act(session, events, said, rule, action, evidence, now)
        return True

    @staticmethod
    def _changes_state(session: Session, contact_id: int, rule: Rule) -> bool:
        """False when the rule opts out (or in) a contact who already is: its reply would be
        a second confirmation. True for every rule without opt_out / opt_in."""
        wanted = [action.opt_out for action in rule.actions if action.opt_out or action.opt_in]
        if not wanted:
            return True
        contact = session.get(Contact, contact_id)
        return contact is None or any(contact.opted_out != value for value in wanted)

    def _act(
        self,
        session: Session,
        events: EventLog,
        said: Said,
        rule: Rule,
        action: Action,
        evidence: str,
        now: datetime,
    ) -> None:
        ref = f"msg:{said.msg_id}"
        if action.add_tag:
            expires = said.at + action.expires if action.expires else None
            taglib.add_tag(
                session, events, said.contact_id, action.add_tag, source=SOURCE, now=now, evidence=evidence,
                evidence_ref=ref, expires_at=expires, known=self._tags if self._prefetched else None,
                defer=self._new_tags if self._prefetched else None,
            )  # fmt: skip
        elif action.remove_tag:
            self._flush_tags(session)
            taglib.remove_tag(session, events, said.contact_id, action.remove_tag, now=now, ref=ref)
        elif action.opt_out or action.opt_in:
            contact = session.get(Contact, said.contact_id)
            if contact is not None and contact.opted_out != action.opt_out:
                contact.opted_out = action.opt_out
                kind = ContactEventKind.OPTED_OUT if action.opt_out else ContactEventKind.OPTED_IN
                events.record(said.contact_id, kind, now, detail=excerpt(said.text), ref=ref)
        elif action.set_field is not None:
            self._set_field(session, events, said, rule, action, now)
        elif action.reply:
            self._reply(session, said, rule, action.reply, now)

    @staticmethod
    def _set_field(
        session: Session, events: EventLog, said: Said, rule: Rule, action: Action, now: datetime
    ) -> None:
        """A profile field from what was said (我生日是5月20号 → 生日 05-20). A value the field
        cannot take (a birthday on 02-30) is logged and the field kept as it was."""
        found = rule.field_value(action, said.text)
        contact = session.get(Contact, said.contact_id)
        if found is None or contact is None:
            return
        name, raw = found
        try:
            key = field_key(name)
            value = normalise(key, raw)
            changed = set_field(contact, key, value)
        except FieldValueError as error:
            log.info(
                "rule %s: contact %s said %r: %s; field left as it was", rule.id, said.contact_id, raw, error
            )
            return
        if changed:
            ref = f"msg:{said.msg_id}"
            events.record(
                said.contact_id, ContactEventKind.FIELD_SET, now, detail=f"{key}={value or ''}", ref=ref
            )

    def _reply(self, session: Session, said: Said, rule: Rule, template: str, now: datetime) -> None:
        if self.renderer is None:
            return
        contact = session.get(Contact, said.contact_id)
        if contact is None:
            return
        context: dict[str, object] = {
            "message": {"text": said.text},
            "rule": {"id": rule.id, "name": rule.label},
        }
        if self.context is not None:
            context |= self.context(session, contact)
        variants = [said.where.group_type or ""] if said.where.in_group else [contact.tier]
        try:
            rendered = self.renderer.render(template, context, variants)
        except RenderError as error:
            log.error("rule %s: reply not planned: %s", rule.id, error)
            return
        parts = list(rendered.parts)
        if said.room_id is not None and parts and isinstance(parts[0], Text):
            parts[0] = dataclasses.replace(parts[0], mentions=(said.talker_wxid,))
        message = PlannedMessage(
            key=reply_key(rule.id, said.account_id, said.msg_id),
            account_id=said.account_id,
            origin=Origin.REPLY,
            parts=parts,
            not_before=now,
            contact_id=None if said.room_id is not None else said.contact_id,
            room_id=said.room_id,
            category=Category.REPLY,
            quiet_policy=QuietPolicy.WAIT,
            expires_at=now + self.reply_max_age,  # an answer hours late is no answer: skipped
        )
        self.planned += enqueue(session, [message], now)
