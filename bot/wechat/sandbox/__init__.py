"""The built-in sandbox WeChat: a simulated account with a demo population, used by the
embedded default and as the test backend."""

from bot.wechat.sandbox.transport import SandboxTransport, SentRecord

__all__ = ["SandboxTransport", "SentRecord"]
