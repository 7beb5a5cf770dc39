"""sopbot: a WeChat private-domain (私域) operations bot."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sopbot")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
