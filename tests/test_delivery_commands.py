"""Operators steer delivery: `sopbot outbox/pause/resume` and #commands in chat."""

from __future__ import annotations

from pathlib import Path

from bot.clock import FrozenClock
from bot.delivery import control
from tests.support import T0, TestBot, make_settings, outbox_rows, plan, sqlite_database
from tests.test_cli import sopbot


def admin_bot(tmp_path: Path) -> TestBot:
    settings = make_settings(tmp_path / "p", '[delivery]\nadmins = ["wxid_wang_fang"]\n')
    database = sqlite_database(tmp_path).__enter__()
    return TestBot(settings, database, FrozenClock(T0)).start()


def test_admin_chat_commands(tmp_path: Path) -> None:
    bot = admin_bot(tmp_path)
    try:
        plan(bot.database, [bot.contact("wxid_lin_xiaoyu").id])
        bot.say("wxid_wang_fang", "#pause 双11 前先停一下")
        replies = bot.deliver()
        assert [r.content.text for r in replies] == ["已暂停账号 main 的发送"]  # the answer still goes out
        with bot.database.session(read_only=True) as s:
            assert control.pause_of(s, "main").reason == "双11 前先停一下"
        bot.say("wxid_wang_fang", "#status")
        status = bot.deliver()[-1].content.text
        assert status.startswith("账号 main：") and "待发 1" in status and "已暂停：双11 前先停一下" in status
        bot.say("wxid_wang_fang", "#resume")
        texts = [r.content.text for r in bot.deliver()]
        assert texts[0] == "已恢复账号 main 的发送"
        assert "今日精选：羊绒围巾" in texts  # the paused campaign goes out after resume
    finally:
        bot.close()


def test_hash_commands_from_anyone_else_are_ignored(tmp_path: Path) -> None:
    bot = admin_bot(tmp_path)
    try:
        bot.say("wxid_zhou_hao", "#pause")
        bot.say("wxid_wang_fang", "#pause", room="10002@chatroom")  # only in 1:1 chats
        assert bot.deliver() == []
        with bot.database.session(read_only=True) as s:
            assert control.pauses(s) == []
    finally:
        bot.close()


def test_outbox_pause_resume_from_the_command_line(tmp_path: Path) -> None:
    project = tmp_path / "p"
    settings = make_settings(project, "")
    with sqlite_database(project / "data") as database:
        pass
    assert sopbot(project, "db", "upgrade").returncode == 0
    clock = FrozenClock(T0)
    from bot.store import Database

    database = Database(settings.resolved_database_url)
    bot = TestBot(settings, database, clock).start()
    try:
        plan(database, [c.id for c in bot.contacts()][:3])
        bot.deliver()
        plan(database, [bot.contact("wxid_zhou_hao").id], occurrence="later", text="周三会员日")
        long_text = "双12预告：" + "好物清单，" * 60 + "全文到此为止"
        plan(database, [bot.contact("wxid_zhou_hao").id], sop="brackets", occurrence="y", text="[/] [bold]不是格式[/bold]")
        plan(database, [bot.contact("wxid_zhou_hao").id], sop="festival", occurrence="x", text=long_text)
        zhou = bot.contact("wxid_zhou_hao").name
    finally:
        bot.close()

    listing = sopbot(project, "outbox")
    assert listing.returncode == 0, listing.stderr
    assert "[/]" in listing.stdout and "[bold]不是" in listing.stdout  # text, not rich markup (crashed on [/])
    assert "planned 3  sending 0  sent 3  skipped 0  failed 0  unknown 0" in listing.stdout
    # the counts obey the filters
    daily = sopbot(project, "outbox", "--sop", "daily").stdout
    assert "planned 1  sending 0  sent 3" in daily
    to_zhou = sopbot(project, "outbox", "--contact", zhou).stdout
    assert "planned 3  sending 0" in to_zhou and "周三会员日" in to_zhou
    rows = [cells for line in to_zhou.splitlines() if line.startswith("│") and (cells := line.split("│"))[1].strip()]
    assert rows and {row[4].strip() for row in rows} == {zhou}
    # the rows were written at the test clock's 2026-11-24, long before today
    assert "planned 0  sending 0  sent 0" in sopbot(project, "outbox", "--today").stdout
    assert "planned 3  sending 0  sent 3" in sopbot(project, "outbox", "--since", "2026-11-24").stdout
    assert "planned 0  sending 0  sent 0" in sopbot(project, "outbox", "--since", "2999-01-01").stdout
    unknown = sopbot(project, "outbox", "--sop", "dialy")
    assert unknown.returncode == 2 and "no SOP 'dialy'" in unknown.stderr and "daily" in unknown.stderr
    assert sopbot(project, "outbox", "--contact", "没有这个人").returncode == 2
    assert sopbot(project, "outbox", "--since", "soon").returncode == 2
    [number] = [line.split("│")[1].strip() for line in to_zhou.splitlines() if "festival/pick" in line]
    whole = sopbot(project, "outbox", "--show", number).stdout
    assert long_text in whole and "festival/pick @ x" in whole
    assert "周三会员日" in listing.stdout and "daily/pick" in listing.stdout
    only_sent = sopbot(project, "outbox", "--state", "sent").stdout
    assert "周三会员日" not in only_sent

    assert sopbot(project, "pause", "--reason", "账号异常").stdout.strip() == "paused all accounts: 账号异常"
    assert "PAUSED all accounts: 账号异常 (by cli)" in sopbot(project, "outbox").stdout
    assert sopbot(project, "pause", "--account", "nope").returncode == 2
    assert sopbot(project, "resume").stdout.strip() == "resumed all accounts"
    assert sopbot(project, "resume").stdout.strip() == "all accounts was not paused"
    bad = sopbot(project, "outbox", "--state", "lost")
    assert bad.returncode == 2 and "--state must be one of" in bad.stderr
    assert [r.state for r in outbox_rows(Database(settings.resolved_database_url))].count("sent") == 3


def test_the_outlook_says_quiet_hours_hold_messages_and_status_tells_admins(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.delivery.outlook import outlook

    bot = admin_bot(tmp_path)
    night = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    try:
        bot.clock.set(night)
        plan(bot.database, [bot.contact("wxid_lin_xiaoyu").id, bot.contact("wxid_zhou_hao").id], at=night)
        assert bot.deliver(max_wait=timedelta(0)) == []  # deferred to 08:00
        seen = outlook(bot.daemon.context, None, night)
        assert seen.quiet_now and seen.held == 2
        line = seen.describe(bot.settings.tz)
        assert "account main online, 2 queued" in line
        assert "quiet hours 22:00-08:00 hold 2 until 08:00" in line and "no SOP send scheduled" in line
        bot.say("wxid_wang_fang", "#status")
        status = bot.deliver(max_wait=timedelta(0))[-1].content.text
        assert "免打扰时段 22:00-08:00：2 条消息等到 08:00 再发" in status, status
    finally:
        bot.close()
