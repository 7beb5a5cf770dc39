"""Compute a `Report` for a period: every figure defined in docs/metrics.md.

What sums per day comes from the rollups (`bot.results.rollups`: call `update()` first);
what cannot be summed over days (distinct contacts over a range, who was where at a moment,
the tier migration, groups, contact values) comes from the raw tables with indexed queries
whose cost grows with the contacts, not with the events. `make_report()` does both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlmodel import Session

from bot.config.settings import Settings
from bot.events import AddSource, ContactEventKind
from bot.policies import Category
from bot.results import rollups as r
from bot.results.model import (
    ContactValue,
    DayPoint,
    GroupLine,
    Performance,
    Period,
    Ratio,
    Report,
    StepOutcome,
    SuccessRates,
    TierMove,
    TierOrders,
    Totals,
)
from bot.signals.tier_policy import TierPolicy
from bot.store import Database
from bot.store.models import (
    Account,
    Contact,
    ContactEvent,
    ContactTag,
    DailyRollup,
    InboundMessage,
    OrderTouch,
    OutboxMessage,
    Referral,
    Room,
    RoomMember,
    SopRun,
    Tag,
    TierChange,
)

_C: Any = Contact.__table__
_E: Any = ContactEvent.__table__
_I: Any = InboundMessage.__table__
_O: Any = OutboxMessage.__table__
_T: Any = OrderTouch.__table__
_D: Any = DailyRollup.__table__
_M: Any = RoomMember.__table__

LEAD_SOURCES = (AddSource.REQUEST.value, AddSource.REFERRAL.value, AddSource.GROUP.value)


def make_report(
    database: Database,
    settings: Settings,
    period: Period,
    account: str | None,
    *,
    now: datetime,
    previous: Period | None = None,
    top: int = 10,
    rebuild: bool = False,
) -> Report:
    """Bring the rollups up to date (or rebuild them), then build the report."""
    if rebuild:
        r.rebuild(database, settings, now=now)
    else:
        r.update(database, settings, now=now)
    with database.session(read_only=True) as session:
        return build_report(session, settings, period, account, now=now, previous=previous, top=top)


def build_report(
    session: Session,
    settings: Settings,
    period: Period,
    account: str | None,
    *,
    now: datetime,
    previous: Period | None = None,
    top: int = 10,
) -> Report:
    """The report of one account (None: every account together) for a period. Reads the
    rollups as they are: run `rollups.update()` before (or use `make_report`)."""
    scope = _Scope.of(session, settings, account, now)
    start, end = scope.bounds(period)
    p_end = scope.bounds(previous)[1] if previous is not None else end
    days = _RollupDays.load(session, scope.accounts, period.start)

    friends_end = scope.friends_at(end)
    totals = _totals(scope, days, period, len(scope.people.friends), friends_end, start, end)
    tiers_start, tiers_end_of = scope.tiers_at(start), scope.tiers_at(end)
    tiers_end = dict.fromkeys(scope.ladder_ids, 0)
    for contact in friends_end:
        tier = tiers_end_of.get(contact)
        if tier is not None:
            tiers_end[tier] = tiers_end.get(tier, 0) + 1
    # everyone who is a friend at the end: from the tier at the start (for people added in
    # the period: the tier they arrived with, the `from` of their first change) to the end
    moves: Counter[tuple[str, str]] = Counter(
        (tiers_start[c], tiers_end_of[c]) for c in friends_end if c in tiers_start and c in tiers_end_of
    )
    migration = [
        TierMove(source, target, n)
        for (source, target), n in sorted(
            moves.items(), key=lambda item: (scope.rank(item[0][0]), scope.rank(item[0][1]))
        )
    ]
    tags_top, tag_days = _tags(scope, days, period, settings.results.top_tags)
    performance = _performance(scope, period, scope.reachable_at(end))
    previous_performance = None
    if previous is not None:
        previous_performance = _performance(scope, previous, scope.reachable_at(p_end))
    service_open = _open_questions(scope, start, end)
    success = SuccessRates(
        lead=_lead(scope, start, end, friends_end),
        service=Ratio(days.total(r.SERVED, period), days.total(r.QUESTIONS, period)),
        conversion=performance.conversion_rate,
        service_answered=Ratio(days.total(r.ANSWERED, period), days.total(r.QUESTIONS, period)),
        service_open=service_open,
    )
    w = settings.results
    return Report(
        period=period,
        account=account,
        accounts=scope.accounts,
        generated_at=now,
        tier_names=dict(zip(scope.ladder_ids, scope.ladder_names, strict=True)),
        totals=totals,
        days=_day_points(scope, days, period),
        tiers_end=tiers_end,
        migration=migration,
        tags_top=tags_top,
        sops=_sops(scope, days, period, start, end),
        groups=_groups(scope, start, end),
        orders_by_tier=_orders_by_tier(scope, period),
        success=success,
        performance=performance,
        previous_performance=previous_performance,
        top_values=_top_values(scope, period, end, top),
        windows={
            "reply_hours": w.reply.total_seconds() / 3600,
            "order_days": w.order.total_seconds() / 86400,
            "deletion_short_hours": w.deletion.total_seconds() / 3600,
            "deletion_long_days": w.deletion_long.total_seconds() / 86400,
            "service_minutes": float(w.service_minutes),
        },
        tag_days=tag_days,
    )


# -- the scope: accounts, time zone, ladder, and "who was what at a moment" -----------------


@dataclass
class _Scope:
    session: Session
    settings: Settings
    accounts: list[str]
    now: datetime
    ladder_ids: list[str]
    ladder_names: list[str]
    policy: TierPolicy
    account: str | None  # None: every account together
    _firsts: dict[tuple[datetime, tuple[ContactEventKind, ...]], dict[int, str]] = field(default_factory=dict)
    _tier_ids: dict[str | None, str] = field(default_factory=dict)
    _flags: dict[tuple[int, datetime, ContactEventKind], set[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, settings: Settings, account: str | None, now: datetime) -> _Scope:
        if account is not None:
            accounts = [account]
        else:
            known = set(session.execute(select(Account.id)).scalars())
            accounts = sorted(known | {a.id for a in settings.accounts})
        policy = TierPolicy.from_settings(settings.tiers)
        return cls(
            session,
            settings,
            accounts,
            now,
            [level.id for level in policy.levels],
            [level.name for level in policy.levels],
            policy,
            account,
        )

    def bounds(self, period: Period) -> tuple[datetime, datetime]:
        """The period as UTC moments: from the first day's local midnight to the midnight
        after its last day."""
        tz = self.settings.tz
        start = datetime.combine(period.start, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        return start, end

    def rank(self, tier: str) -> int:
        try:
            return self.ladder_ids.index(tier)
        except ValueError:
            return len(self.ladder_ids)

    def tier_id(self, stored: str | None) -> str:
        """A stored tier (an id, or a display name) as an id; none yet: the first tier."""
        if stored not in self._tier_ids:
            self._tier_ids[stored] = (
                (self.policy.ladder.resolve(stored) or stored) if stored else self.ladder_ids[0]
            )
        return self._tier_ids[stored]

    @cached_property
    def people(self) -> _People:
        """The scope's contacts as they are now: one pass over the contacts table."""
        people = _People({}, set(), set())
        for contact_id, tier, friend, blocked, opted in self.session.execute(
            select(_C.c.id, _C.c.tier, _C.c.is_friend, _C.c.blocked, _C.c.opted_out).where(
                _C.c.account_id.in_(self.accounts)
            )
        ):
            people.tiers[contact_id] = self.tier_id(tier)
            if friend and not blocked:
                people.friends.add(contact_id)
            if opted:
                people.opted.add(contact_id)
        return people

    def firsts(self, moment: datetime, *kinds: ContactEventKind) -> dict[int, str]:
        """Each contact's first event of these kinds at or after `moment`: contact → kind."""
        if moment >= self.now:
            return {}
        key = (moment, kinds)
        if key not in self._firsts:
            n = func.row_number().over(partition_by=_E.c.contact_id, order_by=(_E.c.at, _E.c.id))
            inner = (
                select(_E.c.contact_id, _E.c.kind, n.label("n"))
                .join(_C, _C.c.id == _E.c.contact_id)
                .where(
                    _C.c.account_id.in_(self.accounts),
                    _E.c.kind.in_([k.value for k in kinds]),
                    _E.c.at >= moment,
                )
                .subquery()
            )
            rows = self.session.execute(select(inner.c.contact_id, inner.c.kind).where(inner.c.n == 1))
            self._firsts[key] = {int(row[0]): str(row[1]) for row in rows}
        return self._firsts[key]

    def flag_at(
        self, now_on: set[int], moment: datetime, on: ContactEventKind, off: ContactEventKind
    ) -> set[int]:
        """Who had a flag (a friend, opted out) at `moment`: who has it now, corrected by
        each contact's first on/off event at or after the moment (an `on` first: it was off).
        The sets returned are shared: never change them."""
        firsts = self.firsts(moment, on, off)
        if not firsts:
            return now_on
        key = (id(now_on), moment, on)
        if key in self._flags:
            return self._flags[key]
        flagged = set(now_on)
        self._flags[key] = flagged
        for contact_id, kind in firsts.items():
            if kind == on.value:
                flagged.discard(contact_id)
            else:
                flagged.add(contact_id)
        return flagged

    def friends_at(self, moment: datetime) -> set[int]:
        return self.flag_at(
            self.people.friends, moment, ContactEventKind.FRIEND_ADDED, ContactEventKind.FRIEND_DELETED
        )

    def reachable_at(self, moment: datetime) -> set[int]:
        """Friends who had not opted out."""
        opted = self.flag_at(self.people.opted, moment, ContactEventKind.OPTED_OUT, ContactEventKind.OPTED_IN)
        return self.friends_at(moment) - opted

    def tiers_at(self, moment: datetime) -> dict[int, str]:
        """Every contact's tier at `moment`: the `from` of its first tier change at or after
        the moment, else its tier now."""
        tiers = self.people.tiers
        if moment >= self.now:
            return tiers
        tiers = dict(tiers)
        changes: Any = TierChange.__table__
        n = func.row_number().over(
            partition_by=changes.c.contact_id, order_by=(changes.c.changed_at, changes.c.id)
        )
        inner = (
            select(changes.c.contact_id, changes.c.from_tier, n.label("n"))
            .join(_C, _C.c.id == changes.c.contact_id)
            .where(_C.c.account_id.in_(self.accounts), changes.c.changed_at >= moment)
            .subquery()
        )
        for contact_id, from_tier in self.session.execute(
            select(inner.c.contact_id, inner.c.from_tier).where(inner.c.n == 1)
        ):
            tiers[contact_id] = self.tier_id(from_tier)
        return tiers


