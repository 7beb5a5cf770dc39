"""Pages from the package's Jinja templates (bot/console/templates), autoescaped everywhere:
whatever a contact or an operator wrote is text on the page, never markup."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot import __version__
from bot.console.i18n import LANG_COOKIE, LANGUAGES, translator

if TYPE_CHECKING:
    from bot.console.app import Console


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("bot.console", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def language(request: Request) -> tuple[str, bool]:
    """The page's language and whether the request switched it (`?lang=en`)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked, True
    kept = request.cookies.get(LANG_COOKIE)
    if kept in LANGUAGES:
        return kept, False
    return console_of(request).settings.console.language, False


def url(path: str, **params: object) -> str:
    """A link with its query, leaving out empty values."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(kept)}" if kept else path


def local_time(tz: tzinfo) -> Any:
    def show(moment: datetime | None, form: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(tz).strftime(form) if moment is not None else "-"

    return show


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    lang, switched = language(request)
    t = translator(lang)
    others = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    other_lang = "en" if lang == "zh" else "zh"
    switch = f"?{urlencode([*others, ('lang', other_lang)])}"  # this page: never a path from the URL
    session = getattr(request.state, "session", None)
    html = (
        environment()
        .get_template(template)
        .render(
            t=t,
            lang=lang,
            switch_url=switch,
            session=session,
            csrf=session.csrf if session is not None else "",
            path=request.url.path,
            version=__version__,
            when=local_time(console.settings.tz),
            url=url,
            notice=_notice(request, t),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    if switched:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


def _notice(request: Request, t: Any) -> str | None:
    """What the last action did (`?notice=paused&account=main`): only known notices, with
    their values as text."""
    key = request.query_params.get("notice")
    if not key or f"notice.{key}" not in _NOTICES:
        return None
    # only ids as sopbot writes them (a-z, 0-9, - and _): no sentence of someone else's
    values = {name: request.query_params.get(name, "") for name in ("account", "sop")}
    if not all(_ID.fullmatch(value) for value in values.values() if value):
        return None
    return str(t(f"notice.{key}", **values))


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOTICES = frozenset(
    f"notice.{key}"
    for key in (
        "paused", "resumed", "not_paused", "opted_out", "opted_in", "unchanged", "sop_resumed",
        "sop_not_braked",
    )
)  # fmt: skip


def path_id(request: Request, name: str) -> int:
    """A row id from the path: 404 for one no database column could hold."""
    value = int(request.path_params[name])
    if value >= 2**63:
        raise HTTPException(404, f"no {name} {value}")
    return value
