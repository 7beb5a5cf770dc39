"""Every word a console page asks for exists in Chinese and in English (a missing key would
be an error on the page, found here first), and the templates escape everything."""

from __future__ import annotations

import re
from pathlib import Path

from bot.console.i18n import WORDS, translator
from bot.console.outbox import STATES
from bot.console.render import environment

CONSOLE = Path(__file__).resolve().parents[1] / "bot" / "console"

# keys built from a prefix and a value in the templates (`t("state." ~ s)`)
DYNAMIC = (
    [f"nav.{k}" for k in ("dashboard", "contacts", "sops", "calendar", "outbox", "import")]
    + [f"state.{s}" for s in STATES]
    + [f"weekday.{i}" for i in range(7)]
    + [f"chart.{c}" for c in ("days", "tiers", "migration", "tags", "sops")]
    + [f"import.{k}" for k in ("orders", "contacts")]
    + [f"time.{k}" for k in ("planned", "due", "sent", "changed")]
)


def used_keys() -> set[str]:
    found: set[str] = set()
    for path in [*CONSOLE.glob("templates/*.j2"), *CONSOLE.glob("*.py")]:
        if path.name == "i18n.py":  # the words themselves
            continue
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+|[a-z_]+)["']""", text))
        found |= set(
            re.findall(r"""(?:title_key|message_key|error|problem)=["']([a-z_]+\.[a-z_]+)["']""", text)
        )
        found |= set(re.findall(r"""_upload_problem\(request, "([a-z_.]+)\"""", text))
        found |= {f"notice.{key}" for key in re.findall(r'notice="([a-z_]+)"', text)}
        found |= {
            f"notice.{key}"
            for pair in re.findall(r'"([a-z_]+)" if \w+ else "([a-z_]+)"', text)
            for key in pair
        }
    return found


def test_every_word_a_page_uses_is_there_in_both_languages() -> None:
    keys = used_keys() | set(DYNAMIC)
    assert len(keys) > 150
    missing = sorted(key for key in keys if key not in WORDS)
    assert missing == []
    for key in keys:
        chinese, english = WORDS[key]
        assert chinese.strip() and english.strip(), key
        # the same placeholders in both
        assert set(re.findall(r"\{(\w+)\}", chinese)) == set(re.findall(r"\{(\w+)\}", english)), key


def test_a_value_put_into_a_word_is_escaped_on_the_page() -> None:
    page = environment().from_string("<p>{{ t('dash.all_paused', reason=reason) }}</p>")
    html = page.render(t=translator("en"), reason="<script>alert(1)</script>")
    assert (
        html
        == "<p>All accounts are paused: &lt;script&gt;alert(1)&lt;/script&gt; (sopbot resume lifts it)</p>"
    )
    assert environment().autoescape is True
