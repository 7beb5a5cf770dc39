"""Smallest shims that make python-wechaty 0.10.7 import and behave on Python 3.11-3.13.

Pinned stack: wechaty 0.10.7, wechaty-puppet 0.4.23, wechaty-puppet-service 0.8.10,
wechaty-grpc 0.20.19, betterproto 1.2.5 (all dormant since 2022).

Call :func:`apply` once before the first ``import wechaty``; it is idempotent. It imports
wechaty lazily, so this module itself imports fine without wechaty installed.
:func:`needed_fixes` reports, per fix, whether the installed packages still needed it when
it was first applied, so a test can prove each shim still earns its place.
"""

from __future__ import annotations

import importlib.util
import inspect
import socket
import sys
import types
from collections.abc import Callable
from typing import Any, Optional  # betterproto 1.2.5 resolves only typing.Optional hints

__all__ = ["FIXES", "apply", "needed_fixes"]

# name -> needed? (filled by the first apply(); None until then)
_needed: dict[str, bool] | None = None


# ---------------------------------------------------------------- import-time fixes


def _telnetlib_needed() -> bool:
    return importlib.util.find_spec("telnetlib") is None


def _telnetlib_apply() -> None:
    # telnetlib left the stdlib in 3.13; wechaty uses Telnet().open() only as a TCP reachability probe.
    module = types.ModuleType("telnetlib")

    class Telnet:
        def __init__(self) -> None:
            self.sock: socket.socket | None = None

        def open(self, host: str, port: int = 23, timeout: float = 3.0) -> None:
            self.close()
            self.sock = socket.create_connection((host, port), timeout)

        def close(self) -> None:
            if self.sock is not None:
                self.sock.close()
                self.sock = None

        def __del__(self) -> None:
            self.close()

    module.Telnet = Telnet  # type: ignore[attr-defined]
    sys.modules["telnetlib"] = module


def _pyee_needed() -> bool:
    import pyee

    return not hasattr(pyee, "AsyncIOEventEmitter")


def _pyee_apply() -> None:
    # pyee >= 12 dropped the top-level AsyncIOEventEmitter name that wechaty* import.
    import pyee
    from pyee.asyncio import AsyncIOEventEmitter

    pyee.AsyncIOEventEmitter = AsyncIOEventEmitter  # type: ignore[attr-defined]


def _urllib3_needed() -> bool:
    import urllib3

    return not hasattr(urllib3, "get_host")


def _urllib3_apply() -> None:
    # urllib3 2 removed get_host(), still imported by wechaty/user/url_link.py.
    import urllib3
    from urllib3.util import parse_url

    def get_host(url: str) -> tuple[str, str | None, int | None]:
        parsed = parse_url(url)
        return parsed.scheme or "http", parsed.hostname, parsed.port

    urllib3.get_host = get_host  # type: ignore[attr-defined]


def _puppet_options_needed() -> bool:
    from wechaty_puppet.schemas.puppet import PuppetOptions

    return sys.version_info >= (3, 11) and PuppetOptions.__hash__ is None


def _puppet_options_apply() -> None:
    # Python >= 3.11 rejects unhashable dataclass defaults; WechatyOptions defaults to PuppetOptions().
    from wechaty_puppet.schemas.puppet import PuppetOptions

    PuppetOptions.__hash__ = object.__hash__  # type: ignore[assignment]


# ---------------------------------------------------------------- runtime fixes


def _tag_needed() -> bool:
    import wechaty.user.tag as tag_module

    remove_is_sync = not inspect.iscoroutinefunction(tag_module.Tag.remove)
    return "Contact" not in vars(tag_module) or remove_is_sync


def _tag_apply() -> None:
    # Tag.add/remove raise NameError: Contact/Favorite are imported only under TYPE_CHECKING,
    # and Tag.remove never awaits the puppet call; make it awaitable (await tag.remove(contact)).
    import wechaty.user.tag as tag_module
    from wechaty.exceptions import WechatyOperationError
    from wechaty.user.contact import Contact
    from wechaty.user.favorite import Favorite

    tag_module.Contact = Contact  # type: ignore[attr-defined]
    tag_module.Favorite = Favorite  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(tag_module.Tag.remove):
        return

    async def remove(self: Any, source: Any) -> None:
        if isinstance(source, Contact):
            try:
                await self.puppet.tag_contact_remove(tag_id=self.tag_id, contact_id=source.contact_id)
            except Exception as error:
                raise WechatyOperationError("remove error") from error

    tag_module.Tag.remove = remove  # type: ignore[method-assign]


def _alias_needed() -> bool:
    from wechaty_grpc.wechaty.puppet import ContactAliasRequest

    return _field_number(ContactAliasRequest, "alias") == 2


def _field_number(message_class: type, name: str) -> int:
    meta = message_class.__dataclass_fields__[name].metadata["betterproto"]  # type: ignore[attr-defined]
    return int(meta.number)


