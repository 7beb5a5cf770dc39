"""Keeping people (docs/retention.md): the automatic brake on SOPs whose messages are
followed by deletions, opt-outs or complaints, and loss alerts (删粉预警) to the admins."""
