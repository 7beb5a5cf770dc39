"""One daemon holding many sandbox accounts: resident memory, CPU and event-loop lag, in
total and per account, beside a daemon holding one account measured in the same run.

    python bench/bench_accounts.py [--accounts 200] [--contacts 500] [--seconds 60]

Each daemon is a real `sopbot run` on SQLite with the sandbox's customers talking
(event_interval 3 s per account); once /healthz says every account is online, the process
is watched for `--seconds`: RSS and CPU from /proc, event-loop lag from /metrics. Target
(issue 16): figures printed per account; nothing asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings(accounts: int, contacts: int, port: int) -> str:
    blocks = "".join(f'\n[[accounts]]\nid = "a{n}"\n' for n in range(accounts))
    return f"""log_level = "WARNING"
{blocks}
[sandbox]
extra_contacts = {contacts}
event_interval = 3.0

[monitor]
port = {port}
"""


def read(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(page: str, name: str) -> float:
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def measure(accounts: int, contacts: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("sop", "templates"):
            subprocess.run(["cp", "-r", str(REPO / name), str(project / name)], check=True)
        port = free_port()
        (project / "settings.toml").write_text(settings(accounts, contacts, port), encoding="utf-8")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
        environment["PYTHONPATH"] = str(REPO)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=project, env=environment,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while read(port, "/healthz")[0] != 200:
                if process.poll() is not None:
                    raise SystemExit(f"sopbot run exited with {process.returncode}")
                time.sleep(1)
            ready = time.monotonic() - started
            cpu_before, watched = cpu_seconds(process.pid), time.monotonic()
            rss_peak = 0.0
            while time.monotonic() - watched < seconds:
                rss_peak = max(rss_peak, rss_mib(process.pid))
                time.sleep(1)
            cpu = (cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - watched)
            page = read(port, "/metrics")[1]
            return {
                "ready": ready,
                "rss": max(rss_peak, rss_mib(process.pid)),
                "cpu": cpu,
                "lag": metric(page, "sopbot_event_loop_lag_seconds"),
                "lag_max": metric(page, "sopbot_event_loop_lag_max_seconds"),
            }
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    one = measure(1, args.contacts, args.seconds)
    many = measure(args.accounts, args.contacts, args.seconds)
    n = args.accounts
    print(f"{'':<28}{'1 account':>14}{f'{n} accounts':>16}{'per account':>14}")
    print(f"{'ready (all online)':<28}{one['ready']:>13.1f}s{many['ready']:>15.1f}s")
    print(
        f"{'RSS':<28}{one['rss']:>11.0f} MiB{many['rss']:>12.0f} MiB{(many['rss'] - one['rss']) / (n - 1):>10.2f} MiB"
    )
    print(
        f"{'CPU (share of one core)':<28}{one['cpu'] * 100:>13.1f}%{many['cpu'] * 100:>15.1f}%{many['cpu'] * 100 / n:>13.2f}%"
    )
    print(f"{'event-loop lag, last / max':<28}{one['lag'] * 1000:>6.0f}/{one['lag_max'] * 1000:<5.0f}ms"
          f"{many['lag'] * 1000:>8.0f}/{many['lag_max'] * 1000:<5.0f}ms")  # fmt: skip
    print(f"({args.contacts} contacts per account, sandbox customers talking every 3 s per account, "
          f"watched {args.seconds:.0f} s after ready)")  # fmt: skip


if __name__ == "__main__":
    main()
