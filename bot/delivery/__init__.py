"""Delivery: the outbox ledger every send path writes to, and the worker that drains it
at a pace that keeps the account safe."""
