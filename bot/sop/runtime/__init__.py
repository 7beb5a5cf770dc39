"""Running SOP occurrences: the scheduler service, audiences, template context, fan-out
into the outbox, and the run ledger."""
