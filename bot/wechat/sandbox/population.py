"""The demo population of the sandbox: a store guide's WeChat account with customers at
every relationship tier, a few typed groups, the things people actually say, and how each
takes the account's messages (`bot.wechat.sandbox.customers` plays them):

- most answer a pushed (SOP) message now and then, within minutes (`replies`), and some buy
  after one (`buys`: the sandbox shop sends the order to sopbot);
- some have little patience: a second pushed message within a day (`tolerance: 1`), or any
  message at all (`deletes_after: 1`, 加了就删), and they delete the account (删粉);
- some cannot stand hard selling: a message with one of `HARD_SELL` (砍一刀, 集赞, …) and they
  delete the account right away (`offended_by`), so a "bad SOP" trips the brake in a demo;
- some never say a word (`silent`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.wechat.types import ContactInfo, RoomInfo


@dataclass(frozen=True)
class Persona:
    """A simulated customer: who they are, what they say, how they take messages."""

    contact: ContactInfo
    lines: tuple[str, ...]
    hello: str = ""  # a newcomer's friend request greeting
    replies: float = 0.0  # chance to answer a pushed (SOP) message, within minutes
    buys: float = 0.0  # chance to order after a message from the account
    tolerance: int | None = None  # pushed messages a day they put up with; one more: deleted
    deletes_after: int | None = None  # messages from the account before they delete it
    silent: bool = False  # never writes first, never answers
    offended_by: tuple[str, ...] = ()  # words in a message that make them delete at once


# Hard selling some people delete the account for, right after reading it: put one of these
# in a template and the sandbox shows what the brake does (docs/retention.md).
HARD_SELL = ("砍一刀", "帮忙转发", "转发朋友圈", "集赞")

BOT_ME = ContactInfo(wxid="wxid_sopbot_guide", name="小美 | 品牌导购", weixin="meimei_guide")


def _p(
    wxid: str,
    name: str,
    tags: tuple[str, ...],
    lines: tuple[str, ...],
    *,
    replies: float = 0.0,
    buys: float = 0.0,
    tolerance: int | None = None,
    deletes_after: int | None = None,
    silent: bool = False,
    offended_by: tuple[str, ...] = (),
    hello: str = "",
    friend: bool = True,
    **kw: str,
) -> Persona:
    contact = ContactInfo(wxid=wxid, name=name, tags=tags, is_friend=friend, **kw)
    return Persona(contact, lines, hello, replies, buys, tolerance, deletes_after, silent, offended_by)


_BROWSING = ("在吗？", "这个是正品吗", "你们店在哪里呀", "看看先～", "有试用装吗")
_DEALS = ("最近有什么活动吗？", "双11有优惠券吗", "会员日打几折呀", "满减还有吗", "能便宜点吗")
_NEW = ("上新了吗？", "新款什么时候到", "秋冬新品有图吗", "这季新色好看吗")
_BUYING = ("这款多少钱？", "怎么买呀，发个链接", "还有货吗，我要两件", "能包邮吗")
_HAPPY = ("收到了，很好用！", "质量不错，回购了", "朋友也想要，推荐给她了", "已经晒单啦")

# What people answer to a message the account pushed at them.
REPLIES = (
    "好的，谢谢～",
    "收到！",
    "这个不错，还有货吗",
    "有优惠券吗？",
    "看起来很好看",
    "多少钱呀",
    "已经下单啦",
    "下次再看看",
)

PERSONAS: tuple[Persona, ...] = (
    # 基础用户: just connected
    _p(
        "wxid_lin_xiaoyu",
        "林小雨",
        (),
        _BROWSING,
        replies=0.5,
        buys=0.05,
        offended_by=HARD_SELL,
        gender="female",
        city="杭州",
    ),
    _p("wxid_zhou_hao", "周浩", (), _BROWSING, silent=True, gender="male", city="上海"),
    _p(
        "wxid_chen_jing", "陈静", (), _BROWSING + _NEW, replies=0.3, tolerance=1, gender="female", city="苏州"
    ),
    _p(
        "wxid_wu_tingting",
        "吴婷婷",
        (),
        _BROWSING + _DEALS,
        replies=0.6,
        buys=0.1,
        offended_by=HARD_SELL,
        gender="female",
        city="南京",
    ),
    # 未购会员: interested, registered, no purchase in the period
    _p(
        "wxid_zhang_min",
        "张敏",
        ("未购会员",),
        _DEALS + _BUYING,
        replies=0.7,
        buys=0.3,
        gender="female",
        city="杭州",
    ),
    _p(
        "wxid_liu_yang",
        "刘洋",
        ("未购会员",),
        _NEW + _BUYING,
        replies=0.5,
        buys=0.2,
        offended_by=HARD_SELL,
        gender="male",
        city="北京",
    ),
    _p(
        "wxid_huang_lei",
        "黄蕾",
        ("未购会员",),
        _DEALS,
        replies=0.4,
        buys=0.1,
        tolerance=1,
        gender="female",
        city="宁波",
    ),
    _p("wxid_zhao_xue", "赵雪", ("未购会员",), _NEW, silent=True, gender="female", city="成都"),
    # 已购会员: one purchase in the period
    _p(
        "wxid_sun_li",
        "孙丽",
        ("已购会员",),
        _HAPPY + _NEW,
        replies=0.5,
        buys=0.2,
        gender="female",
        city="上海",
        phone="13800000001",
    ),
    _p(
        "wxid_ma_jun",
        "马骏",
        ("已购会员",),
        _HAPPY + _DEALS,
        replies=0.4,
        buys=0.2,
        offended_by=HARD_SELL,
        gender="male",
        city="广州",
        phone="13800000002",
    ),
    _p(
        "wxid_he_fang",
        "何芳",
        ("已购会员",),
        _BUYING + _HAPPY,
        replies=0.6,
        buys=0.3,
        gender="female",
        city="深圳",
        phone="13800000003",
    ),
    _p(
        "wxid_luo_qian",
        "罗倩",
        ("已购会员",),
        _NEW + _HAPPY,
        replies=0.3,
        buys=0.1,
        tolerance=2,
        gender="female",
        city="武汉",
        phone="13800000004",
    ),
    # 复购会员: several purchases in the period
    _p(
        "wxid_guo_mei",
        "郭美",
        ("复购会员",),
        _HAPPY + _NEW,
        replies=0.6,
        buys=0.4,
        gender="female",
        city="杭州",
        phone="13800000005",
    ),
    _p(
        "wxid_xu_na",
        "徐娜",
        ("复购会员",),
        _DEALS + _HAPPY,
        replies=0.5,
        buys=0.3,
        gender="female",
        city="上海",
        phone="13800000006",
    ),
    _p(
        "wxid_song_yu",
        "宋宇",
        ("复购会员",),
        _BUYING + _HAPPY,
        replies=0.4,
        buys=0.3,
        offended_by=HARD_SELL,
        gender="male",
        city="西安",
        phone="13800000007",
    ),
    _p(
        "wxid_tang_yan",
        "唐艳",
        ("复购会员",),
        _HAPPY,
        replies=0.3,
        buys=0.2,
        gender="female",
        city="长沙",
        phone="13800000008",
    ),
    # 品牌KOC: repeat buyers who brought others in
    _p(
        "wxid_wang_fang",
        "王芳",
        ("品牌KOC",),
        _HAPPY + _NEW,
        replies=0.8,
        buys=0.4,
        gender="female",
        city="杭州",
        phone="13800000009",
    ),
    _p(
        "wxid_li_na",
        "李娜",
        ("品牌KOC",),
        _HAPPY,
        replies=0.7,
        buys=0.3,
        gender="female",
        city="上海",
        phone="13800000010",
    ),
    _p(
        "wxid_feng_xiao",
        "冯晓",
        ("品牌KOC",),
        _HAPPY + _DEALS,
        replies=0.6,
        buys=0.3,
        gender="female",
        city="厦门",
        phone="13800000011",
    ),
    _p(
        "wxid_deng_chao",
        "邓超然",
        ("品牌KOC",),
        _HAPPY + _NEW,
        replies=0.5,
        buys=0.2,
        offended_by=HARD_SELL,
        gender="male",
        city="重庆",
        phone="13800000012",
    ),
)

ROOMS: tuple[RoomInfo, ...] = (
    RoomInfo(
        room_wxid="10001@chatroom",
        topic="【基础客户群】小美好物分享1群",
        owner_wxid=BOT_ME.wxid,
        member_wxids=(
            BOT_ME.wxid,
            "wxid_lin_xiaoyu",
            "wxid_zhou_hao",
            "wxid_chen_jing",
            "wxid_wu_tingting",
            "wxid_zhang_min",
            "wxid_liu_yang",
            "wxid_huang_lei",
            "wxid_zhao_xue",
            "wxid_sun_li",
        ),
    ),
    RoomInfo(
        room_wxid="10002@chatroom",
        topic="【精英会员群】小美VIP会员专享",
        owner_wxid=BOT_ME.wxid,
        member_wxids=(
            BOT_ME.wxid,
            "wxid_guo_mei",
            "wxid_xu_na",
            "wxid_song_yu",
            "wxid_tang_yan",
            "wxid_wang_fang",
            "wxid_li_na",
            "wxid_ma_jun",
            "wxid_he_fang",
        ),
    ),
    RoomInfo(
        room_wxid="10003@chatroom",
        topic="【分销群】小美推广大使",
        owner_wxid=BOT_ME.wxid,
        member_wxids=(BOT_ME.wxid, "wxid_wang_fang", "wxid_li_na", "wxid_feng_xiao", "wxid_deng_chao"),
    ),
)

# People not yet connected: they send friend requests or are invited into groups. Then they
# talk like the others and take the account's messages their own way.
NEWCOMERS: tuple[Persona, ...] = (
    _p("wxid_new_qiao", "乔悦", (), _NEW + _BUYING, hello="你好，小红书上看到你们家的面霜，想了解一下",
       friend=False, replies=0.8, buys=0.3),
    _p("wxid_new_fang", "方琳", (), _BROWSING + _BUYING, hello="王芳推荐我加你的～", friend=False,
       replies=0.6, buys=0.2),
    _p("wxid_new_ye", "叶子", (), _BROWSING, hello="朋友圈看到新品了，想问问价格", friend=False,
       deletes_after=1),
    _p("wxid_new_tao", "陶然", (), _DEALS, hello="门店扫码加的，领一下见面礼", friend=False, replies=0.5,
       buys=0.2, tolerance=1),
    _p("wxid_new_bai", "白露", (), _NEW + _HAPPY, hello="你好，李娜介绍的", friend=False, replies=0.7,
       buys=0.3),
    _p("wxid_new_jiang", "江晴", (), _BROWSING, hello="想进会员群", friend=False, silent=True),
)  # fmt: skip

_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦许何吕施张孔曹严华金魏陶姜谢邹苏潘"
_GIVEN = ("欣怡", "子涵", "雨桐", "思雨", "可欣", "佳怡", "梓涵", "诗涵", "晨曦", "若汐", "一诺", "安然",
          "浩然", "子轩", "宇航", "俊杰", "嘉怡", "静怡", "梦瑶", "天宇")  # fmt: skip
_GREETINGS = (
    "你好，朋友圈看到的",
    "门店扫码加的",
    "小红书来的，想问问",
    "直播间看到的，想了解一下",
    "你好，想领见面礼",
    "",
)


def stranger(number: int, rng: random.Random) -> Persona:
    """The `number`th made-up newcomer once the scripted ones are used up; who they are
    and how they behave come from `rng` (the sandbox's seeded random)."""
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
    roll = rng.random()  # a fifth leave after the first message, a few more after a second a day,
    # a fifth cannot stand hard selling
    return _p(
        f"wxid_new_{number:04d}", name, (), rng.choice((_BROWSING, _DEALS, _NEW, _BUYING)) + _HAPPY[:2],
        hello=rng.choice(_GREETINGS), friend=False, replies=round(rng.uniform(0.2, 0.8), 2),
        buys=round(rng.uniform(0.0, 0.3), 2), silent=rng.random() < 0.1,
        deletes_after=1 if roll < 0.2 else None, tolerance=1 if 0.2 <= roll < 0.35 else None,
        offended_by=HARD_SELL if roll >= 0.8 else (),
    )  # fmt: skip
