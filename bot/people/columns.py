"""What a contacts file may hold (`SCHEMA`): the columns that find the contact and the
profile fields with a meaning of their own. Every other column is a field of the operator's
own, named by its header. Kept apart from the importer so `--help` lists them cheaply.
"""

from __future__ import annotations

from bot.tables.spec import FieldSpec, Kind, Schema

KEYS = ("wxid", "phone", "unionid", "alias")  # what finds the contact, in this order

# fmt: off
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("wxid", "微信号", aliases=("wxid", "微信号", "微信id", "微信", "客户微信号", "weixin", "wechat"),
              help="the contact's wxid or 微信号"),
    FieldSpec("phone", "手机号", Kind.PHONE,
              aliases=("phone", "mobile", "手机", "手机号", "手机号码", "电话", "联系电话", "联系方式"),
              help="+86 138-0000-0001 is fine"),
    FieldSpec("unionid", "unionid", aliases=("unionid", "union_id", "微信unionid")),
    FieldSpec("alias", "备注", aliases=("备注", "备注名", "微信备注", "remark", "alias"),
              help="the remark name you gave the contact in WeChat; finds them when it is unique"),
    FieldSpec("birthday", "生日", aliases=("birthday", "生日", "出生日期", "生日日期", "公历生日"),
              help="1990-05-20, 05-20, 5月20日; lunar as 农历八月十五"),
    FieldSpec("lunar_birthday", "农历生日", aliases=("农历生日", "阴历生日", "lunar_birthday"),
              help="a lunar birthday: 八月十五, 08-15"),
    FieldSpec("gender", "性别", aliases=("gender", "sex", "性别"), help="男/女 (male/female, 先生/女士)"),
    FieldSpec("city", "城市", aliases=("city", "城市", "所在城市", "常住城市")),
    FieldSpec("tags", "标签", aliases=("tags", "标签", "客户标签"), help="several with , ， 、 or ;"),
    FieldSpec("account", "账号", aliases=("account", "账号", "导购账号"),
              help="only contacts of this account (its id in settings.toml)"),
)
# fmt: on
SCHEMA = Schema("contacts", FIELDS, required=(KEYS,))


def columns_help() -> str:
    """One line per column for `--help`."""
    parts = []
    for spec in FIELDS:
        names = ", ".join(a for a in spec.aliases if a != spec.label)
        need = " (one of 微信号/手机号/unionid/备注 finds the contact)" if spec.name in KEYS else ""
        parts.append(f"{spec.label}{need}: {names}")
    return (
        "Columns (any of these header names): "
        + " · ".join(parts)
        + " · any other column: a field of your own, named by its header (field:会员卡号)"
    )
