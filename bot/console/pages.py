"""The console's pages (GET): each reads its query, does its database work in a worker
thread (the event loop never waits on the database) and renders a template."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bot.console import contacts as people
from bot.console import dashboard as board
from bot.console import outbox as mail
from bot.console import sops as sop_views
from bot.console.render import console_of, page, path_id
from bot.console.uploads import KINDS, MAX_UPLOAD
from bot.sop.views.preview import lifecycle_when

MAX_TEXT = 200
MAX_WHERE = 2000
NEXT_SENDS = 8


def _text(request: Request, name: str, limit: int = MAX_TEXT) -> str:
    return request.query_params.get(name, "").strip()[:limit]


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


YEARS = range(2000, 2100)  # dates a page accepts: beyond, the calendar arithmetic overflows


def _day(request: Request, name: str) -> date | None:
    try:
        day = date.fromisoformat(request.query_params.get(name, "").strip())
    except ValueError:
        return None
    return day if day.year in YEARS else None


# -- dashboard -------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    console = console_of(request)
    now = console.clock.now()

    def read() -> tuple[board.Overview, list[sop_views.NextFiring], int]:
        with console.database.session(read_only=True) as session:
            seen = board.overview(session, console.settings, now)
        problems = 0
        sopset = console.sops.running() if console.sops.running is not None else None
        if sopset is None:
            checked = console.sops.checked()
            sopset, problems = checked.sopset, len(checked.issues)
        firings = sop_views.next_firings(sopset, now, NEXT_SENDS) if sopset is not None else []
        return seen, firings, problems

    seen, firings, problems = await asyncio.to_thread(read)
    return page(
        request,
        "dashboard.html.j2",
        title_key="dash.title",
        nav="dashboard",
        overview=seen,
        firings=firings,
        problems=problems,
        charts=console.charts.current(),
        charts_error=console.charts.error,
        chart_order=("days", "tiers", "migration", "tags", "sops"),
    )


async def dashboard_charts(request: Request) -> Response:
    """The charts alone, for the dashboard's script to swap in once they are made."""
    console = console_of(request)
    charts = console.charts.current()
    return page(
        request,
        "charts.html.j2",
        status=200 if charts is not None else 202,
        charts=charts,
        charts_error=console.charts.error,
        chart_order=("days", "tiers", "migration", "tags", "sops"),
    )


# -- contacts --------------------------------------------------------------------------------


async def contacts(request: Request) -> Response:
    from bot.signals.expr import ExprError, parse

    console = console_of(request)
    ladder = console.policy.ladder
    text, where = _text(request, "q"), _text(request, "where", MAX_WHERE)
    account, tier_text = _text(request, "account"), _text(request, "tier")
    problem = None
    expr = None
    if where:
        try:
            expr = parse(where, ladder)
        except ExprError as error:
            problem = f"{error}\n{error.caret()}"
    tier = ladder.resolve(tier_text) if tier_text else None
    query = people.ContactQuery(
        text=text,
        where=expr,
        account=account if account in {a.id for a in console.settings.accounts} else None,
        tier=tier,
        after=_int(request, "after"),
        before=_int(request, "before"),
    )
    found = None
    if problem is None:

        def read() -> people.ContactPage:
            with console.database.session(read_only=True) as session:
                spellings = ladder.spellings(tier) if tier else ()
                return people.search(session, query, spellings)

        found = await asyncio.to_thread(read)
    return page(
        request,
        "contacts.html.j2",
        title_key="contacts.title",
        nav="contacts",
        q=text,
        where=where,
        account=query.account or "",
        tier=tier or "",
        tiers=ladder.pairs(),
        accounts=[a.id for a in console.settings.accounts],
        problem=problem,
        found=found,
        tier_name=console.policy.name,
        tier_names=set(ladder.names),
    )