@dataclass
class _People:
    tiers: dict[int, str]  # contact → tier id, now
    friends: set[int]  # friends now (not deleted or blocked)
    opted: set[int]  # opted out now


# -- the rollups of a period ------------------------------------------------------------------


@dataclass
class _RollupDays:
    """The rollups from a day on, summed over the scope's accounts."""

    values: dict[str, dict[str, dict[date, int]]]  # metric → key → day → value

    @classmethod
    def load(cls, session: Session, accounts: Sequence[str], since: date) -> _RollupDays:
        values: dict[str, dict[str, dict[date, int]]] = defaultdict(lambda: defaultdict(dict))
        rows = session.execute(
            select(_D.c.metric, _D.c.key, _D.c.day, func.sum(_D.c.value))
            .where(_D.c.account_id.in_(list(accounts)), _D.c.day >= since)
            .group_by(_D.c.metric, _D.c.key, _D.c.day)
        )
        for metric, key, day, value in rows:
            values[metric][key][day] = int(value)
        return cls(values)

    def by_key(self, metric: str, first: date, last: date | None = None) -> dict[str, int]:
        """Sum per key over the days [first, last] (last None: up to today)."""
        out: dict[str, int] = {}
        for key, per_day in self.values.get(metric, {}).items():
            n = sum(v for d, v in per_day.items() if d >= first and (last is None or d <= last))
            if n:
                out[key] = n
        return out

    def total(self, metric: str, period: Period) -> int:
        return sum(self.by_key(metric, period.start, period.end).values())

    def on(self, metric: str, day: date) -> int:
        return sum(per_day.get(day, 0) for per_day in self.values.get(metric, {}).values())

    def after(self, metric: str, day: date) -> int:
        """Sum over the days after `day` (up to today)."""
        return sum(self.by_key(metric, day + timedelta(days=1)).values())


