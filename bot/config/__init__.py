"""Operator-facing configuration: settings.toml and the source-location helpers behind
every `file:line: field: reason` error message."""
