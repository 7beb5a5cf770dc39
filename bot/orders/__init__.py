"""Orders: the file import (shop exports, CSV or Excel, on `bot.tables`), the order model
shared with the webhook, and storage."""
