"""The demo population of the sandbox: a store guide's WeChat account with customers at
every relationship tier, a few typed groups, and the things people actually say."""

from __future__ import annotations

from dataclasses import dataclass

from bot.wechat.types import ContactInfo, RoomInfo


@dataclass(frozen=True)
class Persona:
    contact: ContactInfo
    lines: tuple[str, ...]


BOT_ME = ContactInfo(wxid="wxid_sopbot_guide", name="小美 | 品牌导购", weixin="meimei_guide")


def _p(wxid: str, name: str, tags: tuple[str, ...], lines: tuple[str, ...], **kw: str) -> Persona:
    return Persona(ContactInfo(wxid=wxid, name=name, tags=tags, **kw), lines)


_BROWSING = ("在吗？", "这个是正品吗", "你们店在哪里呀", "看看先～", "有试用装吗")
_DEALS = ("最近有什么活动吗？", "双11有优惠券吗", "会员日打几折呀", "满减还有吗", "能便宜点吗")
_NEW = ("上新了吗？", "新款什么时候到", "秋冬新品有图吗", "这季新色好看吗")
_BUYING = ("这款多少钱？", "怎么买呀，发个链接", "还有货吗，我要两件", "能包邮吗")
_HAPPY = ("收到了，很好用！", "质量不错，回购了", "朋友也想要，推荐给她了", "已经晒单啦")

PERSONAS: tuple[Persona, ...] = (
    # 基础用户: just connected
    _p("wxid_lin_xiaoyu", "林小雨", (), _BROWSING, gender="female", city="杭州"),
    _p("wxid_zhou_hao", "周浩", (), _BROWSING, gender="male", city="上海"),
    _p("wxid_chen_jing", "陈静", (), _BROWSING + _NEW, gender="female", city="苏州"),
    _p("wxid_wu_tingting", "吴婷婷", (), _BROWSING + _DEALS, gender="female", city="南京"),
    # 未购会员: interested, registered, no purchase in the period
    _p("wxid_zhang_min", "张敏", ("未购会员",), _DEALS + _BUYING, gender="female", city="杭州"),
    _p("wxid_liu_yang", "刘洋", ("未购会员",), _NEW + _BUYING, gender="male", city="北京"),
    _p("wxid_huang_lei", "黄蕾", ("未购会员",), _DEALS, gender="female", city="宁波"),
    _p("wxid_zhao_xue", "赵雪", ("未购会员",), _NEW, gender="female", city="成都"),
    # 已购会员: one purchase in the period
    _p(
        "wxid_sun_li", "孙丽", ("已购会员",), _HAPPY + _NEW, gender="female", city="上海", phone="13800000001"
    ),
    _p(
        "wxid_ma_jun", "马骏", ("已购会员",), _HAPPY + _DEALS, gender="male", city="广州", phone="13800000002"
    ),
    _p(
        "wxid_he_fang",
        "何芳",
        ("已购会员",),
        _BUYING + _HAPPY,
        gender="female",
        city="深圳",
        phone="13800000003",
    ),
    _p(
        "wxid_luo_qian",
        "罗倩",
        ("已购会员",),
        _NEW + _HAPPY,
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
        gender="female",
        city="杭州",
        phone="13800000005",
    ),
    _p(
        "wxid_xu_na",
        "徐娜",
        ("复购会员",),
        _DEALS + _HAPPY,
        gender="female",
        city="上海",
        phone="13800000006",
    ),
    _p(
        "wxid_song_yu",
        "宋宇",
        ("复购会员",),
        _BUYING + _HAPPY,
        gender="male",
        city="西安",
        phone="13800000007",
    ),
    _p("wxid_tang_yan", "唐艳", ("复购会员",), _HAPPY, gender="female", city="长沙", phone="13800000008"),
    # 品牌KOC: repeat buyers who brought others in
    _p(
        "wxid_wang_fang",
        "王芳",
        ("品牌KOC",),
        _HAPPY + _NEW,
        gender="female",
        city="杭州",
        phone="13800000009",
    ),
    _p("wxid_li_na", "李娜", ("品牌KOC",), _HAPPY, gender="female", city="上海", phone="13800000010"),
    _p(
        "wxid_feng_xiao",
        "冯晓",
        ("品牌KOC",),
        _HAPPY + _DEALS,
        gender="female",
        city="厦门",
        phone="13800000011",
    ),
    _p(
        "wxid_deng_chao",
        "邓超然",
        ("品牌KOC",),
        _HAPPY + _NEW,
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

# People not yet connected: they send friend requests or are invited into groups.
NEWCOMERS: tuple[tuple[str, str, str], ...] = (
    ("wxid_new_qiao", "乔悦", "你好，小红书上看到你们家的面霜，想了解一下"),
    ("wxid_new_fang", "方琳", "王芳推荐我加你的～"),
    ("wxid_new_ye", "叶子", "朋友圈看到新品了，想问问价格"),
    ("wxid_new_tao", "陶然", "门店扫码加的，领一下见面礼"),
    ("wxid_new_bai", "白露", "你好，李娜介绍的"),
    ("wxid_new_jiang", "江晴", "想进会员群"),
)
