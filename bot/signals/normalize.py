"""Text as the tag rules compare it: the same words typed on any phone compare equal.

People type `ＴＤ` (full-width), `退订。`, `退订！！`, `退订🙏`, `T D`, `退订[抱拳]` (a WeChat
emoji, which arrives as its name in brackets) and mean the same as `退订`. Both the
rule's phrases and the messages go through the same function here, so what the operator
wrote in `sop/tags.yaml` and what the contact typed meet halfway.

- `fold`: Unicode NFKC (full-width letters, digits and punctuation become ordinary ones,
  compatibility forms their plain letters), then case folding. Keywords, words and
  excludes are compared folded.
- `phrase_key`: `fold`, then WeChat emoji names (`[微笑]`) and everything that is not a
  letter or a digit (punctuation, symbols, emoji, spaces, invisible characters) taken out.
  Exact phrases are compared by key: `退订，谢谢！` has the key of `退订谢谢`; `我不想退订`
  keeps its own.
"""

from __future__ import annotations

import re
import unicodedata

# a WeChat built-in emoji as it arrives in a text message: [微笑] [抱拳] [OK] [666]
_WECHAT_EMOJI = re.compile(r"\[[^\[\]\s]{1,6}\]")
# not a letter or a digit of any script (punctuation, symbols, emoji, spaces, marks, _)
_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """NFKC, then case-folded: `ＴＤ` → `td`, `Ｖｉｐ` → `vip`."""
    return unicodedata.normalize("NFKC", text).casefold()


def phrase_key(text: str) -> str:
    """What an exact phrase or a whole message is compared by: folded, without WeChat emoji
    names, punctuation, symbols, emoji and spaces. Empty for a message of nothing but those
    (an emoji alone is no phrase); a message that is only an emoji name (`[退订]`) keeps
    the name's letters."""
    return folded_key(fold(text))


def folded_key(folded: str) -> str:
    """`phrase_key` of a text already `fold`ed (the matcher folds each message once)."""
    key = _NOT_WORD.sub("", _WECHAT_EMOJI.sub("", folded))
    return key or _NOT_WORD.sub("", folded)