async def contact(request: Request) -> Response:
    from bot.birthdays import describe as describe_birthday
    from bot.contact_fields import profile as contact_profile

    console = console_of(request)
    contact_id = path_id(request, "contact_id")

    def read() -> people.ContactStory | None:
        with console.database.session(read_only=True) as session:
            return people.story(session, contact_id)

    story = await asyncio.to_thread(read)
    if story is None:
        raise HTTPException(404, "no such contact")
    c = story.profile.contact
    fields = contact_profile(c.city, c.gender, describe_birthday(c.birthday) or None, c.custom_fields)
    sopset = await asyncio.to_thread(_sopset, console)
    return page(
        request,
        "contact.html.j2",
        title_key="contacts.title",
        nav="contacts",
        story=story,
        c=c,
        fields=fields,
        tier_name=console.policy.name,
        sops=sorted(sopset.sops.values(), key=lambda s: s.id) if sopset else [],
    )


def _sopset(console: Any) -> Any:
    running = console.sops.running() if console.sops.running is not None else None
    return running if running is not None else console.sops.checked().sopset


# -- SOPs ------------------------------------------------------------------------------------


async def sops(request: Request) -> Response:
    console = console_of(request)
    now = console.clock.now()

    def read() -> tuple[sop_views.Checked, dict[tuple[str, str], datetime], list[dict[str, Any]]]:
        checked = console.sops.checked()
        firings: dict[tuple[str, str], datetime] = {}
        if checked.sopset is not None:
            firings = {(f.sop.id, f.step_id): f.at for f in sop_views.next_firings(checked.sopset, now)}
        with console.database.session(read_only=True) as session:
            _, braked = board.retention_view(session)
        return checked, firings, braked

    checked, firings, braked = await asyncio.to_thread(read)
    braked_ids = {str(row.get("sop_id")): row for row in braked}
    return page(
        request,
        "sops.html.j2",
        title_key="sops.title",
        nav="sops",
        checked=checked,
        firings=firings,
        braked=braked_ids,
        sops=sorted(checked.sopset.sops.values(), key=lambda s: s.id) if checked.sopset else [],
    )


async def check(request: Request) -> Response:
    console = console_of(request)
    checked = await asyncio.to_thread(console.sops.checked)
    return page(request, "check.html.j2", title_key="check.title", nav="sops", checked=checked)


def _month(request: Request, today: date) -> date:
    text = _text(request, "month")
    try:
        year, month = (int(part) for part in text.split("-", 1))
        if year in YEARS:
            return date(year, month, 1)
    except ValueError:
        pass
    return today.replace(day=1)


async def calendar(request: Request) -> Response:
    console = console_of(request)
    now = console.clock.now()
    first = _month(request, now.astimezone(console.settings.tz).date())
    counts = request.query_params.get("counts") == "1"
    only = _text(request, "sop") or None

    def read() -> tuple[sop_views.Checked, list[list[sop_views.MonthDay]] | None]:
        checked = console.sops.checked()
        sopset = _sopset(console)
        if sopset is None:
            return checked, None
        chosen = only if only in sopset.sops else None
        if counts:
            with console.database.session(read_only=True) as session:
                return checked, sop_views.month_plan(
                    sopset, session, first, now, counts=True, only_sop=chosen
                )
        return checked, sop_views.month_plan(sopset, None, first, now, counts=False, only_sop=chosen)

    if counts:
        async with console.counting:
            checked, weeks = await asyncio.to_thread(read)
    else:
        checked, weeks = await asyncio.to_thread(read)
    before = (first - timedelta(days=1)).replace(day=1)
    after = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    sopset = checked.sopset
    return page(
        request,
        "calendar.html.j2",
        title_key="calendar.title",
        nav="calendar",
        checked=checked,
        weeks=weeks,
        month=first,
        prev_month=f"{before:%Y-%m}",
        next_month=f"{after:%Y-%m}",
        counts=counts,
        sop=only or "",
        sop_ids=sorted(sopset.sops) if sopset else [],
    )


