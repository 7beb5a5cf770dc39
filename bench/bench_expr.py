"""The audience expression language over 100,000 subjects, beside a hand-written Python
predicate that tests the same thing (the floor), timed in the same run.

    python bench/bench_expr.py [--subjects 100000]

Target: 100,000 subjects ≤ 0.25 s on an idle machine, ≤ 2 × the hand-written predicate.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.signals.expr import Subject, parse
from bot.signals.tiers_ladder import DEFAULT_LADDER

EXPRESSION = (
    'tier >= customer and tag:活动喜好型 and not tag:免打扰 or tier in (repeat, koc) and tag:"VIP 客户"'
    " or tag:价值等级/* and not opted_out"
)


def subjects(count: int) -> list[Subject]:
    rng = random.Random(7)
    pool = ["活动喜好型", "新品关注型", "免打扰", "VIP 客户", "价值等级/高", *(f"t{i}" for i in range(40))]
    return [
        Subject(
            rng.choice(DEFAULT_LADDER.ids),
            frozenset(rng.sample(pool, rng.randint(0, 8))),
            {"opted_out": rng.random() < 0.1},
        )
        for _ in range(count)
    ]


def by_hand(subject: Subject) -> bool:
    rank = DEFAULT_LADDER.rank(subject.tier)
    tags = subject.tags
    return (
        (rank >= 2 and "活动喜好型" in tags and "免打扰" not in tags)
        or (subject.tier in ("repeat", "koc") and "VIP 客户" in tags)
        or (any(t.startswith("价值等级/") for t in tags) and not subject.flags["opted_out"])
    )


def best_of(runs: int, work) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    times, result = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    people = subjects(args.subjects)
    expr = parse(EXPRESSION, DEFAULT_LADDER)
    floor, floor_median, floor_hits = best_of(args.runs, lambda: sum(1 for s in people if by_hand(s)))
    ours, ours_median, hits = best_of(args.runs, lambda: len(expr.filter(people)))
    print(f"{args.subjects:,} subjects, {hits:,} match (hand-written predicate agrees: {hits == floor_hits})")
    print(f"hand-written predicate: best {floor:.3f}s, median {floor_median:.3f}s")
    print(f"compiled expression:    best {ours:.3f}s, median {ours_median:.3f}s (target ≤ 0.25 s)")
    print(f"ratio: {ours / floor:.2f} × the hand-written predicate (target ≤ 2 ×)")


if __name__ == "__main__":
    main()
