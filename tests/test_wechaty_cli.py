"""`sopbot run` as an operator starts it, with SOPBOT_ environment settings pointing at the
test gateway: it logs in, syncs, and answers a keyword rule end to end; a wrong token is
one line and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gateway.harness import Gateway, rss_mib
from tests.waiting import PATIENCE, LineReader, Stalled, stop_process, wait_for

pytestmark = pytest.mark.gateway
REPO = Path(__file__).resolve().parents[1]


def project(folder: Path) -> Path:
    """A project folder with the shipped SOP files and templates, no settings.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "sop", folder / "sop")
    shutil.copytree(REPO / "templates", folder / "templates")
    return folder


def sopbot_env(gateway: Gateway, folder: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPBOT_", "WECHATY_"))}
    env |= {
        "SOPBOT_ACCOUNTS": json.dumps([{"id": "main", "transport": "wechaty", "endpoint": gateway.endpoint}]),
        "SOPBOT_TOKEN_MAIN": token,
        "SOPBOT_DATABASE_URL": f"sqlite:///{folder / 'sopbot.db'}",
        "SOPBOT_DELIVERY__MIN_INTERVAL": "0",
        "SOPBOT_DELIVERY__JITTER": "0",
        "PYTHONPATH": str(REPO),
    }
    return env


class Running:
    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        self.reader = LineReader(self.process.stdout)

    @property
    def lines(self) -> list[str]:
        return self.reader.snapshot()

    def saw(self, text: str) -> bool:
        return self.reader.saw(text)

    def stop(self) -> int:
        try:
            return stop_process(self.process, signal.SIGTERM)
        except Stalled as stalled:
            raise Stalled(f"{stalled}:\n" + "\n".join(self.reader.rest())) from None


def test_sopbot_run_logs_in_syncs_and_answers_a_keyword(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = project(tmp_path / "project")
    since = gateway.health()["seq"]
    began = time.monotonic()
    run = Running([sys.executable, "-m", "bot", "run"], folder, sopbot_env(gateway, folder, gateway.token))
    try:
        wait_for(lambda: run.saw("online as 运营小助手"), what="the login in the log")
        login_after = time.monotonic() - began
        assert run.saw("contacts") and run.saw("rooms synced")
        rss = rss_mib(run.process.pid)
        gateway.post("/say", **{"from": "wxid_wangfang", "text": "这款多少钱？"})
        replies = wait_for(
            lambda: gateway.sent(since=since, to="wxid_wangfang"), what="a reply at the gateway"
        )
        texts = [r for r in replies if r["kind"] == "text"]
        assert texts and texts[0]["text"].startswith("王芳")
        with capsys.disabled():
            print(
                f"\n[wechaty] sopbot run: logged in and synced {login_after:.1f}s after start; RSS {rss:.0f} MiB"
            )
    finally:
        code = run.stop()
    assert code == 0, "\n".join(run.lines)
    assert not run.saw("Traceback"), "\n".join(run.lines)


def test_sopbot_run_with_a_wrong_token_says_so_in_one_line(gateway: Gateway, tmp_path: Path) -> None:
    folder = project(tmp_path / "project")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=folder,
        env=sopbot_env(gateway, folder, "wrong-token"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"sopbot: account main: the gateway at {gateway.endpoint} refused the token in SOPBOT_TOKEN_MAIN "
        "(wrong token?)"
    )
    assert "wrong-token" not in result.stderr + result.stdout  # the token itself is never printed


def test_sopbot_run_against_nothing_says_unreachable(tmp_path: Path, gateway_available: None) -> None:
    from tests.gateway.harness import free_port

    folder = project(tmp_path / "project")
    nobody = Gateway()
    nobody.port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=folder,
        env=sopbot_env(nobody, folder, "t"),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"sopbot: account main: cannot reach the gateway at 127.0.0.1:{nobody.port}")
    )


def test_a_tls_mismatch_is_named(gateway_available: None, tmp_path: Path) -> None:
    tls_gateway = Gateway(tls=True).start()
    try:
        folder = project(tmp_path / "project")
        result = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            cwd=folder,
            env=sopbot_env(tls_gateway, folder, tls_gateway.token),
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=False,
        )
    finally:
        tls_gateway.terminate()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"sopbot: account main: the gateway at {tls_gateway.endpoint} speaks TLS but this account is set to "
        "plaintext: set tls = true for it (or run the gateway with TLS disabled)"
    )


def test_no_log_line_at_debug_holds_the_token_or_the_webhook_secret(gateway: Gateway, tmp_path: Path) -> None:
    folder = project(tmp_path / "project")
    secret = "webhook-secret-9f3a7c"
    env = sopbot_env(gateway, folder, gateway.token) | {
        "SOPBOT_LOG_LEVEL": "DEBUG",
        "SOPBOT_WEBHOOK_SECRET": secret,
        "SOPBOT_WEBHOOK__ENABLED": "true",
        "SOPBOT_WEBHOOK__PORT": "0",
    }
    run = Running([sys.executable, "-m", "bot", "run"], folder, env)
    try:
        wait_for(lambda: run.saw("online as 运营小助手"), what="the login in the log")
        since = gateway.health()["seq"]
        gateway.post("/say", **{"from": "wxid_wangfang", "text": "这款多少钱？"})
        wait_for(lambda: gateway.sent(since=since, to="wxid_wangfang"), what="a reply at the gateway")
    finally:
        code = run.stop()
    log = "\n".join(run.reader.rest())
    assert code == 0, log
    assert sum(" DEBUG " in line for line in log.splitlines()) > 20  # it really ran at DEBUG
    assert gateway.token not in log and secret not in log
    assert "***" in log  # the gRPC libraries did log the token (`:authority`), and it was masked
    print(f"\n[wechaty] DEBUG log: {len(log.splitlines())} lines, {log.count('***')} secrets masked")
