"""What hostile input costs (issue 11): tagging one chat message of any length against the
shipped rules (p50/p99 per length, beside a 20-character message as the floor), and how long
rejecting a YAML bomb, a deeply nested settings.toml and a template bomb takes.

    python bench/bench_inputs.py [--rounds 200]

Targets: tagging p99 ≤ 20 ms for any length; each rejection well under 1 s. Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from bot.config.yaml_source import parse_yaml
from bot.render import Renderer, RenderError
from bot.signals.matcher import Matcher
from bot.signals.rules import load_tags

REPO = Path(__file__).resolve().parent.parent
WORDS = [
    "这款多少钱",
    "有优惠吗",
    "我想买面霜",
    "上新了吗",
    "太贵了",
    "谢谢",
    "会员日",
    "退订",
    "哈哈",
    "好的",
]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def tagging(rounds: int) -> None:
    matcher = Matcher(load_tags(REPO / "sop").rules)
    matcher.match("预热")  # jieba's dictionary
    rng = random.Random(11)
    print("tagging one message against the shipped rules (ms):")
    floor = None
    for length in (20, 200, 1_000, 5_000, 50_000, 500_000):
        text = "".join(rng.choice(WORDS) for _ in range(length // 3 + 1))[:length]
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            matcher.match(text)
            samples.append((time.perf_counter() - started) * 1000)
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        floor = floor or p50
        print(
            f"  {length:>7,} chars  p50 {p50:6.2f}  p99 {p99:6.2f}  ({p50 / floor:4.1f}x the 20-char message)"
        )


def rejection(name: str, action: Callable[[], object]) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()
        outcome = "accepted?!"
    except (ConfigError, RenderError) as error:
        outcome = str(error).splitlines()[0][:70]
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    print(f"  {name:<28} {seconds * 1000:7.1f} ms  peak {peak:5.1f} MB  {outcome}")


def rejections() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
    )
    folder = Path(tempfile.mkdtemp())
    (folder / "settings.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "default").mkdir()
    (folder / "default" / "bomb.j2").write_text('{{ "哈" * 10**9 }}')
    (folder / "default" / "loop.j2").write_text(
        '{% set s = "a" * 99999 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}'
    )
    renderer = Renderer(folder)
    print("rejecting hostile input (time, Python memory peak, the error):")
    rejection("YAML alias bomb (1e9 values)", lambda: parse_yaml(bomb, "sop/x.yaml"))
    rejection("YAML nested 5,000 deep", lambda: parse_yaml("a: " + "[" * 5000 + "]" * 5000, "sop/x.yaml"))
    rejection("settings.toml nested 5,000", lambda: load_settings(folder / "settings.toml"))
    rejection("template '哈' * 10**9", lambda: renderer.render("bomb", {}))
    rejection("template endless loop", lambda: renderer.render("loop", {}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    tagging(args.rounds)
    rejections()


if __name__ == "__main__":
    main()
