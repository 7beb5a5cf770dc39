"""The console's doors, over a real socket: against a real `sopbot run` on the sandbox WeChat
and against `sopbot console` alone. No token or a wrong one gets nothing; an action without
the CSRF token is refused and changes nothing; what contacts wrote is text; a console open to
the network without its token does not start; sessions end."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.store import Database
from bot.store.models import Account, Contact, DeliveryPause, InboundMessage, OutboxMessage
from tests.support import plan, write_project
from tests.test_cli import sopbot_env
from tests.test_monitor import free_port
from tests.waiting import LineReader, stop_process, wait_for

REPO = Path(__file__).resolve().parents[1]
TOKEN = "console-test-token-0123456789"
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_ALIAS = "<b>粗体</b>"
HOSTILE_TEXT = "<img src=x onerror=alert(2)>在吗"
HOSTILE_SENT = "</textarea><script>alert(3)</script>今日精选"


# -- helpers the other console suites use too --------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Any
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to look at, not to follow


class Client:
    """A browser without JavaScript: cookies kept, redirects not followed."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _Stay)

    def request(
        self,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> Answer:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method=method)
        try:
            with self.opener.open(request, timeout=60) as answer:
                return Answer(answer.status, answer.headers, answer.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read().decode())

    def get(self, path: str) -> Answer:
        return self.request(path)

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        body = urllib.parse.urlencode(fields).encode()
        return self.request(path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def login(self, token: str = TOKEN) -> Answer:
        form = self.get("/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.body)
        assert nonce is not None, form.body
        return self.post("/login", {"nonce": nonce.group(1), "token": token, "next": "/"})

    def csrf(self) -> str:
        page = self.get("/import")
        found = re.search(r'name="csrf" value="([^"]+)"', page.body)
        assert page.status == 200 and found is not None, page.body[:300]
        return found.group(1)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def settings_text(port: int, extra: str = "") -> str:
    return (
        'timezone = "Asia/Shanghai"\n\n[[accounts]]\nid = "main"\nname = "演示账号"\ntransport = "sandbox"\n\n'
        "[sandbox]\nautoplay = false\n\n[monitor]\nenabled = false\n\n"
        f"[console]\nport = {port}\n{extra}"
    )


def make_folder(folder: Path, port: int, extra: str = "") -> Path:
    """A project with the shipped SOP files and templates; returns its folder."""
    import shutil

    write_project(folder, settings_text(port, extra))
    shutil.copytree(REPO / "sop", folder / "sop")
    shutil.copytree(REPO / "templates", folder / "templates")
    return folder


def database_of(folder: Path) -> Database:
    return Database(f"sqlite:///{folder / 'data' / 'sopbot.db'}")


def seed_hostile(folder: Path) -> None:
    """A contact whose name, remark and messages look like markup, in the database the daemon
    will open: a message they wrote, and one we sent them."""
    from bot.store.migrate import upgrade

    database = database_of(folder)
    upgrade(database)
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    with database.session() as session:
        session.add(Account(id="main", name="演示账号", transport="sandbox", updated_at=now))
        session.flush()
        contact = Contact(
            account_id="main", wxid="wxid_hostile", name=HOSTILE_NAME, alias=HOSTILE_ALIAS, is_friend=True,
            first_seen_at=now, last_message_at=now,
        )  # fmt: skip
        session.add(contact)
        session.flush()
        session.add(
            InboundMessage(
                account_id="main", transport_msg_id="hostile-1", contact_id=contact.id, text=HOSTILE_TEXT,
                sent_at=now, received_at=now,
            )
        )  # fmt: skip
        contact_id = contact.id
    assert contact_id is not None
    plan(database, [contact_id], text=HOSTILE_SENT, at=now)
    with database.session() as session:
        session.execute(
            update(OutboxMessage).values(state="skipped", reason="<i>opted out</i>", updated_at=now)
        )
    database.dispose()


def start(folder: Path, *args: str, token: str | None = TOKEN) -> tuple[subprocess.Popen[str], LineReader]:
    env = sopbot_env()
    if token is not None:
        env["SOPBOT_CONSOLE_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    return process, LineReader(process.stderr)


@dataclass
class Running:
    folder: Path
    port: int
    process: subprocess.Popen[str]
    log: LineReader

    def client(self) -> Client:
        return Client(self.port)

    def database(self) -> Database:
        return database_of(self.folder)


@contextmanager
def run_daemon(folder: Path) -> Iterator[Running]:
    port = free_port()
    make_folder(folder, port)
    seed_hostile(folder)
    process, log = start(folder, "run")
    try:
        log.wait_for([f"console on http://127.0.0.1:{port}", "account main online"])
        yield Running(folder, port, process, log)
        assert stop_process(process, signal.SIGINT) == 0, "\n".join(log.rest())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def run_console(folder: Path, extra: str = "", token: str | None = TOKEN) -> Iterator[Running]:
    """`sopbot console` alone on a database a daemon made before (here: migrated and seeded)."""
    port = free_port()
    make_folder(folder, port, extra)
    seed_hostile(folder)
    process, log = start(folder, "console", token=token)
    try:
        log.wait_for([f"console on http://127.0.0.1:{port}"])
        yield Running(folder, port, process, log)
        assert stop_process(process, signal.SIGTERM) == 0, "\n".join(log.rest())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with run_daemon(tmp_path_factory.mktemp("console-daemon")) as running:
        yield running


def pauses(running: Running) -> list[str]:
    database = running.database()
    try:
        with database.session(read_only=True) as session:
            return list(session.execute(select(DeliveryPause.scope)).scalars())
    finally:
        database.dispose()


# -- no login, no data -----------------------------------------------------------------------


def test_without_a_login_every_page_sends_to_the_login_and_shows_nothing(daemon: Running) -> None:
    anonymous = daemon.client()
    for path in ("/", "/contacts", "/contacts?where=tier%20%3E%3D%20basic", "/contacts/1", "/outbox", "/sops",
                 "/sops/calendar", "/sops/daily_pick/preview?tier=repeat", "/import", "/outbox/1"):  # fmt: skip
        answer = anonymous.get(path)
        assert answer.status == 303, (path, answer.status)
        assert answer.location is not None and answer.location.startswith("/login?next="), answer.location
        assert "alert" not in answer.body and "wxid_" not in answer.body and "陈静" not in answer.body
    login = anonymous.get("/login")
    assert login.status == 200 and 'name="token"' in login.body
    assert "陈静" not in login.body and "wxid_" not in login.body
    # actions: 401, nothing changed
    assert anonymous.post("/accounts/main/pause", {"reason": "x"}).status == 401
    assert anonymous.post("/contacts/1/opt-out", {}).status == 401
    assert pauses(daemon) == []
    # the monitor's pages stay open, as on the monitor's own port
    health = anonymous.get("/healthz")
    assert health.status == 200 and '"ready": true' in health.body
    assert anonymous.get("/livez").body == '{"live": true}'
    metrics = anonymous.get("/metrics")
    assert metrics.status == 200 and 'sopbot_account_online{account="main"} 1.0' in metrics.body


def test_a_wrong_token_is_refused_and_a_right_one_opens_the_pages(daemon: Running) -> None:
    stranger = daemon.client()
    for wrong in ("wrong-token-wrong-token", TOKEN[:-1], TOKEN + "x", "", "令牌" * 10):
        answer = stranger.login(wrong)
        assert answer.status == 401, (wrong, answer.status)
        assert stranger.cookie("sopbot_console") is None
        assert "wxid_" not in answer.body and "陈静" not in answer.body
        assert stranger.get("/contacts").status == 303
    # a forged cookie (right shape, wrong signature) is no session either
    stranger.jar.set_cookie(_cookie("sopbot_console", "abc.9999999999.forged", stranger))
    assert stranger.get("/contacts").status == 303
    operator = daemon.client()
    answer = operator.login()
    assert answer.status == 303 and answer.location == "/"
    cookie = answer.headers.get("set-cookie")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = operator.get("/contacts")
    assert page.status == 200 and "陈静" in page.body
    assert "script-src 'self'" in page.headers.get("content-security-policy")
    assert page.headers.get("x-frame-options") == "DENY"


def _cookie(name: str, value: str, client: Client) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False, None, None, {}
    )


def test_a_login_form_from_elsewhere_is_refused(daemon: Running) -> None:
    """The login form carries a value that must match its own cookie: a page on another site
    cannot log a browser in (login CSRF)."""
    client = daemon.client()
    answer = client.post("/login", {"nonce": "made-up", "token": TOKEN})
    assert answer.status == 403
    assert client.cookie("sopbot_console") is None


# -- CSRF --------------------------------------------------------------------------------------


def post_routes() -> list[str]:
    """Every POST route of the console, with its parameters filled in."""
    from starlette.routing import Route

    from bot.console.app import build_app

    class Stub:
        pass

    app = build_app(Stub())  # type: ignore[arg-type]
    paths = []
    for route in app.routes:
        if isinstance(route, Route) and route.methods and "POST" in route.methods and route.path != "/login":
            path = re.sub(r"\{contact_id:int\}", "1", route.path)
            path = re.sub(r"\{account_id\}", "main", path)
            path = re.sub(r"\{sop_id\}", "daily_pick", path)
            paths.append(re.sub(r"\{upload_id\}", "nothing", path))
    return paths


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(daemon: Running) -> None:
    client = daemon.client()
    assert client.login().status == 303
    before = _opted_out(daemon)
    assert client.post("/accounts/main/pause", {"reason": "no token"}).status == 403
    assert client.post("/accounts/main/pause", {"reason": "wrong", "csrf": "x" * 32}).status == 403
    other = daemon.client()
    other.login()
    assert client.post("/accounts/main/pause", {"reason": "another's", "csrf": other.csrf()}).status == 403
    assert pauses(daemon) == []
    assert client.post("/contacts/1/opt-out", {}).status == 403
    assert _opted_out(daemon) == before
    # every action there is, not only these two (new routes are guarded the same way)
    routes = post_routes()
    assert len(routes) >= 8, routes
    for path in routes:
        answer = client.post(path, {"reason": "x"})
        assert answer.status == 403, (path, answer.status)
    assert pauses(daemon) == [] and _opted_out(daemon) == before
    assert client.get("/").status == 200  # still logged in: the 403s ended nothing
    # with the token the same action works, and is undone
    token = client.csrf()
    assert client.post("/accounts/main/pause", {"reason": "check", "csrf": token}).status == 303
    assert pauses(daemon) == ["main"]
    assert client.post("/accounts/main/resume", {"csrf": token}).status == 303
    assert pauses(daemon) == []


def test_a_post_from_another_site_is_refused_even_with_the_session(daemon: Running) -> None:
    client = daemon.client()
    client.login()
    body = urllib.parse.urlencode({"reason": "x", "csrf": client.csrf()}).encode()
    answer = client.request(
        "/accounts/main/pause", body,
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
    )  # fmt: skip
    assert answer.status == 403
    assert pauses(daemon) == []


def _opted_out(running: Running) -> dict[int, bool]:
    database = running.database()
    try:
        with database.session(read_only=True) as session:
            return dict(session.execute(select(Contact.id, Contact.opted_out)).all())  # type: ignore[arg-type]
    finally:
        database.dispose()


# -- what contacts wrote is text -----------------------------------------------------------------


def test_names_and_messages_that_look_like_markup_render_as_text(daemon: Running) -> None:
    client = daemon.client()
    client.login()
    escaped_name = "&lt;script&gt;alert(1)&lt;/script&gt;"
    listing = client.get("/contacts?q=" + urllib.parse.quote("<script>"))
    assert listing.status == 200
    assert escaped_name in listing.body and HOSTILE_NAME not in listing.body
    assert "&lt;b&gt;粗体&lt;/b&gt;" in listing.body and "<b>粗体" not in listing.body
    contact_id = int(re.search(r'href="/contacts/(\d+)">' + re.escape(escaped_name), listing.body).group(1))  # type: ignore[union-attr]
    page = client.get(f"/contacts/{contact_id}")
    assert page.status == 200
    assert escaped_name in page.body and HOSTILE_NAME not in page.body
    assert "&lt;img src=x onerror=alert(2)&gt;在吗" in page.body and "<img src=x" not in page.body
    assert "&lt;/textarea&gt;&lt;script&gt;alert(3)&lt;/script&gt;今日精选" in page.body
    assert "<script>alert" not in page.body
    # the only script on any page is the console's own file
    scripts = re.findall(r"<script[^>]*>", page.body)
    assert len(scripts) == 1 and scripts[0].startswith('<script src="/static/console.js?v='), scripts
    outbox = client.get("/outbox?recipient=" + urllib.parse.quote("<script>"))
    assert "&lt;i&gt;opted out&lt;/i&gt;" in outbox.body and "<i>opted out" not in outbox.body
    assert escaped_name in outbox.body and "<script>alert" not in outbox.body
    # an expression quoting it is echoed as text too
    where = client.get("/contacts?where=" + urllib.parse.quote('tag:"<script>alert(1)</script>"'))
    assert where.status == 200 and "<script>alert" not in where.body


# -- the door at start ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "console"])
def test_a_console_open_to_the_network_without_a_token_does_not_start(tmp_path: Path, command: str) -> None:
    port = free_port()
    make_folder(tmp_path, port, 'host = "0.0.0.0"\n')
    lines = (tmp_path / "settings.toml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if text.startswith("host = "))
    process, log = start(tmp_path, command, token=None)
    assert process.wait(timeout=120) == 2
    output = "\n".join(log.rest())
    assert f"settings.toml:{line}: console.host: '0.0.0.0' is reachable from other machines" in output, output
    assert "SOPBOT_CONSOLE_TOKEN is not set" in output
    assert "account main online" not in output  # refused before anything started
    with __import__("socket").socket() as probe:  # and nothing listens on the port
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_short_token_is_refused_naming_the_variable(tmp_path: Path) -> None:
    make_folder(tmp_path, free_port())
    process, log = start(tmp_path, "console", token="short")
    assert process.wait(timeout=120) == 2
    assert "environment SOPBOT_CONSOLE_TOKEN: console: the console token is 5 characters" in "\n".join(
        log.rest()
    )


def test_on_loopback_without_a_token_the_token_is_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    with run_console(tmp_path, token=None) as running:
        path = tmp_path / "data" / f"console-{running.port}.token"
        assert path.stat().st_mode & 0o777 == 0o600
        token = path.read_text(encoding="utf-8").strip()
        assert len(token) >= 24
        assert f"data/console-{running.port}.token" in "\n".join(running.log.snapshot())
        assert token not in "\n".join(running.log.snapshot())  # the log names the file, never the token
        client = running.client()
        login_page = client.get("/login").body
        assert f"data/console-{running.port}.token" in login_page and token not in login_page
        assert client.login(TOKEN).status == 401
        assert client.login(token).status == 303
        assert client.get("/contacts").status == 200


# -- sessions ---------------------------------------------------------------------------------------


def test_sessions_end_by_themselves_and_on_logout(tmp_path: Path) -> None:
    with run_console(tmp_path, "session_hours = 0.001\n") as running:  # 3.6 s
        client = running.client()
        assert client.login().status == 303
        kept = client.cookie("sopbot_console")
        assert kept and client.get("/contacts").status == 200
        # the server ends it, whatever the browser does with the cookie's Max-Age (a browser
        # may drop it a moment earlier: Max-Age is whole seconds)
        replay = Client(running.port)
        replay.jar.set_cookie(_cookie("sopbot_console", kept, replay))
        answer = wait_for(
            lambda: (seen := replay.get("/contacts")).status == 303 and seen,
            what="the server to end the session by itself",
        )
        assert answer.location == "/login?next=%2Fcontacts&expired=1"
        assert client.get("/contacts").status == 303
        # a new login, then a logout: the same cookie is no session any more
        assert client.login().status == 303
        kept = client.cookie("sopbot_console")
        assert kept and client.get("/contacts").status == 200
        assert client.post("/logout", {"csrf": client.csrf()}).status == 303
        replay = Client(running.port)
        replay.jar.set_cookie(_cookie("sopbot_console", kept, replay))
        assert replay.get("/contacts").status == 303


def test_wrong_tokens_from_one_client_are_limited(tmp_path: Path) -> None:
    with run_console(tmp_path) as running:
        client = running.client()
        statuses = [client.login("not-the-token-at-all").status for _ in range(11)]
        assert statuses[:10] == [401] * 10
        assert statuses[10] == 429
        # the right token waits too: guessing stays slow
        locked = client.login()
        assert locked.status == 429 and int(locked.headers.get("retry-after")) > 0
        assert client.get("/contacts").status == 303


def test_the_standalone_console_reads_the_same_database_without_wechat(tmp_path: Path) -> None:
    with run_console(tmp_path) as running:
        client = running.client()
        client.login()
        page = client.get("/contacts")
        assert page.status == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
        dashboard = client.get("/")
        assert dashboard.status == 200 and "main" in dashboard.body
        assert "account main online" not in "\n".join(running.log.snapshot())
        health = client.get("/healthz")  # it holds no account: live, not ready
        assert health.status == 503 and "standby" in health.body
        assert os.path.exists(tmp_path / "data" / "sopbot.db")


def test_a_login_outlives_a_restart_but_not_a_new_token(tmp_path: Path) -> None:
    port = free_port()
    make_folder(tmp_path, free_port())  # `--port` overrides the settings' port
    seed_hostile(tmp_path)

    def serve(token: str) -> tuple[subprocess.Popen[str], LineReader]:
        process, log = start(tmp_path, "console", "--port", str(port), token=token)
        log.wait_for([f"console on http://127.0.0.1:{port}"])
        return process, log

    process, _ = serve(TOKEN)
    try:
        client = Client(port)
        assert client.login().status == 303
        kept = client.cookie("sopbot_console")
        assert kept
        assert stop_process(process, signal.SIGTERM) == 0
        process, _ = serve(TOKEN)
        again = Client(port)
        again.jar.set_cookie(_cookie("sopbot_console", kept, again))
        assert again.get("/contacts").status == 200  # the same token: the session goes on
        assert stop_process(process, signal.SIGTERM) == 0
        process, _ = serve("another-token-another-token")
        after = Client(port)
        after.jar.set_cookie(_cookie("sopbot_console", kept, after))
        assert after.get("/contacts").status == 303  # a new token ends every session
        assert stop_process(process, signal.SIGTERM) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_client_cannot_pick_its_address_to_guess_more(tmp_path: Path) -> None:
    """On loopback every local process is 127.0.0.1: an X-Forwarded-For of its choosing must
    not buy it ten more guesses."""
    with run_console(tmp_path) as running:
        client = running.client()
        statuses = []
        for n in range(11):
            form = client.get("/login")
            nonce = re.search(r'name="nonce" value="([^"]+)"', form.body)
            assert nonce is not None
            body = urllib.parse.urlencode(
                {"nonce": nonce.group(1), "token": "wrong-token-wrong-token"}
            ).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": f"10.0.0.{n}"}
            statuses.append(client.request("/login", body, headers).status)
        assert statuses == [401] * 10 + [429]


def test_a_crafted_url_chooses_neither_the_language_link_nor_the_notice(tmp_path: Path) -> None:
    with run_console(tmp_path) as running:
        client = running.client()
        assert client.login().status == 303
        lost = client.get("//evil.example/x")
        switch = re.search(r'<a href="([^"]*)" data-lang-switch>', lost.body)
        assert lost.status == 404 and switch is not None and switch.group(1) == "?lang=en"
        spoof = urllib.parse.quote("main 因风控已暂停，请立即访问 evil.example 重新验证")
        page = client.get(f"/?notice=paused&account={spoof}")
        assert page.status == 200 and "请立即访问" not in page.body  # (only URL-encoded, in the language link)
        assert "已暂停账号 main" in client.get("/?notice=paused&account=main").body
        assert "已暂停账号" not in page.body


def test_dates_and_ids_out_of_range_are_no_server_error(tmp_path: Path) -> None:
    with run_console(tmp_path) as running:
        client = running.client()
        assert client.login().status == 303
        for path in (
            "/sops/calendar?month=9999-12",
            "/sops/calendar?month=9999-12&counts=1",
            "/outbox?to=9999-12-31&from=0001-01-01",
            "/sops/daily_pick/preview?date=9999-12-31",
            "/sops/daily_pick/preview?date=0001-01-01",
        ):
            assert client.get(path).status == 200, path
        for path in ("/contacts/99999999999999999999999", "/outbox/99999999999999999999999"):
            assert client.get(path).status == 404, path
