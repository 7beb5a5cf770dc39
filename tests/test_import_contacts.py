"""`sopbot import-contacts`: a CRM list (GBK CSV or xlsx) sets birthdays (solar and lunar),
gender, city, tags and fields of the operator's own; rows that find nobody wait for their
person; bad rows are named by line. Imported birthdays show in `sopbot plan` on their days
and the shipped birthday SOP sends on them (testbot, injected clock)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.store.models import Contact, OutboxMessage, PendingProfile
from tests.signals_kit import cli
from tests.support import TestBot, make_settings, sqlite_database

REPO = Path(__file__).resolve().parents[1]
START = datetime(2027, 5, 18, 16, 0, tzinfo=UTC)  # 2027-05-19 00:00 in Shanghai
HEADER = ["客户微信号", "手机号", "姓名", "生日", "农历生日", "性别", "城市", "会员卡号", "客户标签"]
ROWS = [
    ["wxid_sun_li", "", "孙丽", "1990/5/20", "", "女", "杭州", "VIP001", "会员、老客"],  # 05-20
    ["wxid_xu_na", "", "徐娜", "", "八月十五", "女", "上海", "VIP002", ""],  # 农历: 2027-09-15
    ["", "+86 138-0000-0001", "", "", "", "", "", "VIP003", ""],  # 孙丽 again, by her phone
    ["wxid_newcomer", "", "新朋友", "12-01", "", "男", "苏州", "VIP004", "会员"],  # nobody yet
    ["wxid_li_na", "", "", "2月30日", "", "", "", "", ""],  # broken: no such day
    ["", "", "无名", "05-01", "", "", "", "", ""],  # broken: nothing finds the contact
]


def gbk_csv(rows: list[list[str]]) -> bytes:
    return "\n".join(",".join(row) for row in [HEADER, *rows]).encode("gbk")


def xlsx(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "客户"
    for row in [HEADER, *rows]:
        sheet.append(row)
    sheet["D2"] = datetime(1990, 5, 20)  # Excel keeps a date cell as a date
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


class Project:
    def __init__(self, root: Path) -> None:
        folder = root / "project"
        (folder / "sop").mkdir(parents=True)
        for name in ("birthday.yaml", "catalog.yaml", "groups.yaml"):
            shutil.copy(REPO / "sop" / name, folder / "sop")
        shutil.copytree(REPO / "templates", folder / "templates")
        self.settings = make_settings(folder, f'database_url = "sqlite:///{root / "sopbot.db"}"\n')
        self.folder = folder
        self.clock = FrozenClock(START)
        self._db = sqlite_database(root)
        self.database = self._db.__enter__()
        self.bot = TestBot(self.settings, self.database, self.clock).start()

    def close(self) -> None:
        self.bot.close()
        self._db.__exit__(None, None, None)

    def contact(self, wxid: str) -> Contact:
        with self.database.session(read_only=True) as session:
            return session.execute(select(Contact).where(Contact.wxid == wxid)).scalar_one()

    def birthday_rows(self) -> list[OutboxMessage]:
        with self.database.session(read_only=True) as session:
            query = select(OutboxMessage).where(OutboxMessage.sop_id == "birthday").order_by(OutboxMessage.id)
            return list(session.execute(query).scalars())


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    built = Project(tmp_path)
    try:
        yield built
    finally:
        built.close()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_crm_list_sets_profiles_names_bad_rows_and_is_idempotent(project: Project, kind: str) -> None:
    path = project.folder / f"contacts.{kind}"
    path.write_bytes(gbk_csv(ROWS) if kind == "csv" else xlsx(ROWS))
    code, output = cli(project.settings, "import-contacts", str(path))
    where = "contacts.csv:" if kind == "csv" else "contacts.xlsx:客户!"
    assert code == 1, output
    assert f"{where}6: 生日: '2月30日': there is no day 02-30" in output
    assert f"{where}7: 微信号/手机号/unionid/备注: empty: nothing finds this contact" in output
    assert "fields of your own: 姓名, 会员卡号" in output
    assert (
        "3 rows found 2 contacts (2 changed, 0 already so)" in output
        and "1 rows name no contact yet" in output
    )

    sun, xu = project.contact("wxid_sun_li"), project.contact("wxid_xu_na")
    assert (sun.birthday, sun.gender, sun.city) == ("1990-05-20", "女", "杭州")
    assert sun.custom_fields == {"姓名": "孙丽", "会员卡号": "VIP003"}  # the later row, found by phone
    assert (xu.birthday, xu.custom_fields) == ("农历08-15", {"姓名": "徐娜", "会员卡号": "VIP002"})
    assert project.contact("wxid_li_na").birthday is None  # the bad row changed nothing
    listed = cli(project.settings, "contacts", "--where", "field:会员卡号 in (VIP002, VIP003)")[1]
    assert "孙丽" in listed and "徐娜" in listed and "2 contacts" in listed

    again = cli(project.settings, "import-contacts", str(path))[1]
    assert "3 rows found 2 contacts (0 changed, 2 already so)" in again and "(0 new or changed)" in again
    with project.database.session(read_only=True) as session:
        assert len(session.execute(select(PendingProfile)).all()) == 1


def test_a_waiting_row_is_applied_when_its_person_becomes_a_friend(project: Project) -> None:
    path = project.folder / "contacts.csv"
    path.write_bytes(gbk_csv(ROWS[3:4]))
    assert cli(project.settings, "import-contacts", str(path))[0] == 0
    project.bot.request_friend("wxid_newcomer", "新朋友")
    project.bot.settle()
    newcomer = project.contact("wxid_newcomer")
    assert (newcomer.birthday, newcomer.gender, newcomer.city) == ("12-01", "男", "苏州")
    assert newcomer.custom_fields == {"姓名": "新朋友", "会员卡号": "VIP004"}
    with project.database.session(read_only=True) as session:
        assert session.execute(select(PendingProfile)).all() == []  # done


def test_imported_birthdays_show_in_plan_and_the_birthday_sop_sends_on_them(project: Project) -> None:
    path = project.folder / "contacts.csv"
    path.write_bytes(gbk_csv(ROWS[:2]))
    assert cli(project.settings, "import-contacts", str(path))[0] == 0

    may = cli(project.settings, "plan", "--from", "2027-05-19", "--days", "3", "--sop", "birthday")[1]
    assert _days_with_birthdays(may) == ["2027-05-20"], may
    september = cli(project.settings, "plan", "--from", "2027-09-13", "--days", "5", "--sop", "birthday")[1]
    assert _days_with_birthdays(september) == ["2027-09-15"], september  # 中秋 2027: 八月十五

    service = project.bot.daemon.services.sop
    project.clock.set(START + timedelta(days=1, hours=9, minutes=31))  # 2027-05-20 09:31
    project.bot.run(service.tick())
    sent_to = {row.contact_id for row in project.birthday_rows()}
    assert sent_to == {project.contact("wxid_sun_li").id}
    assert project.birthday_rows()[0].payload[0]["text"].startswith("孙丽，生日快乐")


def test_a_lunar_birthday_sends_on_its_lunar_date(tmp_path: Path) -> None:
    project = Project(tmp_path)
    try:
        path = project.folder / "contacts.csv"
        path.write_bytes(gbk_csv(ROWS[1:2]))
        assert cli(project.settings, "import-contacts", str(path))[0] == 0
        service = project.bot.daemon.services.sop
        project.clock.set(datetime(2027, 9, 14, 1, 31, tzinfo=UTC))  # 09-14 09:31: the day before
        project.bot.run(service.tick())
        assert project.birthday_rows() == []
        project.clock.set(datetime(2027, 9, 15, 1, 31, tzinfo=UTC))  # 中秋, 09:31
        project.bot.run(service.tick())
        assert [row.contact_id for row in project.birthday_rows()] == [project.contact("wxid_xu_na").id]
        assert project.birthday_rows()[0].occurrence.startswith("2027-09-15")
    finally:
        project.close()


def _days_with_birthdays(plan_output: str) -> list[str]:
    """The days of `sopbot plan` under which the birthday step is listed."""
    days, current = [], None
    for line in plan_output.splitlines():
        if line[:4].isdigit() and line[4:5] == "-":
            current = line[:10]
        elif ("生日祝福" in line or "greeting" in line) and current and current not in days:
            days.append(current)
    return days


def test_the_operators_own_column_names_come_from_sop_columns_yaml(project: Project) -> None:
    (project.folder / "sop" / "columns.yaml").write_text(
        "contacts:\n  columns:\n    好友微信: wxid\n    内部编号: ignore\n    宝宝生日: 宝宝生日\n",
        encoding="utf-8",
    )
    path = project.folder / "crm.csv"
    path.write_text("好友微信,内部编号,城市\nwxid_sun_li,X-17,南京\n", encoding="utf-8")
    code, output = cli(project.settings, "import-contacts", str(path))
    assert code == 2, output  # 宝宝生日 is no field: the mapping is refused, with its line
    assert "columns.yaml:5: contacts.columns.宝宝生日: '宝宝生日' is not a field" in output
    assert project.contact("wxid_sun_li").city == "上海"  # nothing imported

    (project.folder / "sop" / "columns.yaml").write_text(
        "contacts:\n  columns:\n    好友微信: wxid\n    内部编号: ignore\n", encoding="utf-8"
    )
    code, output = cli(project.settings, "import-contacts", str(path))
    assert code == 0, output
    sun = project.contact("wxid_sun_li")
    assert sun.city == "南京" and not sun.custom_fields  # 内部编号 is ignored, not a field


def test_a_remark_two_contacts_share_is_not_applied_and_an_account_column_limits_the_search(
    project: Project,
) -> None:
    with project.database.session() as session:
        for wxid in ("wxid_sun_li", "wxid_xu_na"):
            session.execute(select(Contact).where(Contact.wxid == wxid)).scalar_one().alias = "老顾客"
        session.execute(select(Contact).where(Contact.wxid == "wxid_li_na")).scalar_one().alias = "李老师"
    path = project.folder / "crm.csv"
    path.write_text("备注,账号,城市\n老顾客,,南京\n李老师,other,厦门\n李老师,main,成都\n", encoding="utf-8")
    code, output = cli(project.settings, "import-contacts", str(path))
    assert code == 1, output
    assert "crm.csv:2: 备注 '老顾客' is on several contacts of one account" in output
    assert project.contact("wxid_sun_li").city == "上海" and project.contact("wxid_xu_na").city != "南京"
    assert project.contact("wxid_li_na").city == "成都"  # only the row for account main found her
    assert "1 rows name no contact yet" in output  # the row for account other waits
