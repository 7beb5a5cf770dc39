"""Turns what python-wechaty and grpclib raise into our transport errors, each with one
line an operator can act on."""

from __future__ import annotations

import asyncio
import socket
import ssl

from bot.wechat.transport import (
    ConnectError,
    DeliveryUncertainError,
    RecipientGoneError,
    RiskControlError,
    TransientSendError,
    TransportError,
)
from bot.wechat.wechaty_loader import scrub

# Words gateways use when WeChat itself pushes back on the account.
_RISK_WORDS = ("频繁", "risk", "rate limit", "too frequent", "blocked", "banned", "封", "logout", "logged out")
# Failures that happen before the request leaves: nothing can have been sent.
_NOT_SENT = (ConnectionRefusedError, socket.gaierror)


def error_text(error: BaseException) -> str:
    """One line for a log: the exception's class and its first line, secrets masked."""
    raw = str(getattr(error, "message", None) or error).strip()  # GRPCError: the server's details
    text = raw.splitlines()[0] if raw else ""
    return scrub(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def _status_name(error: BaseException) -> str | None:
    status = getattr(error, "status", None)
    return getattr(status, "name", None)


def connect_error(error: BaseException, *, endpoint: str, token_env: str, tls: bool) -> ConnectError:
    """Why the first connection to the gateway failed, as one line."""
    status = _status_name(error)
    text = str(getattr(error, "message", None) or error)  # matched raw; only descriptions are scrubbed
    if status == "UNAUTHENTICATED" or "Invalid Wechaty TOKEN" in text:
        return ConnectError(f"the gateway at {endpoint} refused the token in {token_env} (wrong token?)")
    if "can't not ping endpoint" in text or isinstance(error, ConnectionRefusedError | socket.gaierror):
        return ConnectError(
            f"cannot reach the gateway at {endpoint} (nothing answers there: is it running, "
            "is the host:port right, does a firewall block it?)"
        )
    mismatch = tls_mismatch(endpoint, tls=tls)
    if mismatch:
        return ConnectError(mismatch)
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return ConnectError(f"the gateway at {endpoint} did not answer in time")
    return ConnectError(f"could not connect to the gateway at {endpoint}: {error_text(error)}")


def tls_mismatch(endpoint: str, *, tls: bool, timeout: float = 2.0) -> str | None:
    """If the gateway's TLS setting differs from ours, say so; else None. Probes with a bare
    TLS handshake: a TLS server answers it, a plaintext gRPC server does not."""
    host, _, port = endpoint.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="insecure"),
        ):
            server_tls = True
    except (ssl.SSLError, ConnectionResetError, TimeoutError, OSError):
        server_tls = False
    if server_tls and not tls:
        return (
            f"the gateway at {endpoint} speaks TLS but this account is set to plaintext: "
            "set tls = true for it (or run the gateway with TLS disabled)"
        )
    if tls and not server_tls:
        return (
            f"the gateway at {endpoint} speaks plaintext but this account is set to tls = true: "
            "set tls = false for it (or enable TLS on the gateway)"
        )
    return None


def send_error(error: BaseException, target: str) -> TransportError:
    """A failed send, sorted by what it means for a retry: gone recipients are skipped,
    WeChat pushing back pauses the account, a request that never left is retried, and a
    call cut off mid-way may have been delivered (so it is not blindly retried)."""
    text = error_text(error)
    lowered = text.lower()
    if any(word in lowered for word in ("unknown conversation", "not found", "not exist", "no such")):
        return RecipientGoneError(f"{target}: {text}")
    if any(word in lowered for word in _RISK_WORDS):
        return RiskControlError(f"{target}: {text}")
    if isinstance(error, _NOT_SENT) or _status_name(error) in {"UNAUTHENTICATED", "INVALID_ARGUMENT"}:
        return TransientSendError(f"{target}: {text}")
    return DeliveryUncertainError(f"{target}: {text}")
