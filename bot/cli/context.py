"""State shared by the commands: the settings file, loaded once and only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import typer

from bot.config.settings import Settings, load_settings


@dataclass
class CliState:
    settings_path: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.settings_path)
        return self._settings


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"sopbot: {message}", err=True)
    raise typer.Exit(code)