def _totals(
    scope: _Scope,
    days: _RollupDays,
    period: Period,
    assets_now: int,
    friends_end: set[int],
    start: datetime,
    end: datetime,
) -> Totals:
    # assets from the friends now, stepped back over the additions and deletions since
    assets_start = (
        assets_now
        - sum(days.by_key(r.ADDED, period.start).values())
        + sum(days.by_key(r.DELETED, period.start).values())
    )
    assets_end = assets_now - days.after(r.ADDED, period.end) + days.after(r.DELETED, period.end)
    added_by = days.by_key(r.ADDED, period.start, period.end)
    deleted_by = days.by_key(r.DELETED, period.start, period.end)
    added, deleted = sum(added_by.values()), sum(deleted_by.values())
    wrote = _wrote(scope, start, end, friends_end)
    return Totals(
        assets_start=assets_start,
        assets_end=assets_end,
        added=added,
        deleted=deleted,
        added_by_source=dict(sorted(added_by.items())),
        deleted_by_method=dict(sorted(deleted_by.items())),
        active=wrote,
        add_rate=Ratio(added, assets_start),
        delete_rate=Ratio(deleted, assets_start + added),
        interaction_rate=Ratio(wrote, assets_end),
    )


def _wrote(scope: _Scope, start: datetime, end: datetime, among: set[int]) -> int:
    """How many of `among` wrote (1:1 or in a group) in [start, end): a contact's last
    message (`contacts.last_message_at`) answers it for a period that has not ended; for an
    earlier one, one index probe per contact who wrote since the start."""
    query = select(_C.c.id).where(_C.c.account_id.in_(scope.accounts), _C.c.last_message_at >= start)
    if end <= scope.now:
        query = query.where(
            exists().where(_I.c.contact_id == _C.c.id, _I.c.sent_at >= start, _I.c.sent_at < end)
        )
    elif among == scope.people.friends:  # the friends now: the database can count
        return _count(scope.session, query.where(_C.c.is_friend, ~_C.c.blocked))
    return len(among.intersection(scope.session.execute(query).scalars()))


