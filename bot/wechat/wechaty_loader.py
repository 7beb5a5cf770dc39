"""Imports python-wechaty once per process, with the compatibility fixes applied and its
side effects contained: its cache folder, its stray environment variables, its loggers."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from types import ModuleType

from bot.wechat import wechaty_compat

log = logging.getLogger("bot.wechat.wechaty")

# The client falls back to these when our options are empty; a leftover one in the
# operator's shell must never send a token to the wrong place.
STRAY_ENV = ("TOKEN", "token", "ENDPOINT", "endpoint")
_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # wechaty_puppet.get_logger's

_loaded: ModuleType | None = None
_secrets: set[str] = set()


class _Redact(logging.Filter):
    """wechaty logs the token in plain text ("there are endpoint<…> and token<…>")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("there are "):
            return False  # "there are endpoint<…> and token<…>": said on every connect, means nothing
        if _secrets:
            message = record.getMessage()
            for secret in _secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def remember_secret(secret: str) -> None:
    """Mask `secret` wherever wechaty's own loggers would print it."""
    if secret:
        _secrets.add(secret)


def load(cache_dir: Path) -> ModuleType:
    """Return the `wechaty` module, imported with every fix applied. `cache_dir` takes the
    `.wechaty/` folder wechaty creates at import (first caller wins: it is read once)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CACHE_DIR", str(cache_dir))
    os.environ.setdefault("WECHATY_LOG", "warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # telnetlib, pkg_resources, …: theirs, not ours
        wechaty_compat.apply()
        import wechaty  # deliberately late: the fixes must come first

    _tame_loggers()
    _loaded = wechaty
    return wechaty


def hide_stray_env() -> dict[str, str]:
    """Remove the generic TOKEN/ENDPOINT variables wechaty would fall back to; returns them."""
    return {name: os.environ.pop(name) for name in STRAY_ENV if name in os.environ}


def _tame_loggers() -> None:
    # wechaty gives each module its own stderr handler at INFO (message texts included) and
    # stops propagation; route them through ours at WARNING with secrets masked.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or logger.propagate:
            continue
        formats = {getattr(h.formatter, "_fmt", None) for h in logger.handlers}
        if _FORMAT not in formats:
            continue
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.WARNING)
        logger.addFilter(_Redact())
        log.debug("wechaty logger %s now goes through sopbot's logging", name)


TOKEN_IN_TEXT = re.compile(r'TOKEN "[^"]*"')


def scrub(text: str) -> str:
    """`text` with any token wechaty or the gateway quoted replaced by ***."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return TOKEN_IN_TEXT.sub('TOKEN "***"', text)
