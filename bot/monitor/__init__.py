"""Watching a running daemon from outside: `/healthz`, `/livez` and `/metrics` on a small
HTTP server bound to loopback by default (`[monitor]` in settings.toml)."""
