"""Chinese word segmentation (jieba), shared by every rule set in the process.

Substring matching misfires on Chinese: `上新` (new arrivals) is inside `马上新年` (soon,
new year). Rules that list `words:` match whole words after segmentation instead. The
rules' own words are taught to the segmenter, with just enough weight to be cut out as
one word where the sentence allows it (`jieba.suggest_freq`), not so much that they win
over the words around them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import jieba

log = logging.getLogger("bot.signals.segment")

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_taught: set[str] = set()


def tokenizer() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            made = jieba.Tokenizer()
            made.initialize()  # ~1 s the first time, then cached on disk by jieba
            _tokenizer = made
        return _tokenizer


def teach(words: Iterable[str]) -> None:
    """Make sure each word can be segmented as one word."""
    new = [word for word in words if word not in _taught]
    if not new:
        return
    segmenter = tokenizer()
    with _lock:
        for word in new:
            segmenter.suggest_freq(word, tune=True)
            _taught.add(word)


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased for Latin letters. HMM off: unknown words fall
    apart into characters, which cannot hit a rule word anyway (those are taught)."""
    return [token for token in tokenizer().lcut(text.casefold(), HMM=False) if token.strip()]
