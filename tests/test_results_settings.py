"""`[results]` in settings.toml: the attribution windows, checked at the door."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from tests.support import write_project


def test_the_windows_default_to_the_documented_ones(tmp_path: Path) -> None:
    results = load_settings(write_project(tmp_path)).results
    assert (results.reply, results.order, results.deletion, results.deletion_long, results.service) == (
        timedelta(hours=24),
        timedelta(days=7),
        timedelta(hours=24),
        timedelta(days=7),
        timedelta(minutes=30),
    )
    assert (results.top_tags, results.rollup_interval) == (10, 60.0)


def test_windows_are_durations_an_operator_writes(tmp_path: Path) -> None:
    path = write_project(
        tmp_path, '[results]\nreply_window = "2小时"\norder_window = "3d"\nservice_minutes = 15\n'
    )
    results = load_settings(path).results
    assert (results.reply, results.order, results.service) == (
        timedelta(hours=2),
        timedelta(days=3),
        timedelta(minutes=15),
    )


def test_a_bad_window_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_project(tmp_path, '[results]\nreply_window = "soon"\norder_window = "0"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:2: results.reply_window: 'soon' is not a duration (write it like '15m', '2h' or '3d')",
        f"{path}:3: results.order_window: '0' must be longer than 0",
    ]


def test_the_short_deletion_window_must_not_be_the_longer_one(tmp_path: Path) -> None:
    path = write_project(tmp_path, '[results]\ndeletion_window = "8d"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "deletion_window 8d is longer than deletion_window_long 7d" in str(caught.value.issues[0])
