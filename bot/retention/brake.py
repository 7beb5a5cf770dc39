"""The brake's decision, from counts alone (no I/O): does an SOP drive people away?

An SOP trips when it has been sent to at least `brake_min_sends` contacts (1:1, since its
last resume) and either rate reaches its threshold:

- 删粉率: deletions blamed on its messages (last touch, within `[results] deletion_window`)
  per send, against `brake_deletion_rate`;
- 退订/投诉率: its messages followed by an opt-out or a complaint (last touch, within
  `[results] reply_window`) per send, against `brake_optout_rate`.

Rates are compared exactly (as decimals, not floats): 2 deletions in 200 sends is 1 %."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from bot.config.settings import RetentionSettings


@dataclass(frozen=True)
class SopCounts:
    """What followed an SOP's 1:1 messages since the brake last looked from."""

    sends: int
    deletions: int = 0
    opt_outs: int = 0
    complaints: int = 0  # messages followed by a complaint and no opt-out

    @property
    def driven_away(self) -> int:
        return self.opt_outs + self.complaints


@dataclass(frozen=True)
class BrakeRule:
    min_sends: int
    deletion_rate: Fraction
    optout_rate: Fraction

    @classmethod
    def of(cls, settings: RetentionSettings) -> BrakeRule:
        return cls(
            settings.brake_min_sends,
            Fraction(str(settings.brake_deletion_rate)),
            Fraction(str(settings.brake_optout_rate)),
        )


@dataclass(frozen=True)
class BrakeVerdict:
    trips: bool
    reason: str = ""


def judge(counts: SopCounts, rule: BrakeRule) -> BrakeVerdict:
    """Trip only with enough sends, and then when a rate is at or above its threshold. The
    reason names every rate that tripped: `删粉 3/210 = 1.4% ≥ 1%`."""
    if counts.sends < rule.min_sends or counts.sends <= 0:
        return BrakeVerdict(False)
    reasons = []
    if counts.deletions >= rule.deletion_rate * counts.sends:
        reasons.append(_rate("删粉", counts.deletions, counts.sends, rule.deletion_rate))
    if counts.driven_away >= rule.optout_rate * counts.sends:
        reasons.append(_rate("退订/投诉", counts.driven_away, counts.sends, rule.optout_rate))
    return BrakeVerdict(bool(reasons), "；".join(reasons))


def _rate(label: str, n: int, sends: int, threshold: Fraction) -> str:
    digits = max(1, _decimals(threshold * 100))
    return f"{label} {n}/{sends} = {percent(Fraction(n, sends), digits)} ≥ {percent(threshold, digits)}"


def percent(value: Fraction, digits: int = 1) -> str:
    """`1.4%`, `1%`, `12.5%`: rounded down to `digits` decimals (so a rate that tripped never
    reads as below its threshold), without trailing zeros."""
    scale = 10**digits
    whole = Fraction(int(value * 100 * scale), scale)  # int() rounds toward zero: down
    text = f"{float(whole):.{digits}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def _decimals(value: Fraction, most: int = 4) -> int:
    """Decimals needed to write `value` exactly (at most `most`)."""
    for digits in range(most + 1):
        if (value * 10**digits).denominator == 1:
            return digits
    return most
