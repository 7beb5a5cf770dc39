"""The simulated customers of the sandbox: what they do by themselves (talk, ask to become
friends, get invited into groups, come back after deleting the account, buy) and how they
take what the account sends them (answer within minutes, buy, or delete the account: after
too many messages, or right after one with hard selling they cannot stand).

Everything follows the sandbox seed. The events they make up by themselves come from the
transport's seeded random, one draw sequence per run; their reactions to a message come from
a random seeded by the message itself (its outbox key), so they do not depend on when the
message happened to go out."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.wechat.sandbox.population import NEWCOMERS, PERSONAS, REPLIES, Persona, stranger
from bot.wechat.types import ContactInfo, Text

if TYPE_CHECKING:
    from bot.wechat.sandbox.shop import SandboxShop
    from bot.wechat.sandbox.transport import SandboxTransport, SentRecord

log = logging.getLogger("bot.wechat.sandbox")

PUSHED = "sop:"  # the outbox key of an SOP message: pushed at people, not an answer
DAY = timedelta(days=1)
# A referral code the account gave someone (reply_thanks_share: 您的专属推荐码是 ABC234).
CODE = re.compile(r"(?:推荐码|邀请码)[^A-Za-z0-9]{0,8}([A-Z0-9]{4,16})")
BACK_AGAIN = "不好意思之前手滑删了，再加一下～"
OFFENDED_WITHIN = (5.0, 30.0)  # seconds from a hard-selling message to the deletion
MET_IN_GROUP = "群里看到你，加个好友～"


@dataclass(order=True)
class Reaction:
    """Something a customer does a little later: say `text`, `buy`, or `leave` (delete the
    account)."""

    due: datetime
    seq: int
    what: str = field(compare=False)
    wxid: str = field(compare=False)
    text: str = field(default="", compare=False)
    room: str | None = field(default=None, compare=False)
    seed: str = field(default="", compare=False)


class Customers:
    """The people of one sandbox account."""

    def __init__(self, transport: SandboxTransport, seed: int, *, populate: bool) -> None:
        self.transport = transport
        self.seed = seed
        self.random = transport.random  # the seeded draws of the events people make up
        self.shop: SandboxShop | None = None
        self.people: dict[str, Persona] = {p.contact.wxid: p for p in PERSONAS} if populate else {}
        self.newcomers: list[Persona] = list(NEWCOMERS) if populate else []
        self.strangers = itertools.count(1)
        self.met_in_groups: list[str] = []  # invited into a group, no friends yet
        self.gone: set[str] = set()  # deleted the account
        self.leaving: set[str] = set()  # about to
        self.returned: set[str] = set()  # came back once: they stay
        self.codes: dict[str, str] = {}  # wxid → the referral code the account gave them
        self.received: Counter[str] = Counter()  # messages from the account, 1:1
        self.pushed: dict[str, list[datetime]] = {}  # SOP messages, 1:1, the last day's
        self.deletions = 0
        self._pending: list[Reaction] = []
        self._seq = itertools.count()

    # -- what the account sent ----------------------------------------------------------

    def heard(self, record: SentRecord) -> None:
        """A message the account sent arrived: the recipient may answer, buy or leave."""
        if record.target.is_room:
            self._heard_in_room(record)
            return
        wxid = record.target.wxid
        text = record.content.text if isinstance(record.content, Text) else ""
        if code := CODE.search(text):
            self.codes[wxid] = code.group(1)
        persona = self.people.get(wxid)
        if persona is None or wxid in self.gone or wxid in self.leaving:
            return
        key = record.ref or record.msg_id
        rng = random.Random(f"{self.seed}:{key}:{wxid}")
        pushed = (record.ref or "").startswith(PUSHED)
        self.received[wxid] += 1
        if pushed:
            recent = [at for at in self.pushed.get(wxid, []) if record.at - at < DAY] + [record.at]
            self.pushed[wxid] = recent
        if wxid not in self.returned and any(word in text for word in persona.offended_by):
            self.leaving.add(wxid)
            self._later(record.at, rng.uniform(*OFFENDED_WITHIN), "leave", wxid)
            return
        if wxid not in self.returned and self._fed_up(persona, wxid):
            self.leaving.add(wxid)
            self._later(record.at, rng.uniform(60, 240), "leave", wxid)
            return
        if persona.silent:
            return
        if pushed and rng.random() < persona.replies:
            self._later(record.at, rng.uniform(30, 240), "say", wxid, text=rng.choice(REPLIES))
        if rng.random() < (persona.buys / 2 if pushed else persona.buys):  # an answer (a link) sells more
            self._later(record.at, rng.uniform(120, 600), "buy", wxid, seed=f"{key}:buy")

    def _fed_up(self, persona: Persona, wxid: str) -> bool:
        if persona.deletes_after is not None and self.received[wxid] >= persona.deletes_after:
            return True
        return persona.tolerance is not None and len(self.pushed.get(wxid, [])) > persona.tolerance

    def _heard_in_room(self, record: SentRecord) -> None:
        """An SOP message in a group: now and then a member answers there, or buys."""
        if not (record.ref or "").startswith(PUSHED):
            return
        room = self.transport.room(record.target.wxid)
        members = [m for m in room.member_wxids if self._talks(m)] if room else []
        if not members:
            return
        rng = random.Random(f"{self.seed}:{record.ref}:room")
        if rng.random() < 0.5:
            member = rng.choice(members)
            self._later(
                record.at, rng.uniform(30, 300), "say", member, text=rng.choice(REPLIES), room=room.room_wxid
            )
        buyers = [m for m in members if self.people[m].buys > 0]
        if buyers and rng.random() < 0.15:
            self._later(record.at, rng.uniform(120, 600), "buy", rng.choice(buyers), seed=f"{record.ref}:buy")

    def _later(self, now: datetime, seconds: float, what: str, wxid: str, **detail: str | None) -> None:
        reaction = Reaction(now + timedelta(seconds=seconds), next(self._seq), what, wxid, **detail)  # type: ignore[arg-type]
        heapq.heappush(self._pending, reaction)

    # -- friendships, as the transport reports them ---------------------------------------

    def befriended(self, wxid: str) -> None:
        if wxid in self.gone:
            self.returned.add(wxid)
        self.gone.discard(wxid)
        if wxid in self.met_in_groups:
            self.met_in_groups.remove(wxid)

    def left(self, wxid: str) -> None:
        self.gone.add(wxid)
        self.leaving.discard(wxid)

    # -- one step of the simulation -------------------------------------------------------

    async def tick(self) -> None:
        """Do what has come due, then one thing people make up by themselves."""
        await self.due()
        await self.random_event()

    async def due(self) -> None:
        """The reactions whose time has come (by the transport's clock)."""
        now = self.transport.clock.now()
        while self._pending and self._pending[0].due <= now:
            reaction = heapq.heappop(self._pending)
            if reaction.what == "leave":
                await self.leave(reaction.wxid)
            elif reaction.wxid in self.gone:
                continue
            elif reaction.what == "say":
                await self.transport.say(reaction.wxid, reaction.text, room=reaction.room)
            elif reaction.what == "buy":
                await self.buy(reaction.wxid, random.Random(f"{self.seed}:{reaction.seed}"))

    async def leave(self, wxid: str) -> None:
        """`wxid` deletes the account. Every other deletion is reported by the sandbox
        (`FriendRemoved`); the rest are found by sopbot itself (a refused send, the next
        contact sync)."""
        if wxid in self.gone:
            return
        tell = self.deletions % 2 == 0
        self.deletions += 1
        await self.transport.unfriend(wxid, tell=tell)

    async def buy(self, wxid: str, rng: random.Random) -> None:
        if self.shop is None:
            return
        order = await self.shop.buy(wxid, self.transport.clock.now(), rng)
        log.info(
            "sandbox shop: %s ordered %s (¥%s)",
            self.transport.contact(wxid).name,
            order.order_id,
            order.amount,
        )

    async def random_event(self) -> None:
        rng = self.random
        roll = rng.random()
        if roll < 0.06 and self.people:
            await self._newcomer_asks()
        elif roll < 0.10 and self.people and self.transport.rooms_known():
            await self._newcomer_invited()
        elif roll < 0.12 and self.met_in_groups:
            wxid = self.met_in_groups.pop(0)
            await self.transport.request_friend(wxid, self.transport.contact(wxid).name, MET_IN_GROUP)
        elif roll < 0.13 and (back := sorted(self.gone - self.returned)):
            wxid = rng.choice(back)
            await self.transport.request_friend(wxid, self.transport.contact(wxid).name, BACK_AGAIN)
        elif roll < 0.145 and self.shop is not None and (buyers := self._buyers()):
            await self.buy(rng.choice(buyers), rng)
        else:
            await self._chatter()

    async def _chatter(self) -> None:
        rng = self.random
        talkers = [wxid for wxid in self.people if self._talks(wxid)]
        if not talkers:
            return
        wxid = rng.choice(talkers)
        text = rng.choice(self.people[wxid].lines)
        rooms = self.transport.rooms_of(wxid)
        friend = self.transport.contact(wxid).is_friend
        room = rng.choice(rooms) if rooms and (not friend or rng.random() < 0.4) else None
        if room is None and not friend:
            return
        await self.transport.say(wxid, text, room=room)

    def _talks(self, wxid: str) -> bool:
        persona = self.people.get(wxid)
        if persona is None or persona.silent or wxid in self.gone:
            return False
        return self.transport.knows(wxid)

    def _buyers(self) -> list[str]:
        return [
            wxid
            for wxid, persona in self.people.items()
            if persona.buys > 0 and wxid not in self.gone and self.transport.knows(wxid)
            and self.transport.contact(wxid).is_friend
        ]  # fmt: skip

    def _next_newcomer(self) -> Persona:
        while self.newcomers:
            persona = self.newcomers.pop(0)
            if not self.transport.knows(persona.contact.wxid):
                return persona
        while True:
            persona = stranger(next(self.strangers), self.random)
            if not self.transport.knows(persona.contact.wxid):
                return persona

    async def _newcomer_asks(self) -> None:
        persona = self._next_newcomer()
        hello = persona.hello
        if self.codes and self.random.random() < 0.5:
            referrer = self.random.choice(sorted(self.codes))
            hello = f"你好，{self.transport.contact(referrer).name}推荐的，推荐码 {self.codes[referrer]}"
        wxid = persona.contact.wxid
        self.people[wxid] = persona
        await self.transport.request_friend(wxid, persona.contact.name, hello)

    async def _newcomer_invited(self) -> None:
        persona = self._next_newcomer()
        rooms = self.transport.rooms_known()
        room = self.random.choice(rooms)
        inviters = [m for m in room.member_wxids if m != self.transport.me.wxid]
        inviter = self.random.choice(inviters) if inviters else None
        wxid = persona.contact.wxid
        self.people[wxid] = persona
        self.met_in_groups.append(wxid)
        await self.transport.invite(
            room.room_wxid, [ContactInfo(wxid, persona.contact.name, is_friend=False)], inviter
        )
