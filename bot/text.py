"""Short one-line forms of what people wrote, for logs, evidence and summaries."""

from __future__ import annotations


def excerpt(text: str, limit: int = 40) -> str:
    """`text` on one line (runs of whitespace become one space), cut to `limit` characters
    with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
