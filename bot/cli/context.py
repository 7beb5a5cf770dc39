"""State shared by the commands: the settings file, loaded once and only when needed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import typer

from bot.config.settings import DEFAULT_SETTINGS_FILE, ENV_PREFIX, Settings, load_settings


@dataclass
class CliState:
    settings_path: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.settings_path)
            named = self.settings_path is not None or ENV_PREFIX + "SETTINGS" in os.environ
            if not named and not Path(DEFAULT_SETTINGS_FILE).exists() and not settings.sop_path.is_dir():
                fail(
                    f"no settings.toml and no {settings.sop_dir}/ folder in {Path.cwd()}: run sopbot in "
                    "your project folder, or name the settings with -s / SOPBOT_SETTINGS"
                )
            self._settings = settings
        return self._settings


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"sopbot: {message}", err=True)
    raise typer.Exit(code)
