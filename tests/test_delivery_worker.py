"""The delivery worker on the sandbox WeChat: exactly once, paced, within the rules."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.clock import FrozenClock
from bot.delivery import control, ledger
from bot.instance import this_host
from bot.policies import Category, Guarantee, Origin, QuietPolicy
from bot.store.models import Contact, DeliveryWorker
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.transport import RiskControlError, TransientSendError
from bot.wechat.types import Image, LinkCard, Text
from tests.support import T0, TestBot, make_settings, outbox_rows, plan, sqlite_database
from tests.test_faults import LOCKER
from tests.waiting import PATIENCE

SHANGHAI_23H = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai


def ids(bot: TestBot, *wxids: str) -> list[int]:
    return [bot.contact(w).id for w in wxids]


def set_contact(bot: TestBot, wxid: str, **values: object) -> None:
    with bot.database.session() as s:
        s.execute(update(Contact).where(Contact.wxid == wxid).values(**values))


def test_a_planned_message_is_sent_once_even_when_planned_twice(testbot: TestBot) -> None:
    everyone = [c.id for c in testbot.contacts()]
    assert plan(testbot.database, everyone) == 20
    assert plan(testbot.database, everyone) == 0  # same (SOP, step, occurrence, recipient)
    sent = testbot.deliver()
    assert sorted(r.target.wxid for r in sent) == sorted(c.wxid for c in testbot.contacts())
    assert testbot.deliver() == []
    assert {r.state for r in outbox_rows(testbot.database)} == {"sent"}


def test_sends_keep_the_minimum_interval(testbot: TestBot) -> None:
    plan(testbot.database, [c.id for c in testbot.contacts()][:6])
    times = [r.at for r in testbot.deliver()]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert len(times) == 6
    assert min(gaps) >= 8.0  # min_interval
    assert max(gaps) <= 14.0 + 1  # plus at most `jitter`


def test_opted_out_contacts_get_replies_but_no_marketing(testbot: TestBot) -> None:
    set_contact(testbot, "wxid_zhang_min", opted_out=True)
    [zhang] = ids(testbot, "wxid_zhang_min")
    plan(testbot.database, [zhang])
    plan(testbot.database, [zhang], sop="reply", step="price", category=Category.REPLY, text="这款 199 元")
    sent = testbot.deliver()
    assert [r.content for r in sent] == [Text("这款 199 元")]
    skipped = [r for r in outbox_rows(testbot.database) if r.state == "skipped"]
    assert [r.reason for r in skipped] == ["contact opted out (退订)"]


def test_blocked_and_gone_recipients_are_skipped_and_remembered(testbot: TestBot) -> None:
    set_contact(testbot, "wxid_zhou_hao", blocked=True)
    testbot.transport.blocked.add("wxid_chen_jing")  # WeChat says so at send time
    plan(testbot.database, ids(testbot, "wxid_zhou_hao", "wxid_chen_jing", "wxid_lin_xiaoyu"))
    sent = testbot.deliver()
    assert [r.target.wxid for r in sent] == ["wxid_lin_xiaoyu"]
    reasons = {r.contact_id: r.reason for r in outbox_rows(testbot.database) if r.state == "skipped"}
    zhou, chen = ids(testbot, "wxid_zhou_hao", "wxid_chen_jing")
    assert reasons[zhou] == "contact deleted or blocked the account"
    assert "wxid_chen_jing is gone or has blocked the account" in reasons[chen]
    with testbot.database.session(read_only=True) as s:
        assert s.get(Contact, chen).blocked is True


def test_quiet_hours_wait_until_morning_or_skip(testbot: TestBot) -> None:
    testbot.clock.set(SHANGHAI_23H)
    lin, zhou = ids(testbot, "wxid_lin_xiaoyu", "wxid_zhou_hao")
    plan(testbot.database, [lin], at=SHANGHAI_23H)
    plan(testbot.database, [zhou], at=SHANGHAI_23H, quiet_policy=QuietPolicy.SKIP)
    assert testbot.run(testbot.worker.step("main")).sent == 0
    rows = {r.contact_id: r for r in outbox_rows(testbot.database)}
    assert rows[lin].state == "planned"
    assert rows[lin].not_before == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert (rows[zhou].state, rows[zhou].reason) == ("skipped", "inside quiet hours 22:00-08:00")
    testbot.clock.set(datetime(2026, 11, 25, 0, 0, 5, tzinfo=UTC))
    assert [r.target.wxid for r in testbot.deliver()] == ["wxid_lin_xiaoyu"]


def test_a_reply_at_night_still_goes_out(testbot: TestBot) -> None:
    testbot.clock.set(SHANGHAI_23H)
    plan(
        testbot.database, ids(testbot, "wxid_he_fang"), at=SHANGHAI_23H, category=Category.REPLY, text="在的"
    )
    assert len(testbot.deliver()) == 1


def test_daily_cap_gives_the_slots_to_higher_priority(testbot: TestBot) -> None:
    [guo] = ids(testbot, "wxid_guo_mei")
    plan(testbot.database, [guo], sop="daily", text="每日精选", priority=0)
    plan(testbot.database, [guo], sop="weekly", text="周三会员日", priority=0)
    later = T0 + timedelta(hours=5)
    plan(testbot.database, [guo], sop="festival", text="双12预告", priority=10, at=later)
    first = testbot.deliver()
    assert [r.content.text for r in first] == ["每日精选"]
    testbot.clock.set(later)
    assert [r.content.text for r in testbot.deliver()] == ["双12预告"]
    reasons = [r.reason for r in outbox_rows(testbot.database) if r.state == "skipped"]
    assert reasons == ["contact daily cap 2: today's slots go to higher-priority messages"]


def test_caps_per_day_and_week_and_lifecycle_is_exempt(testbot: TestBot) -> None:
    [tang] = ids(testbot, "wxid_tang_yan")
    for day in range(5):
        at = T0 + timedelta(days=day)
        testbot.clock.set(at)
        for n in range(2):
            plan(
                testbot.database,
                [tang],
                at=at,
                sop=f"sop{n}",
                occurrence=at.date().isoformat(),
                text=f"d{day}-{n}",
            )
        plan(testbot.database, [tang], at=at, sop="care", occurrence=at.date().isoformat(), text=f"关怀{day}",
             category=Category.LIFECYCLE)  # fmt: skip
        testbot.deliver()
    texts = [r.content.text for r in testbot.sent()]
    marketing = [t for t in texts if not t.startswith("关怀")]
    assert marketing == ["d0-0", "d0-1", "d1-0", "d1-1", "d2-0", "d2-1"]  # weekly cap 6
    assert [t for t in texts if t.startswith("关怀")] == [f"关怀{d}" for d in range(5)]
    reasons = {r.reason for r in outbox_rows(testbot.database) if r.state == "skipped"}
    assert reasons == {"contact weekly cap 6 reached"}


def test_risk_control_pauses_the_account_until_resumed(testbot: TestBot) -> None:
    plan(testbot.database, [c.id for c in testbot.contacts()][:3])
    testbot.transport.fail_next(RiskControlError("操作过于频繁，请稍后再试"))
    assert testbot.deliver() == []
    with testbot.database.session(read_only=True) as s:
        pause = control.pause_of(s, "main")
        assert pause is not None and pause.paused_by == "risk-control"
        assert "操作过于频繁" in pause.reason
    assert {r.state for r in outbox_rows(testbot.database)} == {"planned"}
    assert testbot.deliver() == []  # still paused
    with testbot.database.session() as s:
        assert control.resume(s, "main")
    assert len(testbot.deliver()) == 3


def test_transient_failures_retry_with_backoff_then_fail(testbot: TestBot) -> None:
    lin, zhou = ids(testbot, "wxid_lin_xiaoyu", "wxid_zhou_hao")
    plan(testbot.database, [lin])
    testbot.transport.fail_next(TransientSendError("timeout"), times=2)
    sent = testbot.deliver()
    assert [r.target.wxid for r in sent] == ["wxid_lin_xiaoyu"]
    [row] = outbox_rows(testbot.database)
    assert (row.state, row.attempts) == ("sent", 3)
    assert sent[0].at - T0 >= timedelta(seconds=30 + 60)  # backoff 30 s, then 60 s

    plan(testbot.database, [zhou], at=testbot.clock.now(), occurrence="again")
    testbot.transport.fail_next(TransientSendError("timeout"), times=5)
    testbot.deliver(max_wait=timedelta(hours=2))
    failed = [r for r in outbox_rows(testbot.database) if r.state == "failed"]
    assert [r.reason for r in failed] == ["gave up after 5 tries: TransientSendError: timeout"]


def test_expired_messages_are_skipped(testbot: TestBot) -> None:
    plan(testbot.database, ids(testbot, "wxid_lin_xiaoyu"), expires_at=T0 - timedelta(minutes=1))
    assert testbot.deliver() == []
    assert outbox_rows(testbot.database)[0].reason == "expired at 2026-11-24 09:59"


def test_a_group_gets_at_most_its_daily_cap(testbot: TestBot) -> None:
    from bot.delivery.outbox import PlannedMessage, enqueue
    from bot.store.models import Room

    with testbot.database.session() as s:
        room_id = s.execute(select(Room.id).where(Room.room_wxid == "10002@chatroom")).scalar_one()
        messages = [
            PlannedMessage(
                f"sop:group{n}:s:o:room:{room_id}",
                "main",
                Origin.SOP,
                [Text(f"群消息{n}")],
                T0,
                room_id=room_id,
            )
            for n in range(5)
        ]
        enqueue(s, messages, T0)
    sent = testbot.deliver()
    assert [r.content.text for r in sent] == ["群消息0", "群消息1", "群消息2"]
    assert all(r.target.is_room for r in sent)


def test_a_multi_part_message_resumes_after_the_part_that_failed(testbot: TestBot) -> None:
    parts = [
        Text("新品上市"),
        Image("https://img.example.com/a.jpg"),
        LinkCard("立即选购", "https://shop.example.com/1"),
    ]
    plan(testbot.database, ids(testbot, "wxid_wang_fang"), parts=parts)
    testbot.transport.fail_next(TransientSendError("timeout"))  # the first part fails
    testbot.run(testbot.worker.step("main"))
    assert testbot.sent() == []
    sent = testbot.deliver()
    assert [r.content for r in sent] == parts


# -- crash recovery -------------------------------------------------------------------


def claim_as_dead_worker(bot: TestBot) -> list[ledger.Claimed]:
    """A worker claims rows and dies before sending or confirming them."""
    with bot.database.session() as s:
        s.add(DeliveryWorker(id="dead", host=this_host(), pid=2**22 + 12345, started_at=T0, heartbeat_at=T0))
    with bot.database.session() as s:
        return ledger.claim_due(s, "main", bot.clock.now(), 100, "dead", bot.worker.rules).claimed


def test_without_confirmation_an_interrupted_send_becomes_unknown(testbot: TestBot) -> None:
    plan(testbot.database, ids(testbot, "wxid_lin_xiaoyu"))
    plan(testbot.database, ids(testbot, "wxid_zhou_hao"), guarantee=Guarantee.AT_LEAST_ONCE)
    assert len(claim_as_dead_worker(testbot)) == 2
    outcome = testbot.run(testbot.worker.recover(["main"]))
    assert outcome == {"sent": 0, "resent": 1, "unknown": 1}
    sent = testbot.deliver()
    assert [r.target.wxid for r in sent] == ["wxid_zhou_hao"]  # at-least-once was resent
    states = {r.contact_id: (r.state, r.reason) for r in outbox_rows(testbot.database)}
    [lin] = ids(testbot, "wxid_lin_xiaoyu")
    assert states[lin][0] == "unknown"
    assert "not resent (at-most-once)" in states[lin][1]


def test_with_a_journal_recovery_knows_what_went_out(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    settings = make_settings(tmp_path / "p")
    journal = tmp_path / "wechat-server.jsonl"
    with sqlite_database(tmp_path) as db:
        bot = TestBot(settings, db, clock, SandboxTransport("main", clock=clock, journal=journal)).start()
        try:
            lin, zhou = ids(bot, "wxid_lin_xiaoyu", "wxid_zhou_hao")
            plan(db, [lin, zhou])
            claimed = {c.contact_id: c for c in claim_as_dead_worker(bot)}
            # the dead worker got lin's message out, then died before recording it
            bot.run(
                bot.transport.send(
                    bot_target(claimed[lin]), Text("今日精选：羊绒围巾"), ref=f"{claimed[lin].key}#0"
                )
            )
            assert bot.run(bot.worker.recover(["main"])) == {"sent": 1, "resent": 1, "unknown": 0}
            resent = bot.deliver()
            assert [r.target.wxid for r in resent] == ["wxid_zhou_hao"]
            refs = list(journal.read_text(encoding="utf-8").splitlines())
            assert len(refs) == 2  # one send per recipient, in all
            assert {r.state for r in outbox_rows(db)} == {"sent"}
        finally:
            bot.close()


def bot_target(row: ledger.Claimed):  # type: ignore[no-untyped-def]
    from bot.wechat.types import Target

    return Target(row.target_wxid)


def test_a_live_workers_claims_are_left_alone(testbot: TestBot) -> None:
    plan(testbot.database, ids(testbot, "wxid_lin_xiaoyu"))
    with testbot.database.session() as s:
        control.register(s, "other-live-worker", T0)  # this process: alive
        ledger.claim_due(s, "main", T0, 10, "other-live-worker", testbot.worker.rules)
    assert testbot.run(testbot.worker.recover(["main"])) == {"sent": 0, "resent": 0, "unknown": 0}
    assert outbox_rows(testbot.database)[0].state == "sending"


@pytest.mark.parametrize("scope", ["main", "*"])
def test_operator_pause_and_resume(testbot: TestBot, scope: str) -> None:
    plan(testbot.database, ids(testbot, "wxid_lin_xiaoyu"))
    with testbot.database.session() as s:
        control.pause(s, scope, "双11 活动暂停", "operator", T0)
    assert testbot.deliver() == []
    with testbot.database.session() as s:
        control.resume(s, scope)
    assert len(testbot.deliver()) == 1


def test_a_cut_off_send_is_not_blindly_retried(testbot: TestBot) -> None:
    from bot.wechat.transport import DeliveryUncertainError

    lin, zhou = ids(testbot, "wxid_lin_xiaoyu", "wxid_zhou_hao")
    plan(testbot.database, [lin])
    plan(testbot.database, [zhou], guarantee=Guarantee.AT_LEAST_ONCE)
    testbot.transport.fail_next(DeliveryUncertainError("StreamTerminatedError: Connection lost"), times=2)
    sent = testbot.deliver()
    assert [r.target.wxid for r in sent] == ["wxid_zhou_hao"]  # at-least-once: tried again
    states = {r.contact_id: (r.state, r.reason) for r in outbox_rows(testbot.database)}
    assert states[lin][0] == "unknown"
    assert "cannot confirm it: not resent (at-most-once)" in states[lin][1]


def test_a_cut_off_send_the_transport_can_check_is_resent_only_if_lost(tmp_path: Path) -> None:
    from bot.wechat.transport import DeliveryUncertainError

    clock = FrozenClock(T0)
    settings = make_settings(tmp_path / "p")
    transport = SandboxTransport("main", clock=clock, journal=tmp_path / "journal.jsonl")
    with sqlite_database(tmp_path) as db:
        bot = TestBot(settings, db, clock, transport).start()
        try:
            plan(db, ids(bot, "wxid_lin_xiaoyu"))
            transport.fail_next(DeliveryUncertainError("timeout"))
            assert [r.target.wxid for r in bot.deliver()] == ["wxid_lin_xiaoyu"]
            assert [r.state for r in outbox_rows(db)] == ["sent"]
        finally:
            bot.close()


class LockingSandbox(SandboxTransport):
    """A WeChat whose first send is followed, at once, by another process locking the
    database: the worker cannot record that the part went out."""

    def __init__(self, database_path: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.database_path = database_path
        self.locker: subprocess.Popen[str] | None = None

    async def send(self, target, content, *, ref=None):  # type: ignore[no-untyped-def]
        receipt = await super().send(target, content, ref=ref)
        if self.locker is None:
            self.locker = await asyncio.to_thread(lock_database, self.database_path, 12)
        return receipt


def lock_database(path: Path, seconds: int) -> subprocess.Popen[str]:
    """Another process holds an exclusive lock on the SQLite file for `seconds`."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    return locker


