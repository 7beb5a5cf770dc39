"""The named policies an outbox row, an SOP and the delivery rules agree on. Stored as their
string values; compared as enums everywhere in the code."""

from __future__ import annotations

from enum import StrEnum


class Origin(StrEnum):
    """Which part of the bot planned an outbox row."""

    SOP = "sop"  # an SOP step (calendar or lifecycle)
    REPLY = "reply"  # a tag rule's reply to a message
    ADMIN = "admin"  # the answer to an admin's #command


class Category(StrEnum):
    """Marketing messages count against per-contact caps; lifecycle and replies can be exempt."""

    MARKETING = "marketing"
    LIFECYCLE = "lifecycle"
    REPLY = "reply"


class Guarantee(StrEnum):
    """What a send cut off by a crash or a dropped connection becomes when WeChat cannot
    confirm it: `unknown` and never resent (at most once), or sent again (at least once)."""

    AT_MOST_ONCE = "at_most_once"
    AT_LEAST_ONCE = "at_least_once"


class QuietPolicy(StrEnum):
    """Inside quiet hours: wait for them to end, or skip the message."""

    WAIT = "wait"
    SKIP = "skip"


class OnMissed(StrEnum):
    """An SOP occurrence missed while the daemon was down: skip it (recorded), or catch up
    the latest one within the SOP's grace window."""

    SKIP = "skip"
    CATCH_UP = "catch_up"