async def preview(request: Request) -> Response:
    console = console_of(request)
    now = console.clock.now()
    sop_id = request.path_params["sop_id"]
    day = _day(request, "date") or now.astimezone(console.settings.tz).date()
    tier_text, group_type = _text(request, "tier"), _text(request, "group_type")
    contact_id = _int(request, "contact")

    def read() -> dict[str, Any]:
        sopset = _sopset(console)
        if sopset is None or sop_id not in sopset.sops:
            return {"missing": True}
        sop = sopset.sops[sop_id]
        tier = None
        problem = None
        recipients: list[Any] | None = None
        if tier_text:
            try:
                tier = sopset.tiers.resolve(tier_text)
            except ValueError as error:
                problem = str(error)
        if contact_id is not None:
            with console.database.session(read_only=True) as session:
                record = sop_views.contact_recipient(session, sopset, contact_id)
            if record is None:
                problem = "preview.no_contact"
            elif all(step.to == "groups" for step in sop.steps):
                problem = "preview.groups_only"
            else:
                recipients = [record]
        elif group_type:
            recipients = [sop_views.group_recipient(group_type)]
        items = (
            sop_views.preview_items(sopset, sop, day, now, tier=tier, recipients=recipients)
            if problem is None
            else []
        )
        return {
            "missing": False,
            "sop": sop,
            "items": items,
            "problem": problem,
            "tiers": sopset.tiers.ladder.pairs(),
            "group_types": sorted(sopset.groups.types),
            "tier": tier or "",
            "to_groups": any(step.to == "groups" for step in sop.steps),
            "to_contacts": any(step.to != "groups" for step in sop.steps),
        }

    seen = await asyncio.to_thread(read)
    if seen["missing"]:
        raise HTTPException(404, f"no SOP {sop_id!r}")
    return page(
        request,
        "preview.html.j2",
        title_key="sops.preview",
        nav="sops",
        day=day,
        group_type=group_type,
        contact_id=contact_id or "",
        scheduled=any(item.scheduled for item in seen["items"]),
        lifecycle_when=lifecycle_when,
        **seen,
    )


# -- outbox ----------------------------------------------------------------------------------


async def outbox(request: Request) -> Response:
    console = console_of(request)
    state = _text(request, "state")
    query = mail.OutboxQuery(
        state=state if state in mail.STATES else None,
        sop=_text(request, "sop") or None,
        account=_text(request, "account") or None,
        recipient=_text(request, "recipient"),
        contact_id=_int(request, "contact"),
        start=_day(request, "from"),
        end=_day(request, "to"),
        before=_int(request, "before"),
    )

    def read() -> tuple[mail.OutboxPage, list[str]]:
        sopset = _sopset(console)
        files = list(sopset.sops) if sopset is not None else []
        with console.database.session(read_only=True) as session:
            return mail.page(session, query, console.settings.tz), mail.known_sops(session, files)

    found, sop_ids = await asyncio.to_thread(read)
    return page(
        request,
        "outbox.html.j2",
        title_key="outbox.title",
        nav="outbox",
        q=query,
        found=found,
        states=mail.STATES,
        sop_ids=sop_ids,
        accounts=[a.id for a in console.settings.accounts],
        start=query.start.isoformat() if query.start else "",
        end=query.end.isoformat() if query.end else "",
    )


async def outbox_row(request: Request) -> Response:
    console = console_of(request)
    row_id = path_id(request, "row_id")

    def read() -> mail.OutboxDetail | None:
        with console.database.session(read_only=True) as session:
            return mail.detail(session, row_id)

    seen = await asyncio.to_thread(read)
    if seen is None:
        raise HTTPException(404, "no such message")
    return page(request, "outbox_row.html.j2", title_key="outbox.title", nav="outbox", d=seen)


# -- import ----------------------------------------------------------------------------------


async def upload_form(request: Request) -> Response:
    kind = _text(request, "kind")
    return page(
        request,
        "import.html.j2",
        title_key="import.title",
        nav="import",
        kinds=KINDS,
        kind=kind if kind in KINDS else "orders",
        max_mb=MAX_UPLOAD // (1024 * 1024),
        problem=None,
    )