def test_a_part_that_went_out_is_never_sent_again_when_the_database_cannot_record_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first part of a two-part message goes out, then the database is locked for longer
    than SQLite's busy timeout: the progress cannot be written. The part is not sent again
    (it used to be: the failed write took the generic retry path); once the database answers
    the progress is recorded and only the second part follows."""
    clock = FrozenClock(T0)
    settings = make_settings(tmp_path / "p")
    with sqlite_database(tmp_path) as db:
        transport = LockingSandbox(tmp_path / "sopbot.db", account_id="main", clock=clock)
        bot = TestBot(settings, db, clock, transport).start()
        try:
            parts = [Text("双12 会员专享"), LinkCard("会场", "https://shop.example.com/1212", "提前看")]
            plan(db, ids(bot, "wxid_wang_fang"), parts=parts)
            first = bot.run(bot.worker.step("main"))
            assert transport.locker is not None and first.paused == "database unavailable"
            assert "could not record progress of outbox" in caplog.text
            assert transport.locker.wait(PATIENCE) == 0  # the lock is gone
            sent = bot.deliver()
            refs = [r.ref for r in bot.sent()]
            assert [r.content for r in bot.sent()] == parts and len(sent) == 1  # part 2 only, now
            assert refs[0].endswith("#0") and refs[1].endswith("#1")
            assert [r.state for r in outbox_rows(db)] == ["sent"]
            assert "recorded" in caplog.text and "outcomes kept meanwhile" in caplog.text
        finally:
            bot.close()
