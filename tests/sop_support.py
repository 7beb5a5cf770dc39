"""Helpers for the SOP suites: a project folder with SOP files and templates."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config.settings import Settings
from tests.support import make_settings

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
REPO = Path(__file__).resolve().parent.parent

BASIC_TEMPLATES = {
    "templates/default/hello.j2": "你好{{ contact.display_name }}，{{ today.weekday }}快乐",
    "templates/default/group_hello.j2": "大家好，这里是{{ group.name }}",
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def project(
    root: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch, settings: str = ""
) -> Settings:
    """A project folder (made the working directory, so paths print as sop/x.yaml)."""
    root.mkdir(parents=True, exist_ok=True)
    write_files(root, files)
    monkeypatch.chdir(root)
    return make_settings(root, settings)
