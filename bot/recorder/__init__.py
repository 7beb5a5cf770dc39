"""Keeps the database in step with what the transport reports: the first stage of every\naccount's pipeline."""

from bot.recorder.stage import Recorder

__all__ = ["Recorder"]