def _count(session: Session, query: Any) -> int:
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def _day_points(scope: _Scope, days: _RollupDays, period: Period) -> list[DayPoint]:
    orders: dict[date, tuple[int, int]] = {}
    for day, n, amount in scope.session.execute(
        select(_T.c.day, func.count(), func.coalesce(func.sum(_T.c.amount_cents), 0))
        .where(
            _T.c.account_id.in_(scope.accounts), _T.c.paid, _T.c.day >= period.start, _T.c.day <= period.end
        )
        .group_by(_T.c.day)
    ):
        orders[day] = (int(n), int(amount))
    out = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        n, amount = orders.get(day, (0, 0))
        out.append(
            DayPoint(
                day=day,
                added=days.on(r.ADDED, day),
                deleted=days.on(r.DELETED, day),
                sent=days.on(r.SENT, day),
                replies=days.on(r.REPLIES, day),
                orders=n,
                amount_cents=amount,
                messages=days.on(r.MESSAGES, day),
            )
        )
    return out


def _tags(
    scope: _Scope, days: _RollupDays, period: Period, top: int
) -> tuple[list[tuple[str, int]], dict[str, list[int]]]:
    """Carriers per tag at the end of the period (every contact of the account, tier tags
    left out: tiers have their own section), and for the top tags at the end of each day."""
    tags: Any = Tag.__table__
    links: Any = ContactTag.__table__
    now_count: dict[str, int] = {
        name: int(n)
        for name, n in scope.session.execute(
            select(tags.c.name, func.count())
            .select_from(
                links.join(tags, tags.c.id == links.c.tag_id).join(_C, _C.c.id == links.c.contact_id)
            )
            .where(_C.c.account_id.in_(scope.accounts))
            .group_by(tags.c.name)
        )
    }
    tier_tags = {name.casefold() for name in scope.ladder_names} | {i.casefold() for i in scope.ladder_ids}
    net: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for sign, metric in ((1, r.TAG_ADDED), (-1, r.TAG_REMOVED)):
        for tag, per_day in days.values.get(metric, {}).items():
            for day, value in per_day.items():
                net[tag][day] += sign * value

    def at_end_of(tag: str, day: date) -> int:
        # carriers now, less what was added after that day, plus what was removed after it
        return now_count.get(tag, 0) - sum(v for d, v in net.get(tag, {}).items() if d > day)

    names = (set(now_count) | set(net)) - {""}
    counts = {name: at_end_of(name, period.end) for name in names if name.casefold() not in tier_tags}
    ranked = sorted(((n, c) for n, c in counts.items() if c > 0), key=lambda item: (-item[1], item[0]))[:top]
    series: dict[str, list[int]] = {}
    for name, at_end in ranked:
        values = [at_end]
        for offset in range(period.days - 1, 0, -1):  # back from the last day
            values.append(values[-1] - net[name].get(period.start + timedelta(days=offset), 0))
        series[name] = values[::-1]
    return ranked, series


