"""Logging that an operator can read at a glance, or JSON lines for a log shipper."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, tzinfo

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ReadableFormatter(logging.Formatter):
    """`12-02 10:02:03+08:00 INFO  recorder  message from 王芳: 上新了吗？  account=main`, in the
    configured time zone (the one `outbox`, `contact` and `plan` show), with its offset."""

    def __init__(self, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.tz = tz

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, self.tz or UTC)
        stamp = moment.strftime("%m-%d %H:%M:%S") + moment.isoformat()[-6:]
        area = record.name.removeprefix("bot.")
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        line = f"{stamp} {record.levelname:<5} {area:<10} {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.tz = tz

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, self.tz or UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


SECRET_VARIABLES = ("SOPBOT_TOKEN_", "SOPBOT_WEBHOOK_SECRET", "WECHATY_PUPPET_SERVICE_TOKEN", "WECHATY_TOKEN")
MIN_SECRET = 6  # shorter values would blank out ordinary words


class RedactingFormatter(logging.Formatter):
    """Masks every secret the environment holds (puppet tokens, the webhook secret) in a
    formatted record, wherever it appears: message, arguments, extras or traceback. The
    gRPC libraries log the puppet token (the `:authority` header) at DEBUG."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, "***")
        return line


def environment_secrets() -> list[str]:
    return [
        value.strip()
        for name, value in os.environ.items()
        if name.startswith(SECRET_VARIABLES) and value.strip()
    ]


def setup_logging(level: str = "INFO", fmt: str = "text", tz: tzinfo | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter(tz) if fmt == "json" else ReadableFormatter(tz)
    handler.setFormatter(RedactingFormatter(formatter, environment_secrets()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "sqlalchemy", "alembic", "asyncio", "jieba"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
