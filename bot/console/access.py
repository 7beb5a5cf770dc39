"""Who may log in to the console, decided once at start.

- The token comes from the environment variable `[console] token_env` (default
  `SOPBOT_CONSOLE_TOKEN`), never from a file an operator edits; it must be at least
  `MIN_TOKEN` characters.
- Bound to anything but loopback, the console refuses to start without that variable: the
  error names the line of `host` in settings.toml (or the environment variable that set it).
- On loopback without the variable, a random token is made for this run and written to
  `data/console-PORT.token`, readable by the daemon's own user only; the log names the file,
  never the token. Only someone who can read the daemon's files can log in.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot.config.errors import ConfigError, ConfigIssue
from bot.config.settings import ENV_PREFIX, Settings
from bot.config.toml_lines import key_lines, line_of

MIN_TOKEN = 16
HOST_ENV = f"{ENV_PREFIX}CONSOLE__HOST"


@dataclass(frozen=True)
class Access:
    """What a login must present, and where it came from."""

    token: str
    generated: bool  # made for this run: no token variable, loopback only
    token_env: str
    loopback: bool


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; an empty host or 0.0.0.0 listens everywhere."""
    name = host.strip().strip("[]")
    if name.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def host_source(settings: Settings) -> tuple[str, int | None]:
    """Where `[console] host` was set: the settings file and line, or the environment."""
    if HOST_ENV in os.environ:
        return f"environment {HOST_ENV}", None
    if settings.source == "(defaults)":
        return settings.source, None
    file = settings.base_dir / Path(settings.source).name
    try:
        lines = key_lines(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return settings.source, None
    return settings.source, line_of(lines, ("console", "host"))


def resolve_access(settings: Settings) -> Access:
    """The login token for this run, or ConfigError saying what to set."""
    config = settings.console
    loopback = is_loopback(config.host)
    given = os.environ.get(config.token_env, "").strip()
    if given:
        if len(given) < MIN_TOKEN:
            raise ConfigError(
                [
                    ConfigIssue(
                        f"environment {config.token_env}",
                        None,
                        "console",
                        f"the console token is {len(given)} characters; use at least {MIN_TOKEN} "
                        "(for example the output of `openssl rand -hex 16`)",
                    )
                ]
            )
        return Access(given, False, config.token_env, loopback)
    if not loopback:
        file, line = host_source(settings)
        raise ConfigError(
            [
                ConfigIssue(
                    file,
                    line,
                    "console.host",
                    f"{config.host!r} is reachable from other machines, but ${config.token_env} is not "
                    "set: set the login token in the environment (at least "
                    f'{MIN_TOKEN} characters), or keep host = "127.0.0.1"',
                )
            ]
        )
    return Access(secrets.token_urlsafe(24), True, config.token_env, loopback)


def token_file(folder: Path, port: int) -> Path:
    return folder / f"console-{port}.token"


def write_token_file(access: Access, folder: Path, port: int) -> Path:
    """The generated token, in a file only this user can read (replaced on every start)."""
    path = token_file(folder, port)
    folder.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(access.token + "\n")
    return path
