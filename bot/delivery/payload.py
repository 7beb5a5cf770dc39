"""Message content as stored in the outbox (JSON) and back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.text import excerpt
from bot.wechat.types import Content, Image, LinkCard, Text


def to_json(parts: Iterable[Content]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        match part:
            case Text(text=text, mentions=mentions):
                out.append(
                    {"type": "text", "text": text, **({"mentions": list(mentions)} if mentions else {})}
                )
            case Image(url=url):
                out.append({"type": "image", "url": url})
            case LinkCard(title=title, url=url, description=description, thumbnail_url=thumb):
                out.append(
                    {
                        "type": "link",
                        "title": title,
                        "url": url,
                        "description": description,
                        "thumbnail_url": thumb,
                    }
                )
            case _:
                raise TypeError(f"cannot store {part!r} in the outbox")
    return out


def from_json(data: Sequence[dict[str, Any]]) -> list[Content]:
    parts: list[Content] = []
    for item in data:
        kind = item.get("type")
        if kind == "text":
            parts.append(Text(item["text"], tuple(item.get("mentions", ()))))
        elif kind == "image":
            parts.append(Image(item["url"]))
        elif kind == "link":
            parts.append(
                LinkCard(
                    item["title"], item["url"], item.get("description", ""), item.get("thumbnail_url", "")
                )
            )
        else:
            raise ValueError(f"unknown outbox part type {kind!r}")
    return parts


def summary(parts: Sequence[dict[str, Any]], limit: int = 40) -> str:
    """A one-line preview for operators."""
    texts = []
    for item in parts:
        if item.get("type") == "text":
            texts.append(item["text"])
        elif item.get("type") == "image":
            texts.append("[图片]")
        else:
            texts.append(f"[链接] {item.get('title', '')}")
    return excerpt(" / ".join(" ".join(t.split()) for t in texts), limit)
