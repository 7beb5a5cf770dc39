"""The operator's column mappings for an import: `--mapping FILE` first, then sop/columns.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.context import fail

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.tables.spec import Preset, Schema


def operator_mappings(settings: Settings, given: Path | None, schema: Schema) -> list[Preset]:
    """The mappings for `schema`; every mistake listed with file:line, then exit 2."""
    from bot.config.errors import ConfigError
    from bot.tables.mapfile import MAPPING_FILE, load_mappings

    paths = [given] if given is not None else []
    if (settings.sop_path / MAPPING_FILE).is_file():
        paths.append(settings.sop_path / MAPPING_FILE)
    found = []
    try:
        for path in paths:
            found += load_mappings(path, schema, settings.base_dir)
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        fail("the column mapping has mistakes; nothing was imported")
    return found
