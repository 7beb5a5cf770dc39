"""The order webhook: `POST /orders` with an HMAC-SHA256 signature."""
