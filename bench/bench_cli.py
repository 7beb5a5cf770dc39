"""How long the `sopbot` command takes, as an operator types it, beside the floor of the same
run: `python -c "import typer"` (the interpreter plus the CLI library, nothing of ours).

    python bench/bench_cli.py [--runs 5]

Each command runs in a fresh process in a copy of the shipped project (`sop/`, `templates/`,
settings.toml) whose database was filled by one sandbox run. `run → synced` is the time from
starting `sopbot run` to the log line saying the contacts are stored.

Targets (idle machine): `--help` and `version` ≤ 0.3 s; `contacts`, `outbox`, `check` ≤ 1 s;
`run → synced` ≤ 30 s. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS: list[tuple[str, list[str]]] = [
    ("sopbot --help", ["--help"]),
    ("sopbot version", ["version"]),
    ("sopbot check", ["check"]),
    ("sopbot contacts", ["contacts"]),
    ("sopbot outbox", ["outbox"]),
]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=environment(), capture_output=True, check=True)
    return time.perf_counter() - started


def run_until_synced(cwd: Path) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=cwd, env=environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if "synced" in line:
                return time.perf_counter() - started
        raise SystemExit("sopbot run exited before syncing")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("sop", "templates"):
            shutil.copytree(REPO / name, project / name)
        shutil.copy(REPO / "settings.toml", project / "settings.toml")
        synced = [run_until_synced(project) for _ in range(max(1, args.runs // 2))]
        floor = [timed([sys.executable, "-c", "import typer"], project) for _ in range(args.runs)]
        floor_label = 'python -c "import typer" (floor)'
        print(f"{floor_label:<34} median {statistics.median(floor):.2f}s")
        for label, command in COMMANDS:
            times = [timed([sys.executable, "-m", "bot", *command], project) for _ in range(args.runs)]
            median = statistics.median(times)
            print(f"{label:<34} median {median:.2f}s  ({median / statistics.median(floor):.1f} × the floor)")
        print(f"{'sopbot run → contacts synced':<34} median {statistics.median(synced):.2f}s (target ≤ 30 s)")


if __name__ == "__main__":
    main()
