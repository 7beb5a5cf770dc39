"""The relationship-tier ladder: tier ids ordered from shallow to deep, with display names.

Operators write either the id (`customer`) or the Chinese display name (`已购会员`); both
resolve to the id. Ids and names are matched case-insensitively (`KOC`, `品牌koc`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

DEFAULT_TIERS: tuple[tuple[str, str], ...] = (
    ("basic", "基础用户"),
    ("prospect", "未购会员"),
    ("customer", "已购会员"),
    ("repeat", "复购会员"),
    ("koc", "品牌KOC"),
)


@dataclass(frozen=True)
class TierLadder:
    """Ordered tier ids (shallowest first) and their display names, one name per id."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False, hash=False)
    _rank: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        ids, names = tuple(self.ids), tuple(self.names)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "names", names)
        if not ids:
            raise ValueError("a tier ladder needs at least one tier")
        if len(ids) != len(names):
            raise ValueError(f"{len(ids)} tier ids but {len(names)} display names")
        if len(set(ids)) != len(ids):
            raise ValueError(f"a tier id appears twice in {ids}")
        lookup: dict[str, str] = {}
        for tier_id, name in zip(ids, names, strict=True):
            for key in (tier_id, name):
                if not isinstance(key, str) or not key.strip() or key != key.strip():
                    raise ValueError(
                        f"tier id or name {key!r} must be a non-empty string without outer spaces"
                    )
                folded = key.casefold()
                if lookup.get(folded, tier_id) != tier_id:
                    raise ValueError(f"tier {key!r} is used by both {lookup[folded]!r} and {tier_id!r}")
                lookup[folded] = tier_id
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_rank", {tier_id: rank for rank, tier_id in enumerate(ids)})

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> TierLadder:
        """`[(id, display name), ...]` from shallowest to deepest, e.g. from a config file."""
        pairs = tuple(pairs)
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def resolve(self, key: str) -> str | None:
        """The tier id for an id or display name (any case), or None."""
        return self._lookup.get(key.strip().casefold())

    def rank(self, tier_id: str) -> int:
        """0 for the shallowest tier; KeyError for an unknown id."""
        return self._rank[tier_id]

    def name(self, tier_id: str) -> str:
        """The display name of a tier id; KeyError for an unknown id."""
        return self.names[self._rank[tier_id]]

    def spellings(self, tier_id: str) -> tuple[str, str]:
        """The id and the display name: what a stored `tier` column may hold for this tier."""
        return tier_id, self.name(tier_id)

    def suggest(self, key: str) -> str | None:
        """The closest id or display name to a misspelling, for 'did you mean' hints."""
        candidates = {k.casefold(): k for pair in zip(self.ids, self.names, strict=True) for k in pair}
        close = difflib.get_close_matches(key.strip().casefold(), list(candidates), n=1, cutoff=0.6)
        return candidates[close[0]] if close else None

    def folder_aliases(self) -> dict[str, tuple[str, ...]]:
        """Template folders may be named by a tier's id (`koc`) or its name (`品牌KOC`)."""
        return {tier_id: (name,) for tier_id, name in self.pairs() if name != tier_id}

    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.ids, self.names, strict=True))

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.resolve(key) is not None


DEFAULT_LADDER = TierLadder.from_pairs(DEFAULT_TIERS)