def _alias_apply() -> None:
    # wechaty-grpc 0.20 puts alias in the deprecated fields (req 2 / resp 1); TS puppet-service 1.x
    # reads req 3 / writes resp 2, so a "set alias" arrives as a "get". Send and read both.
    from dataclasses import dataclass

    import betterproto
    from wechaty_puppet_service.puppet import PuppetService

    @dataclass(eq=False, repr=False)
    class ContactAliasRequest(betterproto.Message):
        id: str = betterproto.string_field(1)
        alias_deprecated: Optional[str] = betterproto.message_field(2, wraps=betterproto.TYPE_STRING)  # noqa: UP045
        alias: str = betterproto.string_field(3)

        def __bytes__(self) -> bytes:
            out = super().__bytes__()
            if self.alias_deprecated is not None and not self.alias:
                out += b"\x1a\x00"  # field 3 present but empty: "clear the alias" (betterproto drops it)
            return out

        SerializeToString = __bytes__

    @dataclass(eq=False, repr=False)
    class ContactAliasResponse(betterproto.Message):
        alias_deprecated: Optional[str] = betterproto.message_field(1, wraps=betterproto.TYPE_STRING)  # noqa: UP045
        alias: str = betterproto.string_field(2)

    async def contact_alias(self: Any, contact_id: str, alias: str | None = None) -> str:
        request = ContactAliasRequest(id=contact_id)
        if alias is not None:
            request.alias_deprecated = alias
            request.alias = alias
        response = await self.puppet_stub._unary_unary(
            "/wechaty.Puppet/ContactAlias", request, ContactAliasResponse
        )
        if alias is not None:
            return alias
        return response.alias or response.alias_deprecated or ""

    PuppetService.contact_alias = contact_alias  # type: ignore[method-assign]


def _scheduler_needed() -> bool:
    from wechaty.plugin import WechatyPluginManager

    source = inspect.getsource(WechatyPluginManager.start)
    return "self.scheduler.start()" in source and ".running" not in source


def _scheduler_apply() -> None:
    # Every login runs WechatyPluginManager.start(); the second one (after a reconnect) dies on
    # "Scheduler is already running" and the login event is lost. Start the scheduler only once.
    from wechaty.plugin import WechatyPluginManager

    original = WechatyPluginManager.start
    if getattr(original, "_sopbot_idempotent", False):
        return

    async def start(self: Any) -> None:
        scheduler = self.scheduler
        if not scheduler.running:
            await original(self)
            return
        scheduler.start = lambda *args, **kwargs: None  # instance attribute shadows the method
        try:
            await original(self)
        finally:
            del scheduler.start

    start._sopbot_idempotent = True  # type: ignore[attr-defined]
    WechatyPluginManager.start = start  # type: ignore[method-assign]


_POOLED = ("Contact", "ContactSelf", "Room", "Tag")


def _pools_needed() -> bool:
    from wechaty.wechaty import Wechaty

    return "_pool" not in inspect.getsource(Wechaty.init_puppet)


def _pools_apply() -> None:
    # Contact/Room/Tag keep _pool on the base class, shared by every per-connection subclass that
    # init_puppet() makes, so objects loaded before a reconnect stay bound to the dead puppet.
    from wechaty.wechaty import Wechaty

    original = Wechaty.init_puppet
    if getattr(original, "_sopbot_pools", False):
        return

    async def init_puppet(self: Any) -> None:
        await original(self)
        for name in _POOLED:
            getattr(self, name)._pool = {}

    init_puppet._sopbot_pools = True  # type: ignore[attr-defined]
    Wechaty.init_puppet = init_puppet  # type: ignore[method-assign]


# Order matters: pyee and PuppetOptions must be fixed before wechaty_puppet / wechaty import.
FIXES: tuple[tuple[str, Callable[[], bool], Callable[[], None]], ...] = (
    ("telnetlib", _telnetlib_needed, _telnetlib_apply),
    ("pyee_asyncio_alias", _pyee_needed, _pyee_apply),
    ("urllib3_get_host", _urllib3_needed, _urllib3_apply),
    ("puppet_options_hash", _puppet_options_needed, _puppet_options_apply),
    ("tag_contact_nameerror", _tag_needed, _tag_apply),
    ("contact_alias_fields", _alias_needed, _alias_apply),
    ("scheduler_idempotent", _scheduler_needed, _scheduler_apply),
    ("per_instance_pools", _pools_needed, _pools_apply),
)


def apply() -> dict[str, bool]:
    """Apply every fix still needed (idempotent); return which were needed on first call."""
    global _needed
    if _needed is not None:
        return dict(_needed)
    found: dict[str, bool] = {}
    for name, is_needed, fix in FIXES:
        found[name] = bool(is_needed())
        if found[name]:
            fix()
    _needed = found
    return dict(found)


def needed_fixes() -> dict[str, bool]:
    """Which fixes the installed packages needed (applies them first if not done yet)."""
    return apply()