# -- SOP outcomes -------------------------------------------------------------------------------


def _sops(
    scope: _Scope, days: _RollupDays, period: Period, start: datetime, end: datetime
) -> list[StepOutcome]:
    steps: dict[tuple[str, str | None], StepOutcome] = {}
    names = sop_names(scope.settings.sop_path)

    def line(sop_id: str, step_id: str | None) -> StepOutcome:
        key = (sop_id, step_id)
        if key not in steps:
            sop_name, step_names, _ = names.get(sop_id, (sop_id, {}, []))
            step_name = step_names.get(step_id or "", step_id)
            steps[key] = StepOutcome(sop_id, step_id, f"{sop_name} / {step_name}" if step_id else sop_name)
        return steps[key]

    simple = {
        r.STEP_PLANNED: "planned",
        r.STEP_SENT: "sent",
        r.STEP_FAILED: "failed",
        r.STEP_UNKNOWN: "unknown",
        r.STEP_REACHED: "reached",
        r.STEP_REPLIED: "replied",
        r.STEP_DELETED_SHORT: "deleted_24h",
        r.STEP_DELETED_LONG: "deleted_7d",
    }
    for metric, attribute in simple.items():
        for key, n in days.by_key(metric, period.start, period.end).items():
            sop_id, step_id, _ = r.split_step_key(key)
            outcome = line(sop_id, step_id)
            setattr(outcome, attribute, getattr(outcome, attribute) + n)
    for key, n in days.by_key(r.STEP_SKIPPED, period.start, period.end).items():
        sop_id, step_id, reason = r.split_step_key(key)
        skipped = line(sop_id, step_id).skipped
        skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + n
    for touch in ("last", "first"):
        sop_col, step_col = _T.c[f"{touch}_sop"], _T.c[f"{touch}_step"]
        rows = scope.session.execute(
            select(sop_col, step_col, func.count(), func.coalesce(func.sum(_T.c.amount_cents), 0))
            .where(
                _T.c.account_id.in_(scope.accounts),
                _T.c.paid,
                _T.c.day >= period.start,
                _T.c.day <= period.end,
                sop_col.is_not(None),
            )
            .group_by(sop_col, step_col)
        )
        for sop_id, step_id, n, amount in rows:
            outcome = line(sop_id, step_id)
            setattr(outcome, f"orders_{touch}_touch", getattr(outcome, f"orders_{touch}_touch") + int(n))
            setattr(
                outcome,
                f"amount_{touch}_touch_cents",
                getattr(outcome, f"amount_{touch}_touch_cents") + int(amount),
            )
    for (sop_id, step_id), counts in _left_out(scope.session, start, end).items():
        if scope.account is not None and (sop_id, step_id) not in steps:
            continue  # the run ledger is shared: shown with the steps this account ran
        left = line(sop_id, step_id).left_out
        for reason, n in counts.items():
            left[reason] = left.get(reason, 0) + n

    whole: dict[str, StepOutcome] = {}
    for (sop_id, _), outcome in steps.items():
        total = whole.setdefault(sop_id, StepOutcome(sop_id, None, names.get(sop_id, (sop_id, {}, []))[0]))
        for attribute in (
            *simple.values(),
            "orders_last_touch",
            "amount_last_touch_cents",
            "orders_first_touch",
            "amount_first_touch_cents",
        ):
            setattr(total, attribute, getattr(total, attribute) + getattr(outcome, attribute))
        for reason, n in outcome.skipped.items():
            total.skipped[reason] = total.skipped.get(reason, 0) + n
        for reason, n in outcome.left_out.items():
            total.left_out[reason] = total.left_out.get(reason, 0) + n
    out: list[StepOutcome] = []
    for sop_id in sorted(whole):
        order = names.get(sop_id, (sop_id, {}, []))[2]
        members = sorted(
            (o for (s, _), o in steps.items() if s == sop_id),
            key=lambda o: (order.index(o.step_id) if o.step_id in order else len(order), o.step_id or ""),
        )
        for outcome in (whole[sop_id], *members):
            _rates(outcome)
            out.append(outcome)
    return out


