"""State shared by the commands: the settings file, loaded once and only when needed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from bot.config.settings import Settings


@dataclass
class CliState:
    settings_path: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        from bot.config.settings import (  # pydantic: when needed
            DEFAULT_SETTINGS_FILE,
            ENV_PREFIX,
            load_settings,
        )

        if self._settings is None:
            settings = load_settings(self.settings_path)
            named = self.settings_path is not None or ENV_PREFIX + "SETTINGS" in os.environ
            if not named and not _configured_by_environment() and not Path(DEFAULT_SETTINGS_FILE).exists() \
                    and not settings.sop_path.is_dir():  # fmt: skip
                fail(
                    f"no settings.toml and no {settings.sop_dir}/ folder in {Path.cwd()}: run sopbot in "
                    "your project folder, or name the settings with -s / SOPBOT_SETTINGS"
                )
            self._settings = settings
        return self._settings


def _configured_by_environment() -> bool:
    """Settings given as SOPBOT_* variables (a container, a service unit) need no folder."""
    secrets = ("SOPBOT_TOKEN_", "SOPBOT_WEBHOOK_SECRET", "SOPBOT_TEST_")
    return any(name.startswith("SOPBOT_") and not name.startswith(secrets) for name in os.environ)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"sopbot: {message}", err=True)
    raise typer.Exit(code)
