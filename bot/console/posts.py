"""The console's actions (POST): each reads its form through `checked_form` (the CSRF token,
else 403 and nothing changes), does one transaction in a worker thread, and redirects to a
page that says what happened."""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.console import actions
from bot.console.app import checked_form
from bot.console.render import console_of, page, path_id, url
from bot.console.uploads import KINDS, MAX_UPLOAD, dry_run, import_file

MAX_REASON = 200


def _back(request: Request, fallback: str, **params: object) -> RedirectResponse:
    """To the page the form was on (a path of this console), with a notice."""
    target = request.query_params.get("back") or fallback
    if not target.startswith("/") or target.startswith("//"):
        target = fallback
    path = target.split("?", 1)[0]
    return RedirectResponse(url(path, **params), status_code=303)


def _account(request: Request) -> str:
    account_id = request.path_params["account_id"]
    if account_id not in {a.id for a in console_of(request).settings.accounts}:
        raise HTTPException(404, f"no account {account_id!r}")
    return str(account_id)


async def pause(request: Request) -> Response:
    form = await checked_form(request)
    account_id = _account(request)
    console = console_of(request)
    reason = str(form.get("reason") or "").strip()[:MAX_REASON] or "paused in the console"
    await asyncio.to_thread(actions.pause_account, console.database, account_id, reason, console.clock.now())
    return _back(request, "/", notice="paused", account=account_id)


async def resume(request: Request) -> Response:
    await checked_form(request)
    account_id = _account(request)
    console = console_of(request)
    done = await asyncio.to_thread(actions.resume_account, console.database, account_id)
    return _back(request, "/", notice="resumed" if done else "not_paused", account=account_id)


async def _opt(request: Request, opted_out: bool) -> Response:
    await checked_form(request)
    console = console_of(request)
    contact_id = path_id(request, "contact_id")
    changed, events = await asyncio.to_thread(
        actions.set_opted_out, console.database, contact_id, opted_out, console.clock.now(),
        relay=console.publish is None,
    )  # fmt: skip
    if console.publish is not None and events:
        console.publish(events)
    if changed is None:
        raise HTTPException(404, "no such contact")
    notice = ("opted_out" if opted_out else "opted_in") if changed else "unchanged"
    return RedirectResponse(url(f"/contacts/{contact_id}", notice=notice), status_code=303)


async def opt_out(request: Request) -> Response:
    return await _opt(request, True)


async def opt_in(request: Request) -> Response:
    return await _opt(request, False)


async def resume_sop(request: Request) -> Response:
    await checked_form(request)
    console = console_of(request)
    sop_id = str(request.path_params["sop_id"])[:64]
    try:
        done = await asyncio.to_thread(actions.resume_sop, console.database, sop_id, console.clock.now())
    except ImportError:
        raise HTTPException(404, "the retention brake is not installed") from None
    return _back(request, "/sops", notice="sop_resumed" if done else "sop_not_braked", sop=sop_id)


# -- uploads ---------------------------------------------------------------------------------


async def upload(request: Request) -> Response:
    """The file, read and checked: the dry run, with a button to import it."""
    console = console_of(request)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise HTTPException(411, "send a Content-Length")
    if int(length) > MAX_UPLOAD + 64 * 1024:
        return _upload_problem(request, "import.too_big", status=413)
    form = await checked_form(request, max_files=1, max_fields=5, max_part_size=64 * 1024)
    kind, given = form.get("kind"), form.get("file")
    if kind not in KINDS or not isinstance(given, UploadFile):
        await form.close()
        raise HTTPException(400, "choose a file and what it holds")
    data = await given.read(MAX_UPLOAD + 1)
    await form.close()
    if len(data) > MAX_UPLOAD:
        return _upload_problem(request, "import.too_big", status=413)
    kept = console.uploads.keep(kind, given.filename, data, request.state.session.sid)  # type: ignore[arg-type]
    checked = await asyncio.to_thread(dry_run, kept, console.settings)
    return page(
        request, "import_dry.html.j2", title_key="import.title", nav="import", run=checked, result=None
    )


def _upload_problem(request: Request, key: str, *, status: int) -> Response:
    return page(
        request,
        "import.html.j2",
        status=status,
        title_key="import.title",
        nav="import",
        kinds=KINDS,
        kind="orders",
        max_mb=MAX_UPLOAD // (1024 * 1024),
        problem=key,
    )


async def import_upload(request: Request) -> Response:
    """Store the good rows of a file checked before (the same session's upload only)."""
    await checked_form(request)
    console = console_of(request)
    kept = console.uploads.get(str(request.path_params["upload_id"]), request.state.session.sid)
    if kept is None:
        return _upload_problem(request, "import.gone", status=410)
    checked = await asyncio.to_thread(dry_run, kept, console.settings)
    if kept.imported:
        return page(
            request,
            "import_dry.html.j2",
            title_key="import.title",
            nav="import",
            run=checked,
            result="already",
        )
    kept.imported = True  # a second click while this one runs finds it taken
    try:
        done = await asyncio.to_thread(import_file, checked, console.engine(), relay=console.publish is None)
    except BaseException:
        kept.imported = False
        raise
    if console.publish is not None:
        console.publish(done.events)
    return page(
        request, "import_dry.html.j2", title_key="import.title", nav="import", run=checked, result=done
    )