def _rates(o: StepOutcome) -> None:
    o.pending = max(0, o.planned - o.sent - sum(o.skipped.values()) - o.failed - o.unknown)
    o.reply_rate = Ratio(o.replied, o.sent)
    o.deletion_rate_24h = Ratio(o.deleted_24h, o.reached)
    o.deletion_rate_7d = Ratio(o.deleted_7d, o.reached)


def _left_out(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str | None], Counter[str]]:
    """Contacts the SOP runs decided in the period left out, by reason (every account: the
    run ledger is shared)."""
    from bot.sop.runtime.ledger import read_left_out  # the one reader of the run's note

    runs: Any = SopRun.__table__
    out: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    for sop_id, step_id, detail in session.execute(
        select(runs.c.sop_id, runs.c.step_id, runs.c.detail).where(
            runs.c.decided_at >= start,
            runs.c.decided_at < end,
            runs.c.detail.contains("left out ", autoescape=True),
        )
    ):
        for reason, n in read_left_out(detail).items():
            out[(sop_id, step_id)][reason.value] += n
    return out


def sop_names(folder: Path) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """SOP id → (name, step id → step name, step ids in file order), read from the SOP
    files as they are now; an unreadable file is left out (its ids are shown instead)."""
    from bot.config.errors import ConfigError
    from bot.config.yaml_source import load_yaml

    out: dict[str, tuple[str, dict[str, str], list[str]]] = {}
    if not folder.is_dir():
        return out
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            data = load_yaml(path).data
        except (ConfigError, OSError, ValueError):
            continue
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("id"), str)
            or not isinstance(data.get("steps"), list)
        ):
            continue
        step_names: dict[str, str] = {}
        order: list[str] = []
        for step in data["steps"]:
            if isinstance(step, dict) and isinstance(step.get("id"), str):
                order.append(step["id"])
                step_names[step["id"]] = str(step.get("name") or step["id"])
        out[data["id"]] = (str(data.get("name") or data["id"]), step_names, order)
    return out


# -- groups, orders, values ---------------------------------------------------------------------


def _groups(scope: _Scope, start: datetime, end: datetime) -> list[GroupLine]:
    rooms: Any = Room.__table__
    member_at_end = and_(
        or_(_M.c.joined_at.is_(None), _M.c.joined_at < end), or_(_M.c.left_at.is_(None), _M.c.left_at >= end)
    )
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for room_id, members, joins, leaves in scope.session.execute(
        select(
            _M.c.room_id,
            func.sum(case((member_at_end, 1), else_=0)),
            func.sum(case((and_(_M.c.joined_at >= start, _M.c.joined_at < end), 1), else_=0)),
            func.sum(case((and_(_M.c.left_at >= start, _M.c.left_at < end), 1), else_=0)),
        )
        .join(rooms, rooms.c.id == _M.c.room_id)
        .where(rooms.c.account_id.in_(scope.accounts))
        .group_by(_M.c.room_id)
    ):
        counts[room_id][:3] = [int(members or 0), int(joins or 0), int(leaves or 0)]
    # who spoke: one index-only probe per member at the end (room, contact, time)
    spoke = exists().where(
        _I.c.room_id == _M.c.room_id,
        _I.c.contact_id == _M.c.contact_id,
        _I.c.sent_at >= start,
        _I.c.sent_at < end,
    )
    for room_id, n in scope.session.execute(
        select(_M.c.room_id, func.count())
        .join(rooms, rooms.c.id == _M.c.room_id)
        .where(rooms.c.account_id.in_(scope.accounts), member_at_end, _M.c.contact_id.is_not(None), spoke)
        .group_by(_M.c.room_id)
    ):
        counts[room_id][3] = int(n)
    out = []
    for room_id, topic, group_type, dissolved in scope.session.execute(
        select(rooms.c.id, rooms.c.topic, rooms.c.group_type, rooms.c.dissolved).where(
            rooms.c.account_id.in_(scope.accounts)
        )
    ):
        members, joins, leaves, speakers = counts.get(room_id, [0, 0, 0, 0])
        if dissolved and not (members or joins or leaves):
            continue
        out.append(
            GroupLine(room_id, topic, group_type, members, joins, leaves, speakers, Ratio(speakers, members))
        )
    out.sort(key=lambda g: (-g.members, g.topic, g.room_id))
    return out


