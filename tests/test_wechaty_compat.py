"""The python-wechaty shims: each one is still needed by the pinned packages (so none is
dead weight), and with them applied wechaty imports and its Tag API is awaitable."""

from __future__ import annotations

import inspect
import sys

from bot.wechat import wechaty_compat


def test_every_shim_is_still_needed_on_the_pinned_stack() -> None:
    needed = wechaty_compat.needed_fixes()
    assert needed.pop("telnetlib") is (sys.version_info >= (3, 13))
    assert needed == dict.fromkeys(needed, True), needed


def test_with_the_shims_wechaty_imports_and_works() -> None:
    wechaty_compat.apply()
    import wechaty
    import wechaty.user.tag as tag_module

    assert wechaty.Wechaty and inspect.iscoroutinefunction(tag_module.Tag.remove)
    assert "Contact" in vars(tag_module)
