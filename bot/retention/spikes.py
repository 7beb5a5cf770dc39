"""Spikes of deletions, from their times alone (no I/O): when an alert is due, and when it
is the same spike still going on.

A deletion **crosses** when the deletions in the window that ends with it (`window` long,
itself included) number at least `threshold`. A **spike** is a run of crossings each within
one window of the previous one: 30 deletions in an hour cross 26 times, one spike. It ends
once a whole window passes without a crossing; the next crossing starts a new spike. An
alert names its spike by the deletion that started it (the first crossing), so the same
spike is never alerted twice, whoever looks and however often."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Crossing:
    at: datetime  # the deletion that brought its window to the threshold
    ref: int  # its event id
    count: int  # deletions in the window that ends with it
    start: datetime  # the first of them


@dataclass(frozen=True)
class Spike:
    first: Crossing
    last: Crossing
    peak: int  # the most deletions in one window during the spike
    continues: bool  # the spike an earlier alert named goes on


def crossings(deletions: Sequence[tuple[datetime, int]], window: timedelta, threshold: int) -> list[Crossing]:
    """Every deletion (time, event id) that crosses, in time order."""
    ordered = sorted(deletions)
    out = []
    first = 0
    for index, (at, ref) in enumerate(ordered):
        while ordered[first][0] <= at - window:
            first += 1
        count = index - first + 1
        if count >= threshold:
            out.append(Crossing(at, ref, count, ordered[first][0]))
    return out


def spikes(found: Sequence[Crossing], window: timedelta, covered_until: datetime | None) -> list[Spike]:
    """The spikes of the crossings after `covered_until` (the last crossing an earlier alert
    took in): the first continues that alert's spike when it comes within a window of it."""
    out: list[Spike] = []
    previous = covered_until
    for crossing in found:
        if covered_until is not None and crossing.at <= covered_until:
            continue
        if previous is not None and crossing.at - previous <= window:
            if out:
                spike = out[-1]
                out[-1] = Spike(spike.first, crossing, max(spike.peak, crossing.count), spike.continues)
            else:
                out.append(Spike(crossing, crossing, crossing.count, continues=True))
        else:
            out.append(Spike(crossing, crossing, crossing.count, continues=False))
        previous = crossing.at
    return out
