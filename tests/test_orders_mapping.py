"""Column names of one's own: `sop/columns.yaml` and `--mapping FILE` (header → field, and
values), the import saying what it recognised and what it did not use, mistakes in the
mapping file pointing at their line, and `--help` listing the columns and presets."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.sop.authoring.check import check_all
from bot.store import Database
from bot.store.models import Contact, Order
from bot.wechat.types import ContactInfo
from tests.signals_kit import REPO, cli
from tests.test_orders_csv import seed, settle

MINI_SHOP = (
    "流水号,买家微信号,实收金额,成交日期,交易状态,活动名称,门店,备注\n"
    'M1,sunli_88,"¥1,299.00",{day1},已签收,双11满减,静安店,\n'
    "M2,sunli_88,88元,{day2},已签收,,静安店,老客\n"
    "M3,wxid_ma_jun,￥66,{day2},售后完成,,徐汇店,\n"
)
COLUMNS_YAML = """\
orders:
  - name: 我的小程序商城
    detect: [流水号, 实收金额]
    columns:
      流水号: order_id
      成交日期: ordered_at
      交易状态: status
      活动名称: discount
      备注: ignore
    values:
      status:
        已签收: paid
        售后完成: refunded
"""


def _project(tmp_path: Path, clock: FrozenClock) -> tuple[Settings, Database, Path]:
    settings, database = settle(tmp_path, clock)
    seed(
        database,
        clock,
        ContactInfo("wxid_sun_li", "孙丽", weixin="sunli_88"),
        ContactInfo("wxid_ma_jun", "马骏"),
    )
    now = clock.now().astimezone(settings.tz)
    path = tmp_path / "mini.csv"
    day1 = (now - timedelta(days=20)).strftime("%Y年%m月%d日 %H:%M")
    day2 = (now - timedelta(days=5)).strftime("%Y/%m/%d %H:%M:%S")
    path.write_bytes(MINI_SHOP.format(day1=day1, day2=day2).encode("utf-8-sig"))
    return settings, database, path


def _orders(database: Database) -> dict[str, Order]:
    with database.session(read_only=True) as session:
        return {o.order_id: o for o in session.execute(select(Order)).scalars()}


def test_an_export_nobody_knows_is_refused_whole_and_says_why(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database, path = _project(tmp_path, clock)
    code, output = cli(settings, "import-orders", str(path))
    assert code == 1
    assert f"{path}:1: header: no column for order_id (订单号), ordered_at (下单时间)" in output, output
    assert _orders(database) == {}
    database.dispose()


def test_sop_columns_yaml_names_ones_own_columns_and_values(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database, path = _project(tmp_path, clock)
    (settings.sop_path / "columns.yaml").write_text(COLUMNS_YAML, encoding="utf-8")
    code, output = cli(settings, "import-orders", str(path))
    assert code == 0, output
    assert "read as a 我的小程序商城 export (sop/columns.yaml:2: 流水号, 实收金额)" in output, output
    assert "3 rows: 3 new" in output
    # not silently dropped: a column nothing reads is named; `ignore` keeps one quiet
    assert "columns not used: 门店 (name them in sop/columns.yaml if they matter)" in output
    assert "备注" not in output.split("columns not used:")[1]
    stored = _orders(database)
    with database.session(read_only=True) as session:
        sun = session.execute(select(Contact.id, Contact.tier).where(Contact.wxid == "wxid_sun_li")).one()
    assert stored["M1"].amount_cents == 129900 and stored["M1"].discounted  # 活动名称 → 活动喜好型's signal
    assert stored["M2"].amount_cents == 8800 and not stored["M2"].discounted
    assert stored["M3"].status == "refunded"
    assert stored["M1"].contact_id == stored["M2"].contact_id == sun.id  # found by 微信号
    assert sun.tier == "repeat"
    assert stored["M1"].ordered_at is not None
    database.dispose()


def test_a_mapping_file_given_on_the_command_line(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database, path = _project(tmp_path, clock)
    mapping = tmp_path / "mine.yaml"
    mapping.write_text(
        "orders:\n  columns:\n    流水号: order_id\n    成交日期: ordered_at\n    交易状态: status\n"
        "  values:\n    status:\n      已签收: paid\n      售后完成: cancelled\n",
        encoding="utf-8",
    )
    code, output = cli(settings, "import-orders", "--mapping", str(mapping), str(path))
    assert code == 0, output
    assert "read by column names (no shop export recognised)" in output
    assert "columns not used: 门店, 备注" in output  # 活动名称 is a name every file may use
    assert _orders(database)["M1"].discounted and _orders(database)["M3"].status == "cancelled"
    database.dispose()


def test_mistakes_in_the_mapping_file_point_at_the_line(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database, path = _project(tmp_path, clock)
    (settings.sop_path / "columns.yaml").write_text(
        "orders:\n  columns:\n    流水号: order_number\n  values:\n    status:\n      已签收: done\n"
        "    amount:\n      免费: 0\nproducts: {}\n",
        encoding="utf-8",
    )
    code, output = cli(settings, "import-orders", str(path))
    assert code == 2
    lines = output.splitlines()
    assert any(
        line.startswith("sop/columns.yaml:3: orders.columns.流水号: 'order_number' is not a field")
        for line in lines
    )
    assert (
        "sop/columns.yaml:6: orders.values.status.已签收: 'done' is not one of: paid, refunded, cancelled, unpaid"
        in lines
    )
    assert any(
        line.startswith("sop/columns.yaml:7: orders.values.amount: amount is read as amount")
        for line in lines
    )
    assert "sop/columns.yaml:9: products: unknown section (known: orders, contacts)" in lines
    assert lines[-1] == "sopbot: the column mapping has mistakes; nothing was imported"
    assert _orders(database) == {}
    database.dispose()


def test_sopbot_check_reads_the_mapping_file_as_a_mapping_and_names_its_mistakes(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings, database, _ = _project(tmp_path, clock)
    (settings.sop_path / "columns.yaml").write_text(COLUMNS_YAML, encoding="utf-8")
    _, issues = check_all(settings, clock.now())
    assert [str(issue) for issue in issues if "columns" in issue.file] == []  # not read as an SOP
    (settings.sop_path / "columns.yaml").write_text(
        "orders:\n  columns:\n    流水号: order_no\ncontacts:\n  columns:\n    好友: wechat_id\n",
        encoding="utf-8",
    )
    _, issues = check_all(settings, clock.now())
    found = [str(issue) for issue in issues if "columns" in issue.file]
    assert len(found) == 2, found
    assert "columns.yaml:3: orders.columns.流水号: 'order_no' is not a field" in found[0]
    assert "columns.yaml:6: contacts.columns.好友: 'wechat_id' is not a field" in found[1]
    database.dispose()


def test_help_lists_the_columns_and_the_presets(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "import-orders", "--help"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for shown in (
        "订单号",
        "买家微信号",
        "实付金额",
        "是否优惠",
        "退款状态",
        "--mapping",
        "sop/columns.yaml",
    ):
        assert shown in text, shown
    for preset in (
        "有赞 (youzan): 订单号 + 订单实付金额",
        "微店 (weidian)",
        "淘宝/天猫 (taobao)",
        "抖店 (doudian): 主订单编号",
    ):
        assert preset in text, preset
