"""Runs the Node test gateway (gateway.mjs) for the python tests and talks to its control
API. See README.md in this folder for what the gateway does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
READY_TIMEOUT = 120.0  # a loaded machine may take long; a gateway that never starts still fails
NPM_CI_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_reason() -> str | None:
    """None when the gateway can run here, else why not."""
    if shutil.which("node") is None:
        return "Node.js (`node`) is not installed: the wechaty gateway tests need it"
    return None


def ensure_installed() -> None:
    """`npm ci` in this folder when node_modules is missing (CI's .ci/run does it up front)."""
    if (HERE / "node_modules" / "wechaty-puppet-service").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: cannot install the test gateway")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"npm ci failed in {HERE}:\n{result.stderr[-2000:]}")


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Gateway:
    """One gateway process: gRPC on `port`, control API on `control_port`."""

    def __init__(
        self,
        *,
        token: str | None = None,
        tls: bool = False,
        journal: Path | None = None,
        send_delay_ms: int = 0,
    ) -> None:
        self.token = token or f"test-{uuid.uuid4().hex}"
        self.tls = tls
        self.journal = journal  # every send, as JSON lines: survives a SIGKILL of the gateway
        self.send_delay_ms = send_delay_ms
        self.port = free_port()
        self.control_port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=400)
        self.started_in: float | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Gateway:
        args = ["node", str(HERE / "gateway.mjs"), "--port", str(self.port), "--control-port",
                str(self.control_port), "--token", self.token]  # fmt: skip
        if self.tls:
            args.append("--tls")
        if self.journal is not None:
            args += ["--journal", str(self.journal)]
        if self.send_delay_ms:
            args += ["--send-delay", str(self.send_delay_ms)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_")}
        began = time.monotonic()
        self.process = subprocess.Popen(
            args, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(self.process.stdout, ready), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.process.stderr, None), daemon=True).start()
        if not ready.wait(READY_TIMEOUT):
            self.terminate()
            raise RuntimeError("the gateway did not print READY:\n" + "\n".join(self.log))
        self.started_in = time.monotonic() - began
        return self

    def _drain(self, stream: Any, ready: threading.Event | None) -> None:
        for line in stream:
            self.log.append(line.rstrip())
            if ready is not None and line.startswith("READY "):
                ready.set()

    def kill(self) -> None:
        """SIGKILL: the gateway dies without closing anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> Gateway:
        """Start again on the same ports (a fresh population and send log)."""
        self.kill()
        return self.start()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def journal_entries(self) -> list[dict[str, Any]]:
        """What this gateway (in all its lives on these ports) recorded as sent."""
        if self.journal is None or not self.journal.exists():
            return []
        lines = self.journal.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip().endswith("}")]

    def rss_mib(self) -> float | None:
        return rss_mib(self.process.pid) if self.process is not None else None

    # -- control API ---------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ControlError(error.code, json.loads(error.read()).get("error", "")) from None

    def post(self, path: str, **body: Any) -> Any:
        return self.call("POST", path, body)

    def sent(self, **query: Any) -> list[dict[str, Any]]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return list(self.call("GET", "/sent" + (f"?{params}" if params else "")))

    def contacts(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/contacts"))

    def rooms(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/rooms"))

    def health(self) -> dict[str, Any]:
        return dict(self.call("GET", "/health"))


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
