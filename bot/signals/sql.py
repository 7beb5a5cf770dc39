"""The few statements that run for every rule hit, prepared once as plain SQL.

Building SQLAlchemy expressions costs more than SQLite takes to run them; these are the
hot path of message tagging (see bench/bench_tagging.py). Portable SQL only."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, TextClause, bindparam, text

from bot.store.types import UTCDateTime

_TS = UTCDateTime()


def _sql(statement: str, **types: object) -> TextClause:
    clause = text(statement)
    params = [bindparam(name, type_=kind) for name, kind in types.items()]  # type: ignore[arg-type]
    return clause.bindparams(*params) if params else clause


MESSAGE_SEEN = _sql("SELECT 1 FROM rule_hits WHERE contact_id = :contact AND message_ref = :ref LIMIT 1")
HITS = _sql("SELECT count(*) FROM rule_hits WHERE contact_id = :contact AND rule_id = :rule")
HITS_SINCE = _sql(
    "SELECT count(*) FROM rule_hits WHERE contact_id = :contact AND rule_id = :rule AND hit_at > :since",
    since=_TS,
)
FIRED_SINCE = _sql(
    "SELECT 1 FROM rule_hits WHERE contact_id = :contact AND rule_id = :rule AND fired = :yes AND hit_at > :since "
    "LIMIT 1",
    since=_TS,
    yes=Boolean(),
)
TAG_EXPIRY = _sql(
    "SELECT expires_at FROM contact_tags WHERE contact_id = :contact AND tag_id = :tag"
).columns(expires_at=_TS)
SET_TAG_EXPIRY = _sql(
    "UPDATE contact_tags SET expires_at = :expires WHERE contact_id = :contact AND tag_id = :tag", expires=_TS
)
ADD_TAG = _sql(
    "INSERT INTO contact_tags (contact_id, tag_id, source, evidence, evidence_ref, added_at, expires_at) "
    "VALUES (:contact, :tag, :source, :evidence, :ref, :added, :expires)",
    added=_TS,
    expires=_TS,
    contact=Integer(),
    tag=Integer(),
    source=String(),
)
