"""Orders: the CSV import, the order model shared with the webhook, and storage."""