def _orders_by_tier(scope: _Scope, period: Period) -> list[TierOrders]:
    per_tier: dict[str, list[int]] = {tier: [0, 0] for tier in scope.ladder_ids}
    for tier, n, amount in scope.session.execute(
        select(_C.c.tier, func.count(), func.coalesce(func.sum(_T.c.amount_cents), 0))
        .join(_C, _C.c.id == _T.c.contact_id)
        .where(
            _T.c.account_id.in_(scope.accounts), _T.c.paid, _T.c.day >= period.start, _T.c.day <= period.end
        )
        .group_by(_C.c.tier)
    ):
        slot = per_tier.setdefault(scope.tier_id(tier), [0, 0])
        slot[0] += int(n)
        slot[1] += int(amount)
    ordered = sorted(per_tier.items(), key=lambda item: scope.rank(item[0]))
    return [TierOrders(tier, n, amount) for tier, (n, amount) in ordered]


def _top_values(scope: _Scope, period: Period, end: datetime, top: int) -> list[ContactValue]:
    """Contacts by what they bought up to the end of the period plus what the people they
    referred bought up to then; ranked in the database, the top ones read."""
    if top <= 0:
        return []
    referrals: Any = Referral.__table__
    paid = [_T.c.paid, _T.c.day <= period.end]
    pairs = (
        select(referrals.c.referrer_id, referrals.c.referred_id)
        .join(_C, _C.c.id == referrals.c.referrer_id)
        .where(_C.c.account_id.in_(scope.accounts), referrals.c.referred_id.is_not(None))
        .distinct()
        .subquery()
    )
    own = select(_T.c.contact_id.label("contact_id"), _T.c.amount_cents.label("cents")).where(
        _T.c.account_id.in_(scope.accounts), *paid
    )
    brought = (
        select(pairs.c.referrer_id.label("contact_id"), _T.c.amount_cents.label("cents"))
        .join(_T, _T.c.contact_id == pairs.c.referred_id)
        .where(*paid)
    )
    both = own.union_all(brought).subquery()
    total = func.sum(both.c.cents)
    ranked = [
        int(contact_id)
        for contact_id, value in scope.session.execute(
            select(both.c.contact_id, total)
            .group_by(both.c.contact_id)
            .having(total > 0)
            .order_by(total.desc(), both.c.contact_id)
            .limit(top)
        )
    ]
    if not ranked:
        return []
    lifetime: dict[int, int] = {}
    in_period: dict[int, int] = {}
    for contact_id, value, recent in scope.session.execute(
        select(
            _T.c.contact_id,
            func.sum(_T.c.amount_cents),
            func.sum(case((_T.c.day >= period.start, _T.c.amount_cents), else_=0)),
        )
        .where(_T.c.contact_id.in_(ranked), *paid)
        .group_by(_T.c.contact_id)
    ):
        lifetime[contact_id], in_period[contact_id] = int(value or 0), int(recent or 0)
    referred: dict[int, int] = {
        int(referrer): int(value or 0)
        for referrer, value in scope.session.execute(
            select(pairs.c.referrer_id, func.sum(_T.c.amount_cents))
            .join(_T, _T.c.contact_id == pairs.c.referred_id)
            .where(pairs.c.referrer_id.in_(ranked), *paid)
            .group_by(pairs.c.referrer_id)
        )
    }
    people = {
        row.id: row
        for row in scope.session.execute(
            select(_C.c.id, _C.c.name, _C.c.alias, _C.c.tier).where(_C.c.id.in_(ranked))
        )
    }
    return [
        ContactValue(
            contact_id=c,
            name=(people[c].alias or people[c].name) if c in people else str(c),
            tier=scope.tier_id(people[c].tier) if c in people else scope.ladder_ids[0],
            lifetime_cents=lifetime.get(c, 0),
            period_cents=in_period.get(c, 0),
            referred_cents=referred.get(c, 0),
        )
        for c in ranked
    ]


# -- success rates and the performance formula -------------------------------------------------


