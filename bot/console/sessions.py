"""Logins: the token check, signed session cookies with an expiry, a CSRF token per session,
and a limit on wrong tokens per client.

A session is a cookie `sid.expiry.signature` (HMAC-SHA256 with a key derived from the login
token): it survives a restart of the daemon, ends by itself after `session_hours`, ends at
once on logout (the id is remembered as ended until it would have expired), and all end when
the token changes. The CSRF token is another HMAC of the session id: every form carries it,
every POST must present it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "sopbot_console"
LOGIN_COOKIE = "sopbot_console_login"  # the login form's own CSRF value, before any session
MAX_FAILURES = 10  # wrong tokens per client ...
FAILURE_WINDOW = timedelta(minutes=10)  # ... within this window, then 429 until it passes
_MAX_CLIENTS = 10_000
_MAX_ENDED = 10_000


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def token_matches(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths and characters."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode("utf-8")).digest(),
    )


@dataclass(frozen=True)
class Session:
    sid: str
    expires: datetime
    csrf: str


class Sessions:
    def __init__(self, token: str, hours: float) -> None:
        self._key = hmac.new(token.encode("utf-8"), b"sopbot console sessions v1", hashlib.sha256).digest()
        self.lifetime = timedelta(hours=hours)
        self._ended: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode("ascii"), hashlib.sha256).digest())

    def _session(self, sid: str, expires: datetime) -> Session:
        return Session(sid, expires, self._sign(f"csrf:{sid}")[:32])

    def issue(self, now: datetime) -> tuple[Session, str]:
        """A new session and its cookie value."""
        sid = secrets.token_urlsafe(18)
        expires = now + self.lifetime
        body = f"{sid}.{int(expires.timestamp())}"
        return self._session(sid, expires), f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        """The session of a cookie, or None (missing, forged, expired or logged out)."""
        if not cookie or len(cookie) > 200 or not cookie.isascii():
            return None
        sid, _, rest = cookie.partition(".")
        stamp, _, signature = rest.partition(".")
        if not (sid and stamp.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign(f"{sid}.{stamp}")):
            return None
        expires = datetime.fromtimestamp(int(stamp), tz=now.tzinfo)
        if expires <= now:
            return None
        with self._lock:
            if sid in self._ended:
                return None
        return self._session(sid, expires)

    def end(self, session: Session, now: datetime) -> None:
        with self._lock:
            for sid in [s for s, until in self._ended.items() if until <= now]:
                del self._ended[sid]
            if len(self._ended) < _MAX_ENDED:
                self._ended[session.sid] = session.expires

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        return (
            bool(given) and given is not None and given.isascii() and hmac.compare_digest(given, session.csrf)
        )


class LoginLimiter:
    """At most MAX_FAILURES wrong tokens per client within FAILURE_WINDOW."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str, now: datetime) -> int:
        """Seconds until the client may try again (0: now)."""
        with self._lock:
            seen = self._failures.get(client)
            if not seen:
                return 0
            while seen and now - seen[0] > FAILURE_WINDOW:
                seen.popleft()
            if len(seen) < MAX_FAILURES:
                return 0
            return max(1, int((seen[0] + FAILURE_WINDOW - now).total_seconds()) + 1)

    def failed(self, client: str, now: datetime) -> None:
        with self._lock:
            if client not in self._failures and len(self._failures) >= _MAX_CLIENTS:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, deque(maxlen=MAX_FAILURES)).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
