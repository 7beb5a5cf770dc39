"""deploy/sopbot.service says what docs/deploy.md promises: `sopbot run` as a service that
restarts on failure but not on a configuration mistake (exit 2), stops with SIGTERM (the
clean stop the daemon obeys) within a timeout, and writes only its data folder."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "sopbot.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_the_unit_runs_the_daemon_restarts_on_failure_and_not_on_a_config_mistake() -> None:
    service = unit()["Service"]
    program, *arguments = service["ExecStart"].split()
    assert (Path(program).name, arguments) == ("sopbot", ["run"])
    assert service["Restart"] == "on-failure"
    assert "2" in service["RestartPreventExitStatus"].split()
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    assert service["EnvironmentFile"].lstrip("-") == "/etc/sopbot/env"  # secrets outside the project
    assert service["ReadWritePaths"] == service["WorkingDirectory"] + "/data"  # settings.data_path


def test_the_daemon_exits_2_on_a_settings_mistake_as_the_unit_expects(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text("[delivery]\nquiet_hours = 'late'\n", encoding="utf-8")
    (tmp_path / "sop").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "settings.toml:2" in result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_reads_the_unit_without_syntax_errors(tmp_path: Path) -> None:
    copy = tmp_path / "sopbot.service"
    copy.write_text(UNIT.read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The paths and the user exist only on a server: those complaints are expected here;
    # anything about the file's own syntax (an unknown key or section) is not.
    complaints = [
        line
        for line in result.stderr.splitlines()
        if ("Unknown" in line or "Invalid" in line or "Failed to parse" in line) and "sopbot.service" in line
    ]
    assert complaints == [], result.stderr