def _lead(scope: _Scope, start: datetime, end: datetime, friends_end: set[int]) -> Ratio:
    """引流成功率: people who became friends in the period through a request, a referral or
    a group (an older event with a greeting: a request), and are still friends at its end."""
    detail = _E.c.detail
    where = (
        _C.c.account_id.in_(scope.accounts),
        _E.c.kind == ContactEventKind.FRIEND_ADDED.value,
        _E.c.at >= start,
        _E.c.at < end,
        or_(detail.is_(None), detail.in_(LEAD_SOURCES), detail.not_in([s.value for s in AddSource])),
    )
    if friends_end == scope.people.friends:  # the friends now: the database can count
        stayed = case((and_(_C.c.is_friend, ~_C.c.blocked), _E.c.contact_id))
        came, kept = scope.session.execute(
            select(func.count(_E.c.contact_id.distinct()), func.count(stayed.distinct()))
            .join(_C, _C.c.id == _E.c.contact_id)
            .where(*where)
        ).one()
        return Ratio(int(kept), int(came))
    added = set(
        scope.session.execute(
            select(_E.c.contact_id).join(_C, _C.c.id == _E.c.contact_id).where(*where)
        ).scalars()
    )
    return Ratio(len(added & friends_end), len(added))


def _open_questions(scope: _Scope, start: datetime, end: datetime) -> int:
    """1:1 questions of the period whose outcome is not known yet: the messages after the
    rollups' service mark (about a day of them), read by id."""
    rows = scope.session.execute(
        select(_I.c.account_id, _I.c.room_id, _I.c.contact_id, _I.c.sent_at, _I.c.text)
        .where(_I.c.id > r.service_mark(scope.session))
        .order_by(_I.c.id)
    )
    accounts = set(scope.accounts)
    return sum(
        1
        for account, room, contact, sent_at, text in rows
        if account in accounts
        and room is None
        and contact is not None
        and sent_at is not None
        and start <= sent_at < end
        and r.is_question(text)
    )


def _performance(scope: _Scope, period: Period, reachable: set[int]) -> Performance:
    """私域业绩 = reachable × reach rate × conversion rate × average order value.

    Reached: the reachable contacts sent a marketing message (1:1) in the period, one
    index-only probe per contact (`outbox (contact_id, state, category, sent_at)`; only SOPs
    plan marketing messages). A buyer whose order's last touch was sent in the period was
    reached by it."""
    start, end = scope.bounds(period)
    sent = (
        _O.c.state == "sent",
        _O.c.category == Category.MARKETING.value,
        _O.c.sent_at >= start,
        _O.c.sent_at < end,
    )
    reached = 0
    if scope.session.execute(
        select(_O.c.id).where(_O.c.account_id.in_(scope.accounts), *sent).limit(1)
    ).first():
        query = select(_C.c.id).where(
            _C.c.account_id.in_(scope.accounts), exists().where(_O.c.contact_id == _C.c.id, *sent)
        )
        if reachable == scope.people.friends - scope.people.opted:  # as they are now: count there
            reached = _count(scope.session, query.where(_C.c.is_friend, ~_C.c.blocked, ~_C.c.opted_out))
        elif len(reachable) * 3 < len(scope.people.tiers):  # a few of the contacts: ask about them
            reached = sum(
                _count(scope.session, query.where(_C.c.id.in_(chunk))) for chunk in r.chunks(reachable)
            )
        else:
            reached = len(reachable.intersection(scope.session.execute(query).scalars()))
    window_days = scope.settings.results.order.days + 1
    orders = [
        (contact_id, int(amount))
        for contact_id, amount in scope.session.execute(
            select(_T.c.contact_id, _T.c.amount_cents).where(
                _T.c.account_id.in_(scope.accounts),
                _T.c.paid,
                _T.c.day >= period.start,
                _T.c.day <= period.end + timedelta(days=window_days),
                _T.c.last_sent_at >= start,
                _T.c.last_sent_at < end,
            )
        )
        if contact_id in reachable
    ]
    buyers = {c for c, _ in orders}
    reach_rate = Ratio(reached, len(reachable))
    conversion = Ratio(len(buyers), reached)
    average = sum(a for _, a in orders) / len(orders) if orders else 0.0
    value = len(reachable) * (reach_rate.value or 0) * (conversion.value or 0) * average
    return Performance(len(reachable), reach_rate, conversion, average, value)
