"""`sopbot check` over 50 SOP files: the shipped set plus generated daily, weekly,
monthly, festival and lifecycle SOPs, all checked with every template dry-rendered.

    python bench/bench_check.py [--files 50]

Target (issue 5): ≤ 1 s. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config.settings import load_settings
from bot.sop.authoring.check import check_all

REPO = Path(__file__).resolve().parent.parent
SCHEDULES = [
    'daily: ["09:00", "21:00"]\n    working_days_only: true',
    'weekly: {mon: t_mon, thu: t_thu}\n    at: "20:00"',
    'monthly: [1, 18, last, "2nd sat"]\n    at: "10:00"',
    'festival: [春节, 中秋, 双11]\n    offset: [-3, -1, 0]\n    at: "20:00"',
    'window: {from: 腊八, to: 除夕}\n    at: "19:30"',
]


def generated(index: int) -> str:
    schedule = SCHEDULES[index % len(SCHEDULES)]
    template = "" if "weekly" in schedule else "\n    template: t_generic"
    return (
        f"id: gen{index}\nname: 生成的SOP {index}\non_missed: catch_up\ngrace: 2h\n"
        "audience:\n  tiers: [已购会员, 复购会员, 品牌KOC]\n  exclude: 免打扰 or tag:已退订\n"
        f"steps:\n  - id: s1\n    {schedule}{template}\n"
        "  - id: s2\n    after: 3d\n    at: '10:00'\n    event: {kind: tier_changed, to: repeat}\n    template: t_generic\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(REPO / "sop", root / "sop")
        shutil.copytree(REPO / "templates", root / "templates")
        for name in ("t_generic", "t_mon", "t_thu"):
            (root / "templates/default" / f"{name}.j2").write_text(
                "{{ contact.display_name }}，{{ today.weekday }}好物：{% for item in catalog.pick(2) %}"
                "{{ item.name }} {{ item.price }}{{ item.currency }}{% endfor %}",
                encoding="utf-8",
            )
        shipped = len(
            [
                p
                for p in (root / "sop").glob("*.yaml")
                if p.stem not in {"catalog", "groups", "dates", "tags", "tiers"}
            ]
        )
        for index in range(max(0, args.files - shipped)):
            (root / "sop" / f"gen{index}.yaml").write_text(generated(index), encoding="utf-8")
        (root / "settings.toml").write_text("", encoding="utf-8")
        os.chdir(root)
        settings = load_settings(root / "settings.toml")
        now = datetime(2026, 11, 24, 2, tzinfo=UTC)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            sopset, issues = check_all(settings, now)
            times.append(time.perf_counter() - started)
        assert sopset is not None, issues
        steps = sum(len(s.steps) for s in sopset.sops.values())
        templates = len(list((root / "templates").rglob("*.j2")))
        print(
            f"checked {len(sopset.sops)} SOP files ({steps} steps) and {templates} templates, {len(issues)} problems"
        )
        print(f"check: best {min(times):.3f}s, median {statistics.median(times):.3f}s (target ≤ 1 s)")


if __name__ == "__main__":
    main()
