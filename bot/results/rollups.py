"""Daily rollups: counters per account, local day, metric and key, kept up to date from the
raw tables and rebuildable from them at any time (docs/metrics.md says what reads them).

`update()` is the one writer: the daemon's `RollupService` runs it every `[results]
rollup_interval`, and `sopbot report` runs it before it reads. Each source table is read
past a watermark (`rollup_marks`) in batches; a batch's counters and its new watermark are
written in one transaction, so a crash loses nothing and counts nothing twice, and two
processes updating at once take turns on the watermark's row. `rebuild()` empties the
derived tables and reads everything again.

The sources and what they count (days are local days in `settings.timezone`):

- `events` (contact_events, by id): `added` by source, `deleted` by how it was seen,
  `tag_added` / `tag_removed` by tag; a deletion is attributed to the last SOP message sent
  to the contact before it (`step_deleted_short` / `step_deleted_long` on that message's
  day); a purchase event refreshes its order's touches (an order linked to its buyer late).
- `inbound` (inbound_messages, by id): `messages`; a message within the reply window after
  an SOP message to the same contact (1:1) or group is a reply to it: `replies` on the
  message's day, and `step_replied` once per SOP message (the first reply) on its day.
- `service` (inbound_messages, by id, once the outcome is known: the service and reply
  windows after the question have passed): `questions`, `answered`, `served`.
- `outbox` (outbox, by id): `step_planned` when an SOP row appears; once it is settled
  (sent / skipped / failed / unknown) `step_sent`, `step_reached` (1:1), `step_skipped` by
  reason, `step_failed`, `step_unknown` on the day it was planned, and `sent` (any row) on
  the day it went out. Rows not settled yet wait in `rollup_pending`.
- `orders` (orders changed since the last run, by time with an overlap: refreshing an order
  is idempotent): one `order_touches` row per order of a known contact, with its last and
  first marketing touch within the order window.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session

from bot.config.settings import Settings
from bot.events import AddSource, ContactEventKind, DeletionSeen
from bot.policies import Category
from bot.store import Database
from bot.store.models import (
    Contact,
    ContactEvent,
    DailyRollup,
    InboundMessage,
    Order,
    OrderTouch,
    OutboxMessage,
    RollupMark,
    RollupPending,
)
from bot.store.upsert import insert_for

log = logging.getLogger(__name__)

# -- the metrics (DailyRollup.metric) ------------------------------------------------------
ADDED = "added"  # key: the source (AddSource)
DELETED = "deleted"  # key: how it was seen (DeletionSeen)
TAG_ADDED = "tag_added"  # key: the tag
TAG_REMOVED = "tag_removed"
MESSAGES = "messages"  # every inbound message
REPLIES = "replies"  # inbound messages that reply to an SOP message (on the message's day)
QUESTIONS = "questions"  # 1:1 questions whose outcome is known (on the question's day)
ANSWERED = "answered"  # … answered within the service window
SERVED = "served"  # … answered, and the contact wrote back within the reply window
SENT = "sent"  # outbox rows sent, any origin (on the day they went out)
# per SOP step (key: `step_key`), on the day the message was planned
STEP_PLANNED = "step_planned"
STEP_SENT = "step_sent"
STEP_REACHED = "step_reached"  # sent to a contact (1:1)
STEP_SKIPPED = "step_skipped"  # key: step key + TAB + reason
STEP_FAILED = "step_failed"
STEP_UNKNOWN = "step_unknown"
STEP_REPLIED = "step_replied"  # messages that got a reply within the reply window
STEP_DELETED_SHORT = "step_deleted_short"  # deletions within the short window after it
STEP_DELETED_LONG = "step_deleted_long"

SEP = "\t"
BATCH = 5000
ORDER_BATCH = 2000
CHUNK = 900  # ids in one IN (…)
ORDER_OVERLAP = timedelta(minutes=10)  # orders changed this long before the last run are read again
GAP_PATIENCE = timedelta(minutes=10)  # how long an id PostgreSQL skipped may still commit
GAP_WINDOW = 2000  # only ids this close below the newest row are watched as gaps

SETTLED = ("sent", "skipped", "failed", "unknown")
SETTINGS_MARK = "settings"  # the windows and time zone the rollups were counted with
QUESTION = re.compile(r"[?？吗]|怎么|多少|什么|哪")
_TIMESTAMP = re.compile(r"\s*(?:at |until )?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?")
_ADD_SOURCES = {s.value for s in AddSource}
_DELETION_METHODS = {m.value for m in DeletionSeen}
_EVENT_KINDS = (
    ContactEventKind.FRIEND_ADDED.value,
    ContactEventKind.FRIEND_DELETED.value,
    ContactEventKind.TAG_ADDED.value,
    ContactEventKind.TAG_REMOVED.value,
    ContactEventKind.PURCHASE.value,
    ContactEventKind.FIRST_PURCHASE.value,
)


def step_key(sop_id: str, step_id: str | None) -> str:
    return f"{sop_id}{SEP}{step_id or ''}"


def split_step_key(key: str) -> tuple[str, str | None, str | None]:
    """`sop, step[, reason]` back from a key."""
    parts = key.split(SEP, 2)
    return parts[0], (parts[1] if len(parts) > 1 else None) or None, parts[2] if len(parts) > 2 else None


def is_question(text: str | None) -> bool:
    """A 1:1 message that asks something: ？ / ? or 吗, 怎么, 多少, 什么, 哪."""
    return bool(text) and QUESTION.search(text or "") is not None


def reason_key(reason: str | None) -> str:
    """A skip reason without the times in it, so the same reason counts together."""
    text = _TIMESTAMP.sub("", reason or "").strip() or "unknown"
    return text[:120]


def add_source(detail: str | None) -> str:
    """The source of a FRIEND_ADDED event (older events carry the greeting: a request)."""
    return detail if detail in _ADD_SOURCES else AddSource.REQUEST.value


def deletion_method(detail: str | None) -> str:
    return detail if detail in _DELETION_METHODS else DeletionSeen.TRANSPORT.value


@dataclass(frozen=True)
class Windows:
    """The attribution windows and the time zone of the days (`[results]`, `timezone`)."""

    tz: ZoneInfo
    reply: timedelta
    order: timedelta
    deletion: timedelta
    deletion_long: timedelta
    service: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Windows:
        r = settings.results
        return cls(settings.tz, r.reply, r.order, r.deletion, r.deletion_long, r.service)

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


# -- where things happened, for "the latest SOP message before" --------------------------


@dataclass(frozen=True)
class Touch:
    """A sent outbox row, as attribution sees it."""

    id: int
    account_id: str
    sop_id: str | None
    step_id: str | None
    sent_at: datetime
    planned_at: datetime


Target = tuple[str, int]  # ("c", contact id) or ("r", room id)


class Timeline:
    """Things per target (a contact or a group), in time order."""

    def __init__(self) -> None:
        self._items: dict[Target, list[tuple[datetime, int, Any]]] = defaultdict(list)
        self._times: dict[Target, list[tuple[datetime, int]]] = {}

    def add(self, target: Target, at: datetime, row_id: int, item: Any = None) -> None:
        self._items[target].append((at, row_id, item))
        self._times.pop(target, None)

    def _sorted(self, target: Target) -> tuple[list[tuple[datetime, int, Any]], list[tuple[datetime, int]]]:
        items = self._items.get(target)
        if not items:
            return [], []
        times = self._times.get(target)
        if times is None:
            items.sort(key=lambda x: (x[0], x[1]))
            times = [(x[0], x[1]) for x in items]
            self._times[target] = times
        return items, times

    def latest_before(self, target: Target, at: datetime, window: timedelta) -> Any:
        """The latest item strictly before `at` and no earlier than `at - window`."""
        items, times = self._sorted(target)
        i = bisect.bisect_left(times, (at, -1)) - 1
        if i >= 0 and items[i][0] >= at - window:
            return items[i][2]
        return None

    def earliest_in_window(self, target: Target, at: datetime, window: timedelta) -> Any:
        """The earliest item in [at - window, at)."""
        items, times = self._sorted(target)
        i = bisect.bisect_left(times, (at - window, -1))
        if i < len(items) and items[i][0] < at:
            return items[i][2]
        return None

    def first_after(self, target: Target, after: datetime, window: timedelta) -> Any:
        """The earliest item in (after, after + window]."""
        items, times = self._sorted(target)
        i = bisect.bisect_right(times, (after, 2**62))
        if i < len(items) and items[i][0] <= after + window:
            return items[i][2]
        return None

    def any_between(self, target: Target, after: datetime, before: tuple[datetime, int]) -> bool:
        """Is there an item later than `after` and earlier than `before` (time, id)?"""
        _, times = self._sorted(target)
        i = bisect.bisect_right(times, (after, 2**62))
        return i < len(times) and times[i] < before


def chunks(values: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    items = sorted(set(values))
    for start in range(0, len(items), size):
        yield items[start : start + size]


_O: Any = OutboxMessage.__table__
_I: Any = InboundMessage.__table__


def load_touches(
    session: Session,
    contacts: Iterable[int],
    rooms: Iterable[int],
    since: datetime,
    until: datetime,
    *,
    sop_only: bool = True,
    marketing: bool = False,
) -> Timeline:
    """Sent outbox rows to these contacts (1:1) and groups with `since <= sent_at <= until`."""
    timeline = Timeline()
    columns = (_O.c.id, _O.c.account_id, _O.c.sop_id, _O.c.step_id, _O.c.sent_at, _O.c.created_at)
    where = [_O.c.state == "sent", _O.c.sent_at >= since, _O.c.sent_at <= until]
    if sop_only:
        where.append(_O.c.sop_id.is_not(None))
    if marketing:
        where.append(_O.c.category == Category.MARKETING.value)
    for kind, column, ids in (("c", _O.c.contact_id, contacts), ("r", _O.c.room_id, rooms)):
        for chunk in chunks(ids):
            for row in session.execute(select(column, *columns).where(column.in_(chunk), *where)):
                target, row_id, account, sop, step, sent_at, created = row
                touch = Touch(row_id, account, sop, step, sent_at, created or sent_at)
                timeline.add((kind, target), sent_at, row_id, touch)
    return timeline


def load_messages(
    session: Session, contacts: Iterable[int], rooms: Iterable[int], since: datetime, until: datetime
) -> Timeline:
    """Inbound messages from these contacts (1:1) and in these groups, `since <= sent_at <= until`."""
    timeline = Timeline()
    where = [_I.c.sent_at >= since, _I.c.sent_at <= until]
    for chunk in chunks(contacts):
        query = select(_I.c.contact_id, _I.c.id, _I.c.sent_at).where(
            _I.c.contact_id.in_(chunk), _I.c.room_id.is_(None), *where
        )
        for contact_id, row_id, sent_at in session.execute(query):
            timeline.add(("c", contact_id), sent_at, row_id, sent_at)
    for chunk in chunks(rooms):
        query = select(_I.c.room_id, _I.c.id, _I.c.sent_at).where(_I.c.room_id.in_(chunk), *where)
        for room_id, row_id, sent_at in session.execute(query):
            timeline.add(("r", room_id), sent_at, row_id, sent_at)
    return timeline


# -- counters -------------------------------------------------------------------------------


@dataclass
class Deltas:
    """Counter increments of one batch, written with one upsert."""

    counts: Counter[tuple[str, date, str, str]] = field(default_factory=Counter)

    def add(self, account: str, day: date, metric: str, key: str = "", n: int = 1) -> None:
        self.counts[(account, day, metric, key[:255])] += n

    def write(self, session: Session) -> None:
        rows = [
            {"account_id": a, "day": d, "metric": m, "key": k, "value": v}
            for (a, d, m, k), v in self.counts.items()
            if v
        ]
        if not rows:
            return
        table: Any = DailyRollup.__table__
        statement = insert_for(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=["account_id", "day", "metric", "key"],
            set_={"value": table.c.value + statement.excluded.value},
        )
        for start in range(0, len(rows), 5000):
            session.execute(statement, rows[start : start + 5000])


# -- watermarks -----------------------------------------------------------------------------

_M: Any = RollupMark.__table__
_P: Any = RollupPending.__table__


def _lock_mark(session: Session, source: str) -> tuple[int, datetime | None]:
    """The source's watermark, locked for this transaction (PostgreSQL: FOR UPDATE; SQLite
    write transactions are exclusive anyway)."""
    for _ in range(3):  # a rebuild may delete the row while we wait for its lock
        session.execute(
            insert_for(session, _M)
            .values(source=source, last_id=0)
            .on_conflict_do_nothing(index_elements=["source"])
        )
        row = session.execute(
            select(_M.c.last_id, _M.c.last_at).where(_M.c.source == source).with_for_update()
        ).first()
        if row is not None:
            return int(row.last_id), row.last_at
    raise RuntimeError(f"the rollups' watermark {source!r} keeps disappearing")


def _save_mark(
    session: Session,
    source: str,
    now: datetime,
    *,
    last_id: int | None = None,
    last_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"updated_at": now}
    if last_id is not None:
        values["last_id"] = last_id
    if last_at is not None:
        values["last_at"] = last_at
    session.execute(_M.update().where(_M.c.source == source).values(**values))


def _watches_gaps(session: Session) -> bool:
    # PostgreSQL hands out ids before the commit, so a row with a lower id can appear after
    # a higher one was read; SQLite gives ids under its write lock, in commit order.
    return session.get_bind().dialect.name != "sqlite"


def _new_rows(
    session: Session,
    source: str,
    fetch: Callable[[Any, int | None], list[Any]],
    id_column: Any,
    mark: int,
    batch: int,
    now: datetime,
) -> tuple[list[Any], int]:
    """Rows past the watermark (and ids skipped earlier that have since committed); returns
    them and the new watermark."""
    rows: list[Any] = []
    gaps_source = f"{source}:gap"
    watch = _watches_gaps(session)
    if watch:
        waiting = list(
            session.execute(select(_P.c.row_id).where(_P.c.source == gaps_source).limit(10_000)).scalars()
        )
        if waiting:
            found = []
            for chunk in chunks(waiting):
                found.extend(fetch(id_column.in_(chunk), None))
            rows.extend(found)
            done = [r.id for r in found]
            for chunk in chunks(done):
                session.execute(delete(_P).where(_P.c.source == gaps_source, _P.c.row_id.in_(chunk)))
            session.execute(delete(_P).where(_P.c.source == gaps_source, _P.c.since < now - GAP_PATIENCE))
    fresh = fetch(id_column > mark, batch)
    rows.extend(fresh)
    if not fresh:
        return rows, mark
    top = max(r.id for r in fresh)
    if watch:
        seen = {r.id for r in fresh}
        gaps = [i for i in range(max(mark + 1, top - GAP_WINDOW), top) if i not in seen]
        if gaps:
            session.execute(
                insert_for(session, _P).on_conflict_do_nothing(index_elements=["source", "row_id"]),
                [{"source": gaps_source, "row_id": i, "since": now} for i in gaps],
            )
    return rows, top


# -- the sources ----------------------------------------------------------------------------

_E: Any = ContactEvent.__table__
_C: Any = Contact.__table__
_R: Any = Order.__table__
_T: Any = OrderTouch.__table__


def _events_step(session: Session, w: Windows, now: datetime, batch: int) -> tuple[int, bool]:
    mark, _ = _lock_mark(session, "events")

    def fetch(where: Any, limit: int | None) -> list[Any]:
        query = (
            select(_E.c.id, _E.c.contact_id, _E.c.kind, _E.c.at, _E.c.detail, _E.c.ref, _C.c.account_id)
            .join(_C, _C.c.id == _E.c.contact_id)
            .where(where)
            .order_by(_E.c.id)
        )
        return list(session.execute(query.limit(limit) if limit else query))

    rows, top = _new_rows(session, "events", fetch, _E.c.id, mark, batch, now)
    deltas = Deltas()
    deletions = [r for r in rows if r.kind == ContactEventKind.FRIEND_DELETED.value and r.at is not None]
    touches = Timeline()
    if deletions:
        touches = load_touches(
            session,
            {r.contact_id for r in deletions},
            (),
            min(r.at for r in deletions) - w.deletion_long,
            max(r.at for r in deletions),
        )
    orders: set[str] = set()
    for r in rows:
        if r.kind not in _EVENT_KINDS or r.at is None:
            continue
        day = w.day(r.at)
        if r.kind == ContactEventKind.FRIEND_ADDED.value:
            deltas.add(r.account_id, day, ADDED, add_source(r.detail))
        elif r.kind == ContactEventKind.FRIEND_DELETED.value:
            deltas.add(r.account_id, day, DELETED, deletion_method(r.detail))
            touch = touches.latest_before(("c", r.contact_id), r.at, w.deletion_long)
            if touch is not None:
                key = step_key(touch.sop_id, touch.step_id)
                planned = w.day(touch.planned_at)
                deltas.add(touch.account_id, planned, STEP_DELETED_LONG, key)
                if r.at - touch.sent_at <= w.deletion:
                    deltas.add(touch.account_id, planned, STEP_DELETED_SHORT, key)
        elif r.kind == ContactEventKind.TAG_ADDED.value and r.detail:
            deltas.add(r.account_id, day, TAG_ADDED, r.detail)
        elif r.kind == ContactEventKind.TAG_REMOVED.value and r.detail:
            deltas.add(r.account_id, day, TAG_REMOVED, r.detail)
        elif r.ref:  # a purchase: its order may just have been linked to the buyer
            orders.add(r.ref)
    deltas.write(session)
    if orders:
        refresh_orders(session, w, sorted(orders))
    _save_mark(session, "events", now, last_id=top)
    return len(rows), top != mark and len(rows) >= batch


def _inbound_step(session: Session, w: Windows, now: datetime, batch: int) -> tuple[int, bool]:
    mark, _ = _lock_mark(session, "inbound")

    def fetch(where: Any, limit: int | None) -> list[Any]:
        query = (
            select(_I.c.id, _I.c.account_id, _I.c.contact_id, _I.c.room_id, _I.c.sent_at, _I.c.received_at)
            .where(where)
            .order_by(_I.c.id)
        )
        return list(session.execute(query.limit(limit) if limit else query))

    rows, top = _new_rows(session, "inbound", fetch, _I.c.id, mark, batch, now)
    deltas = Deltas()
    timed = [r for r in rows if (r.sent_at or r.received_at) is not None]
    if timed:
        contacts = {r.contact_id for r in timed if r.room_id is None and r.contact_id is not None}
        rooms = {r.room_id for r in timed if r.room_id is not None}
        low = min(r.sent_at or r.received_at for r in timed) - w.reply
        high = max(r.sent_at or r.received_at for r in timed)
        touches = load_touches(session, contacts, rooms, low, high)
        messages = load_messages(session, contacts, rooms, low, high)
        for r in timed:
            at = r.sent_at or r.received_at
            day = w.day(at)
            deltas.add(r.account_id, day, MESSAGES)
            if r.room_id is not None:
                target: Target = ("r", r.room_id)
            elif r.contact_id is not None:
                target = ("c", r.contact_id)
            else:
                continue
            touch = touches.latest_before(target, at, w.reply)
            if touch is None:
                continue
            deltas.add(r.account_id, day, REPLIES)
            if not messages.any_between(target, touch.sent_at, (at, r.id)):  # the first reply to it
                deltas.add(
                    touch.account_id,
                    w.day(touch.planned_at),
                    STEP_REPLIED,
                    step_key(touch.sop_id, touch.step_id),
                )
    deltas.write(session)
    _save_mark(session, "inbound", now, last_id=top)
    return len(rows), top != mark and len(rows) >= batch


def _service_step(session: Session, w: Windows, now: datetime, batch: int) -> tuple[int, bool]:
    """Questions whose outcome is known: the service window and then the reply window after
    them have passed. Read in id order; stops at the first one still open."""
    mark, _ = _lock_mark(session, "service")
    result = session.execute(
        select(_I.c.id, _I.c.account_id, _I.c.contact_id, _I.c.text, _I.c.sent_at, _I.c.received_at)
        .where(_I.c.id > mark, _I.c.room_id.is_(None), _I.c.contact_id.is_not(None))
        .order_by(_I.c.id)
        .limit(batch)
    )
    decided: list[Any] = []
    still_open = False
    for r in result:  # read lazily: usually the first row is still open
        seen = r.received_at or r.sent_at
        if seen is not None and seen + w.service + w.reply > now:
            still_open = True
            break
        decided.append(r)
    result.close()
    questions = [r for r in decided if r.sent_at is not None and is_question(r.text)]
    deltas = Deltas()
    if questions:
        contacts = {r.contact_id for r in questions}
        low = min(r.sent_at for r in questions)
        high = max(r.sent_at for r in questions) + w.service
        answers = load_touches(session, contacts, (), low, high, sop_only=False)
        messages = load_messages(session, contacts, (), low, high + w.reply)
        for q in questions:
            day = w.day(q.sent_at)
            deltas.add(q.account_id, day, QUESTIONS)
            answer = answers.first_after(("c", q.contact_id), q.sent_at, w.service)
            if answer is None:
                continue
            deltas.add(q.account_id, day, ANSWERED)
            if messages.first_after(("c", q.contact_id), answer.sent_at, w.reply) is not None:
                deltas.add(q.account_id, day, SERVED)
    deltas.write(session)
    new_mark = decided[-1].id if decided else mark
    _save_mark(session, "service", now, last_id=new_mark)
    return len(decided), not still_open and len(decided) >= batch


def _outbox_step(session: Session, w: Windows, now: datetime, batch: int) -> tuple[int, bool]:
    mark, _ = _lock_mark(session, "outbox")
    columns = (
        _O.c.id, _O.c.account_id, _O.c.sop_id, _O.c.step_id, _O.c.contact_id, _O.c.state,
        _O.c.reason, _O.c.sent_at, _O.c.created_at, _O.c.not_before,
    )  # fmt: skip

    def fetch(where: Any, limit: int | None) -> list[Any]:
        query = select(*columns).where(where).order_by(_O.c.id)
        return list(session.execute(query.limit(limit) if limit else query))

    rows, top = _new_rows(session, "outbox", fetch, _O.c.id, mark, batch, now)
    deltas = Deltas()
    waiting = []
    for r in rows:
        if r.sop_id is not None:
            planned = r.created_at or r.not_before or now
            deltas.add(r.account_id, w.day(planned), STEP_PLANNED, step_key(r.sop_id, r.step_id))
        if r.state in SETTLED:
            _count_settled(deltas, w, r, now)
        else:
            waiting.append({"source": "outbox", "row_id": r.id, "since": now})
    if waiting:
        session.execute(
            insert_for(session, _P).on_conflict_do_nothing(index_elements=["source", "row_id"]), waiting
        )
    # rows seen earlier that have settled since
    settled = list(
        session.execute(
            select(*columns)
            .join(_P, and_(_P.c.row_id == _O.c.id, _P.c.source == "outbox"))
            .where(_O.c.state.in_(SETTLED))
            .limit(batch)
        )
    )
    for r in settled:
        _count_settled(deltas, w, r, now)
    for chunk in chunks(r.id for r in settled):
        session.execute(delete(_P).where(_P.c.source == "outbox", _P.c.row_id.in_(chunk)))
    deltas.write(session)
    _save_mark(session, "outbox", now, last_id=top)
    return len(rows) + len(settled), (top != mark and len(rows) >= batch) or len(settled) >= batch


def _count_settled(deltas: Deltas, w: Windows, r: Any, now: datetime) -> None:
    if r.state == "sent" and r.sent_at is not None:
        deltas.add(r.account_id, w.day(r.sent_at), SENT)
    if r.sop_id is None:
        return
    key = step_key(r.sop_id, r.step_id)
    day = w.day(r.created_at or r.not_before or now)
    if r.state == "sent":
        deltas.add(r.account_id, day, STEP_SENT, key)
        if r.contact_id is not None:
            deltas.add(r.account_id, day, STEP_REACHED, key)
    elif r.state == "skipped":
        deltas.add(r.account_id, day, STEP_SKIPPED, f"{key}{SEP}{reason_key(r.reason)}")
    elif r.state == "failed":
        deltas.add(r.account_id, day, STEP_FAILED, key)
    else:
        deltas.add(r.account_id, day, STEP_UNKNOWN, key)


def _orders_step(session: Session, w: Windows, now: datetime, batch: int) -> tuple[int, bool]:
    """Orders changed since the last run (less an overlap) get their touches refreshed."""
    _, last_at = _lock_mark(session, "orders")
    # in time order, so that a batch's orders look at the messages of a few days only
    query = select(_R.c.order_id).where(_R.c.contact_id.is_not(None)).order_by(_R.c.ordered_at)
    if last_at is not None:
        since = last_at - ORDER_OVERLAP
        query = query.where(or_(_R.c.updated_at >= since, _R.c.imported_at >= since))
    ids = list(session.execute(query).scalars())
    for start in range(0, len(ids), ORDER_BATCH):
        refresh_orders(session, w, ids[start : start + ORDER_BATCH])
    _save_mark(session, "orders", now, last_at=now)
    return len(ids), False


def refresh_orders(session: Session, w: Windows, order_ids: Sequence[str]) -> None:
    """Write (again) the `order_touches` rows of these orders: idempotent."""
    rows = []
    for start in range(0, len(order_ids), CHUNK):
        rows.extend(
            session.execute(
                select(
                    _R.c.order_id,
                    _R.c.contact_id,
                    _R.c.amount_cents,
                    _R.c.status,
                    _R.c.ordered_at,
                    _R.c.imported_at,
                    _C.c.account_id,
                )
                .join(_C, _C.c.id == _R.c.contact_id)
                .where(_R.c.order_id.in_(order_ids[start : start + CHUNK]))
            )
        )
    timed = [(r, r.ordered_at or r.imported_at) for r in rows if (r.ordered_at or r.imported_at) is not None]
    if not timed:
        return
    touches = load_touches(
        session,
        {r.contact_id for r, _ in timed},
        (),
        min(at for _, at in timed) - w.order,
        max(at for _, at in timed),
        marketing=True,
    )
    values = []
    for r, at in timed:
        last = touches.latest_before(("c", r.contact_id), at, w.order)
        first = touches.earliest_in_window(("c", r.contact_id), at, w.order)
        values.append(
            {
                "order_id": r.order_id,
                "account_id": r.account_id,
                "contact_id": r.contact_id,
                "day": w.day(at),
                "ordered_at": at,
                "amount_cents": int(r.amount_cents or 0),
                "paid": r.status == "paid",
                "last_sop": last.sop_id if last else None,
                "last_step": last.step_id if last else None,
                "last_sent_at": last.sent_at if last else None,
                "first_sop": first.sop_id if first else None,
                "first_step": first.step_id if first else None,
                "first_sent_at": first.sent_at if first else None,
            }
        )
    statement = insert_for(session, _T)
    statement = statement.on_conflict_do_update(
        index_elements=["order_id"],
        set_={name: statement.excluded[name] for name in values[0] if name != "order_id"},
    )
    session.execute(statement, values)


SOURCES: tuple[tuple[str, Callable[[Session, Windows, datetime, int], tuple[int, bool]]], ...] = (
    ("outbox", _outbox_step),  # first: replies and deletions look at what was sent
    ("events", _events_step),
    ("inbound", _inbound_step),
    ("service", _service_step),
    ("orders", _orders_step),
)


def update(
    database: Database,
    settings: Settings,
    *,
    now: datetime,
    batch: int = BATCH,
    should_stop: Callable[[], bool] | None = None,
) -> Counter[str]:
    """Bring the rollups up to date; returns the rows read per source. Each batch is its own
    (background) transaction: the pipeline's writes go first, and a stop is honoured
    between two batches."""
    windows = Windows.of(settings)
    if _settings_changed(database, windows, now):
        log.warning("rollups: the time zone or an attribution window changed; counting everything again")
        return rebuild(database, settings, now=now, batch=batch, should_stop=should_stop)
    done: Counter[str] = Counter()
    for name, step in SOURCES:
        while True:
            if should_stop is not None and should_stop():
                return done
            with database.session(background=True) as session:
                count, more = step(session, windows, now, batch)
            done[name] += count
            if not more:
                break
    return done


def _fingerprint(w: Windows) -> int:
    """The settings the counted days and attributions depend on, as a number."""
    text = f"{w.tz.key}|{w.reply}|{w.order}|{w.deletion}|{w.deletion_long}|{w.service}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def _settings_changed(database: Database, w: Windows, now: datetime) -> bool:
    """Whether the rollups were counted with other windows or another time zone (then they
    are rebuilt); the first time, the settings are noted."""
    fingerprint = _fingerprint(w)
    with database.session(read_only=True) as session:
        noted = session.execute(select(_M.c.last_id).where(_M.c.source == SETTINGS_MARK)).scalar_one_or_none()
    if noted == fingerprint:
        return False
    if noted is not None:
        return True
    with database.session(background=True) as session:
        session.execute(
            insert_for(session, _M)
            .values(source=SETTINGS_MARK, last_id=fingerprint, updated_at=now)
            .on_conflict_do_nothing(index_elements=["source"])
        )
    return False


def rebuild(
    database: Database,
    settings: Settings,
    *,
    now: datetime,
    batch: int = BATCH,
    should_stop: Callable[[], bool] | None = None,
) -> Counter[str]:
    """Forget every rollup and count everything again from the raw tables."""
    with database.session() as session:
        session.execute(select(_M.c.source).with_for_update()).all()  # wait for a running update
        for table in (DailyRollup, OrderTouch, RollupPending, RollupMark):
            session.execute(delete(table.__table__))  # type: ignore[attr-defined]
    return update(database, settings, now=now, batch=batch, should_stop=should_stop)


def marks(session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Each source's watermark (for `sopbot report` to say how fresh the figures are)."""
    return {
        str(source): (int(last_id), updated)
        for source, last_id, updated in session.execute(select(_M.c.source, _M.c.last_id, _M.c.updated_at))
    }


def service_mark(session: Session) -> int:
    return int(
        session.execute(
            select(func.coalesce(func.max(_M.c.last_id), 0)).where(_M.c.source == "service")
        ).scalar_one()
    )
